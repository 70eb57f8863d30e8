"""What W&B received, read back from an offline run's file (`<run_dir>/wandb/offline-run-*/run-<id>.wandb`),
with the reader the resumed run uses (bertlab/loggers/wandb_file.py): the config, history and
summary of each file.
"""

import json
from pathlib import Path
from typing import NamedTuple

from bertlab.loggers.wandb_file import item_key, records


class WandbRun(NamedTuple):
    run_id: str
    name: str
    group: str
    config: dict  # key -> value (wandb's {"value": ...} unwrapped)
    history: list[dict]  # one dict per wandb.log call
    summary: dict  # the last value set for each key by summary updates
    resumed: bool


def _value(item) -> object:
    return json.loads(item.value_json)


def read_run(path: Path) -> WandbRun:
    run_id = name = group = ""
    config, history, summary, resumed = {}, [], {}, False
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_id, name, group = record.run.run_id, record.run.display_name, record.run.run_group
            resumed = resumed or record.run.resumed
            config.update({item_key(i): _value(i) for i in record.run.config.update})
        elif kind == "config":
            config.update({item_key(i): _value(i) for i in record.config.update})
        elif kind == "history":
            history.append({item_key(i): _value(i) for i in record.history.item})
        elif kind == "summary":
            summary.update({item_key(i): _value(i) for i in record.summary.update})
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    return WandbRun(run_id, name, group, config, history, summary, resumed)


def offline_runs(run_dir: Path) -> list[WandbRun]:
    """Each offline W&B run file under `run_dir/wandb`, oldest first."""
    return [read_run(p) for p in sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))]
