"""Where a run's metrics go: the Lightning loggers (W&B, CSV) and the console."""
