"""Task problems: what `task.problem` changes in a run, in one place per problem (registry.py)."""
