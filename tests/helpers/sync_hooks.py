"""Hydra callbacks that let a sweep test check concurrency from events, not from clocks.

Named on the command line, e.g. `+hydra.callbacks.jobs._target_=tests.helpers.sync_hooks.JobLog` (with the
repository on PYTHONPATH: helpers/e2e.py with_tests_on_path); Hydra calls them in each job's own process, so on the gpus
launcher they run in the Ray worker, with the CUDA_VISIBLE_DEVICES Ray gave the job.
"""

import json
import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def _write(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # a reader in another job never sees half a file


class JobLog(Callback):
    """Each job, when it starts, records which other jobs are running at that moment and on which
    device (`<folder>/<job>.json`). A job is "running" from its start to its end marker, so "job B
    saw job A running" is a fact, however loaded the machine, where comparing their start and end
    times is not: on a busy machine one job can run from start to end while the other starts up.

    `meet`: the first jobs wait (before they train) until `meet` jobs have started, so on a pool of
    `meet` slots they are bound to overlap; on a launcher that ran one job at a time the first job
    would wait forever, so it gives up after `limit_s` and records that it ran alone.
    """

    def __init__(self, folder: str, meet: int = 1, limit_s: float = 600) -> None:
        self.folder, self.meet, self.limit_s = Path(folder), meet, limit_s

    def running(self, me: str) -> dict[str, str | None]:
        """The other jobs started and not yet ended, with their devices."""
        return {p.stem: json.loads(p.read_text()) for p in self.folder.glob("*.running") if p.stem != me}

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        me, device = str(config.hydra.job.num), os.environ.get("CUDA_VISIBLE_DEVICES")
        _write(self.folder / f"{me}.running", device)
        _write(self.folder / f"{me}.started", device)
        seen = self.running(me)
        deadline = time.monotonic() + self.limit_s  # a bound for a launcher that never runs two, not a sync
        alone = False
        while len(list(self.folder.glob("*.started"))) < self.meet:
            if time.monotonic() > deadline:
                alone = True
                break
            time.sleep(0.01)  # polls for another job's marker file
        seen.update(self.running(me))
        _write(self.folder / f"{me}.json", {"device": device, "saw": seen, "alone": alone})

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        (self.folder / f"{config.hydra.job.num}.running").unlink(missing_ok=True)


def read_job_log(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
