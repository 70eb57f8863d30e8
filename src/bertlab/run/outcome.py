"""How a run ended: the exception that stopped it -> result.json's status and error, and what
happens next. One table, read top to bottom (the first row that matches wins):

    raised                           status       error                what else
    DivergedError (loss NaN/inf)     diverged     its message          diverged_at_step in result.json
    BertlabError (our checks)        failed       its message
    SIGTERMException (preempted)     interrupted  how to resume        the resume checkpoint is kept
    KeyboardInterrupt, SystemExit    interrupted  how to resume        kept; re-raised (Ctrl-C, a requeue)
    a full or read-only run folder   failed       one message, the fix kept, to continue once there is space
    any other Exception (a bug, OOM) failed       Class: message       error.log; re-raised in a single run
    anything else (not an Exception) failed       None                 re-raised

Then the exit code (`exit_code`): 0 when ok; 143 when interrupted, in a multirun too (the whole
sweep is being preempted); 1 otherwise in a single run, while a multirun records the job and goes on.
A re-raised exception ends the process its own way, after result.json is written.
"""

from dataclasses import dataclass, field
from pathlib import Path

from lightning.pytorch.utilities.exceptions import SIGTERMException

from bertlab.core.errors import BertlabError
from bertlab.run.folder import storage_error, storage_message
from bertlab.training.finetuner import DivergedError

RESUMES = "the same command (same run directory) resumes"
EXIT_INTERRUPTED = 143  # 128 + SIGTERM: what a scheduler expects of a preempted job
EXIT_FAILED = 1


@dataclass(frozen=True)
class Outcome:
    status: str  # ok | failed | diverged | interrupted
    error: str | None = None
    fields: dict = field(default_factory=dict)  # more keys for result.json
    keep_resume: bool = False  # leave the resume checkpoint, although the run is not interrupted
    traceback: bool = False  # write the traceback to <run_dir>/error.log
    reraise: bool = False  # let the exception go on once result.json is written


def outcome(err: BaseException, run_dir: Path, multirun: bool) -> Outcome:
    """The row of the table above that `err` falls under."""
    if isinstance(err, DivergedError):
        return Outcome("diverged", str(err), {"diverged_at_step": err.step})
    if isinstance(err, BertlabError):
        return Outcome("failed", str(err))
    # before SystemExit, which SIGTERMException subclasses: ResumeCheckpoint has saved
    if isinstance(err, SIGTERMException):
        return Outcome("interrupted", f"stopped by SIGTERM; {RESUMES} it")
    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        # Ctrl-C (Lightning turns it into SystemExit) or submitit's requeue on USR2 (sys.exit):
        # the last resume checkpoint stays, so the same command, or the requeued job, continues it
        name = err.__class__.__name__
        return Outcome("interrupted", f"stopped ({name}); {RESUMES} from the last checkpoint", reraise=True)
    if not isinstance(err, Exception):
        return Outcome("failed", reraise=True)
    full = storage_error(err)
    if full is not None:  # the run folder filled up or turned read-only: the user's to fix, one message
        return Outcome("failed", storage_message(full, run_dir, multirun), keep_resume=True)
    # a bug or an environment failure (e.g. out of memory): keep the traceback; a sweep goes on
    return Outcome("failed", f"{err.__class__.__name__}: {err}", traceback=True, reraise=not multirun)


def exit_code(status: str, multirun: bool) -> int | None:
    """The process's exit code for a run that ended with `status`; None: return normally."""
    if status == "ok":
        return None
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return None if multirun else EXIT_FAILED
