"""The files of a local task: `task.data_dir` and the files its keys name, checked once for every
reader (GLUE/CSV, CoNLL, multiple choice, SQuAD) with the same two messages."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from bertlab.core.errors import DataError


def task_files(task: DictConfig, keys: list[tuple[str, str]]) -> dict[str, Path]:
    """pool -> path, for (pool, task key) pairs such as ("train", "train_file"); a missing folder or
    file is one DataError naming the key, the value and what the folder holds."""
    data_dir = Path(str(task.data_dir)).expanduser()
    if not data_dir.is_dir():
        named = [f"task.{key}={task[key]}" for _, key in keys]
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        raise DataError(f"task.data_dir={task.data_dir} is not a folder; it must hold {listed}.")
    paths = {}
    for pool, key in keys:
        path = paths[pool] = data_dir / str(task[key])
        if not path.is_file():
            found = ", ".join(sorted(p.name for p in data_dir.iterdir())) or "none"
            raise DataError(f"task.{key}={task[key]} is not in {data_dir}; files there: {found}.")
    return paths
