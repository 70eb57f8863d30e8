"""Task problems: one folder per kind of task (its reader, encoder, metrics and `Problem`), the
interface they implement (problem.py) and the names `task.problem` takes (registry.py)."""
