"""What the user drives: the CLI, configuration, sweeps, selection, ensembles and reports."""
