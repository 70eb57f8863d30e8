"""A full disk, simulated without mounting anything (tests run as root, where chmod does not
make a folder read-only): a file-size limit (RLIMIT_FSIZE) makes every write past the limit
fail with EFBIG, as writes to a full disk fail with ENOSPC. SIGXFSZ, which would kill the
process at the first such write, is ignored, so the write returns the error instead."""

import os
import resource
import signal
from pathlib import Path

from hydra.experimental.callback import Callback

REPO = Path(__file__).resolve().parents[2]  # on PYTHONPATH: the run imports tests.helpers.full_disk


def file_size_limit(limit_bytes: int | None = None):
    """A preexec_fn for run_train: SIGXFSZ ignored, and (when given) every file capped at limit_bytes."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        os.umask(0o022)  # what most clusters give; result files must follow it
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))

    return preexec


def fill_disk_during_job(job: int) -> tuple[list[str], dict]:
    """Overrides and env that make the disk "full" while sweep job `job` runs (after Hydra has
    written its config files): no write of that job succeeds, and the next jobs have space again."""
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return [
        "+hydra.callbacks.fill_disk._target_=tests.helpers.full_disk.FillDiskDuringJob",
        f"+hydra.callbacks.fill_disk.job={job}",
    ], env


class FillDiskDuringJob(Callback):
    def __init__(self, job: int):
        self.job = job

    def on_job_start(self, config, **kwargs) -> None:
        if config.hydra.job.num == self.job:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    def on_job_end(self, config, **kwargs) -> None:
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
