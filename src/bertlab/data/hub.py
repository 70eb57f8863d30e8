"""A task's dataset from the Hugging Face hub (`task.hub_name`, `task.hub_config`), for every reader
(GLUE, CoNLL, multiple choice, SQuAD): one fast failure offline and one message that says where
the same data can come from instead."""

from __future__ import annotations

from omegaconf import DictConfig

from bertlab.core.errors import DataError
from bertlab.core.extras import HUB_TASK, require
from bertlab.core.network import use_hub_offline_if_unreachable


def load_hub(task: DictConfig, local: str):
    """The DatasetDict of task.hub_name / task.hub_config. `local`: what task.data_dir should hold
    instead, e.g. "a folder holding train.csv and val.csv (SWAG's CSV files)"."""
    require(HUB_TASK)  # `datasets` is an extra (core/extras.py)
    use_hub_offline_if_unreachable()  # fail fast (or use the cache) when offline
    import datasets  # slow to import; only this path needs it

    try:
        return datasets.load_dataset(task.hub_name, task.hub_config)
    except Exception as exc:  # offline, unreachable, not cached, misspelt: `datasets` raises many kinds
        where = task.hub_name if task.hub_config is None else f"{task.hub_name}, {task.hub_config}"
        raise DataError(
            f"Cannot load task '{task.name}' ({where}) from the Hugging Face hub: {type(exc).__name__}: {exc}. "
            f"Where the hub is unreachable and the dataset is not cached, point task.data_dir at {local}, or "
            "load it once on a machine with network (it is then cached) and run with HF_DATASETS_OFFLINE=1."
        ) from exc
