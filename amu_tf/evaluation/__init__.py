"""Evaluation: splitters, protocols, metrics with bootstrap CIs, tables, figures, report,
blessing, and the leakage audit."""
