"""`run_train(*overrides)` in this process, through `bertlab.train`: the shape of tests/helpers/e2e.py's
`run_train` (returncode, stdout, stderr, plus the run's `record`), without a new Python process's
5-6 s of start-up. For a test about the run (its numbers, its files, its messages); a test about the
process (exit codes of the CLI, signals, -m and the launchers, the wheel) keeps e2e.run_train.

What the command line would have shown is rebuilt from the call: stdout holds the run's lines (the
job's console handler writes to the current sys.stdout), stderr the warnings and the error line
`python train.py` prints: `error: <message>` for a bad override, `error (<status>): <error>` for a run
that ended badly (its result.json's), or the traceback of a bug (the exceptions outcome.py re-raises).
The return code is 0 or 1, as train.py's for these (SIGTERM's 143 needs a process: StoppedRun).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

from tests.helpers.e2e import REPO

NEEDS_A_PROCESS = ("-m", "--multirun", "--cfg", "-c", "--help", "-h", "--info", "--config-dir", "-cd")


class InProcessRun(subprocess.CompletedProcess):
    """A CompletedProcess with the run's result.json as `record` (None when the run never started)."""

    def __init__(self, args, returncode, stdout, stderr, record):
        super().__init__(args, returncode, stdout, stderr)
        self.record = record


def run_train(*overrides: str, timeout: int | None = None, env: dict | None = None, preexec_fn=None) -> InProcessRun:
    """As e2e.run_train (`timeout` is not enforced: there is no process to kill). `env` is set for
    the call and put back after; a None value unsets a variable. The run's folder defaults as the
    command line's does, from the repository folder."""
    flags = [o for o in overrides if o in NEEDS_A_PROCESS]
    if flags or preexec_fn is not None:
        raise TypeError(f"{flags or 'preexec_fn'} needs a process: use tests.helpers.e2e.run_train")
    import bertlab
    from bertlab.run.outcome import outcome

    out, err = io.StringIO(), io.StringIO()
    code, record = 0, None
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _warnings_shown():
        try:
            record = bertlab.train(list(overrides))
        except Exception as raised:
            code = 1
            record = _this_runs_record(out.getvalue())
            if record is None:  # refused before the run: the command line's `error: ...` line
                print(f"error: {raised}", file=sys.stderr)
            elif isinstance(raised, Exception) and outcome(raised, Path(record["run_dir"]), False).reraise:
                traceback.print_exc()  # a bug: python train.py ends with the traceback
            else:
                print(f"error ({record['status']}): {record['error']}", file=sys.stderr)
    return InProcessRun(["bertlab.train", *overrides], code, out.getvalue(), err.getvalue(), record)


def _this_runs_record(stdout: str) -> dict | None:
    """The result.json of the run this call started: the folder its `run folder:` line named."""
    found = re.findall(r"^run folder: (.+)$", stdout, flags=re.M)
    path = Path(found[-1]) / "result.json" if found else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


@contextlib.contextmanager
def _environment(env: dict | None):
    """e2e.train_env's variables (no hub, W&B disabled) and `env`, in os.environ for the call;
    the current folder the repository's, as e2e.run_train's subprocess has it."""
    saved, cwd = dict(os.environ), os.getcwd()
    changes = {"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", **(env or {})}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = str(value)
    os.chdir(REPO)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)


@contextlib.contextmanager
def _warnings_shown():
    """Warnings written to (the redirected) stderr, each once per call as in a fresh process;
    pytest would otherwise collect them for its summary."""

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():  # entering resets the once-per-location registries
        warnings.showwarning = show
        yield
