"""The `amu` command line (click), which chains the components."""
