"""Cohort data: specs, readers of published formats, the tidy cohort table, transforms,
and the synthetic default cohort."""
