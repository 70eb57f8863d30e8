"""The run's console lines, through Python logging, once (rank zero).

Every line a run shows (the config, the run folder, a line per validation, the final metrics,
the notes of the loaders and stages) goes through `say`, i.e. the `bertlab` logger: Hydra's job
logging (conf/train.yaml `hydra.job_logging`) writes it bare to the console and time-stamped to
the run's log file (`<run_dir>/app.log`), so the file holds what the console showed. The CLI's
commands (`bertlab evaluate`, ...) show the same lines on stdout (cli.py). Errors stay on stderr.
Light on purpose (no Lightning at import): the config checks and the hub probe use it too.
"""

import logging
import sys

log = logging.getLogger("bertlab")


def say(message: str) -> None:
    """One console line of the run, into its log file too; from rank zero only (several devices:
    each process runs the same code, one of them speaks)."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only  # imported by then in a run

    if getattr(rank_zero_only, "rank", 0) == 0:
        log.info(message)


class CurrentStdout(logging.StreamHandler):
    """The console handler (conf/train.yaml): writes to sys.stdout as it is at each line. Rich's
    progress bar replaces sys.stdout while it shows, to print lines above itself; a handler holding
    the stdout of start-up would write through the bar instead."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler sets it; the current sys.stdout is used instead
        pass


class RunLogFile(logging.FileHandler):
    """The run's log file (conf/train.yaml: Hydra's `file` handler, `<run_dir>/app.log`). A line
    it cannot write (a full disk, a quota) is left out quietly: logging's own handleError would
    print "--- Logging error ---" and a traceback on stderr for every line. The console still
    shows the line, and the run's own writes (result.json, the checkpoint) name the full folder in
    one message (run/folder.py)."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass
