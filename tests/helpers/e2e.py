"""Run the real entry point, `python train.py ...`, in a subprocess (as a user would)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import zygote

REPO = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent  # the scripts below run as `python tests/helpers/<name>.py`

# The packaged tiny random BERT (`model=tiny`, written on first use) at debug sizes: a run in seconds.
# Needs no fixture, so module-level override lists can start with it; conftest's `tiny` fixture is
# the same model from the session's folder with the default model's lr.
TINY = ["model=tiny", "debug=fast", "trainer.enable_progress_bar=false"]


def train_env(env: dict | None = None) -> dict:
    """`env` adds to (or replaces) the defaults: no hub, W&B disabled; a None value unsets a variable."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", **(env or {})}
    return {key: value for key, value in env.items() if value is not None}


def run_train(
    *overrides: str, timeout: int = 300, env: dict | None = None, preexec_fn=None
) -> subprocess.CompletedProcess:
    """`preexec_fn` runs in the child before train.py (e.g. a file-size limit that makes writes
    fail like a full disk); such a run starts a fresh interpreter, every other one is a fork of a
    process that has the heavy imports done (tests/helpers/zygote.py)."""
    if preexec_fn is None:
        return zygote.run([str(REPO / "train.py"), *overrides], REPO, train_env(env), timeout)
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=REPO,
        env=train_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def python(*args: str, env: dict | None = None, timeout: int = 300, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`python *args` (e.g. "-m", "bertlab.cli", "report", DIR) as run_train runs train.py: train_env's
    environment plus `env`, output captured as text, a fork of the warm test process server."""
    return zygote.run(list(args), cwd, train_env(env), timeout)


def with_tests_on_path(env: dict | None = None) -> dict:
    """PYTHONPATH with the repository first: for hooks named in a Hydra override by their module,
    e.g. `+hydra.callbacks.jobs._target_=tests.helpers.sync_hooks.JobLog`."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**(env or {}), "PYTHONPATH": path}


class StoppedRun:
    """`python train.py` stopped at a known point of its training (tests/helpers/stopping_train.py)."""

    def __init__(self, run_dir: Path, when: str, *overrides: str, limit_s: float = 600, env: dict | None = None):
        self.out, self.err = run_dir.parent / f"{run_dir.name}.stdout", run_dir.parent / f"{run_dir.name}.stderr"
        # files, not pipes: the test does not read while it waits, and a full pipe would block the run
        argv = [str(HELPERS / "stopping_train.py"), when, *overrides]
        self.proc = zygote.start(argv, REPO, train_env(env), self.out, self.err)
        # no sleep and no polling: the wait returns when the run stops itself (or ends). The limit is
        # only a bound for a run that hangs, so that the test fails instead of waiting forever.
        self.proc.wait_stopped_or_ended(limit_s)
        if self.proc.stopped is None:  # it ended
            raise AssertionError(
                f"the run ended ({self.proc.returncode}) instead of stopping at '{when}':\n"
                f"{self.stdout()[-2000:]}\n{self.stderr()[-3000:]}"
            )

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def kill(self, sig: int, timeout: float = 300) -> subprocess.CompletedProcess:
        """Send `sig` while the run is stopped, let it go on (it meets the signal where it stopped), wait."""
        self.proc.send_signal(sig)
        if sig != signal.SIGKILL:
            self.proc.send_signal(signal.SIGCONT)
        self.proc.wait(timeout=timeout)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, self.stdout(), self.stderr())


def results_under(folder: Path) -> dict[str, dict]:
    """Every result.json below `folder`, keyed by its run directory relative to `folder`."""
    return {str(p.parent.relative_to(folder)): json.loads(p.read_text()) for p in sorted(folder.rglob("result.json"))}
