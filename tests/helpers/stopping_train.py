"""`python tests/helpers/stopping_train.py WHEN [train.py arguments]`: `python train.py [arguments]`, except
that the process stops itself (SIGSTOP) once, at a chosen point of the training:

  started     in its first training step, before its forward pass: no checkpoint yet
  validating  inside its first validation, before its first batch: no checkpoint yet
  saved       right after its first resume checkpoint is written (the end of a validation)
  mid-step    in the training step after that checkpoint, before its forward pass
  saving      inside its second checkpoint save, metrics.csv written, the checkpoint not yet
  testing     inside the test of the best weights, before its first batch

`WHEN@STEP` stops at that point of global step STEP instead of the first one met (`started@7`:
before the forward of step 8; `validating@10`, `saving@10`, `saved@10`: in or after the
validation at step 10; `mid-step@10` is `started@10`). A restarted run resumes at its checkpoint's
step, so a chain of kills at ever later points, each restart stopped at the next one, kills one
run many times (tests/e2e/test_resume_e2e.py: 25 points with every logger at once).

A test waits for the stop (`os.waitpid(pid, os.WUNTRACED)`, see e2e.start_stopped), sends the
signal it wants to test, then SIGCONT: the signal lands at exactly that point however loaded the
machine is, and the run cannot finish first. Sleeping "long enough" after seeing a checkpoint on
disk was the old way, and a busy machine beat it both ways (the run finished first, or the signal
landed before the checkpoint).

Nothing else changes: the run is train.py's own `__main__`, with the same overrides, so the same
command resumes it, and a resumed run is compared with an uninterrupted one.
"""

import os
import runpy
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POINTS = ("started", "validating", "saved", "mid-step", "saving", "testing")


def stop_once(callback) -> None:
    if not getattr(callback, "_stopped_for_test", False):
        callback._stopped_for_test = True
        print(f"stopping for the test at step {callback.saved_at_step}", flush=True)  # the last save's
        os.kill(os.getpid(), signal.SIGSTOP)  # returns only after the test's SIGCONT


def parse(point: str) -> tuple[str, int | None]:
    """`WHEN` or `WHEN@STEP` -> (WHEN, STEP or None)."""
    when, _, step = point.partition("@")
    if when not in POINTS or (step and not step.isdigit()):
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(POINTS)}}}[@STEP] [train.py arguments]")
    return ("started" if when == "mid-step" and step else when), (int(step) if step else None)


def install(point: str) -> None:
    from bertlab.callbacks.resume import ResumeCheckpoint

    when, at = parse(point)
    after_validation, before_batch = ResumeCheckpoint.on_validation_end, ResumeCheckpoint.on_train_batch_start
    in_save = ResumeCheckpoint.on_save_checkpoint

    def here(trainer) -> bool:  # the step asked for (any step without @STEP)
        return at is None or trainer.global_step == at

    def on_validation_end(self, trainer, module):
        after_validation(self, trainer, module)
        if when == "saved" and self.saved_at_step is not None and here(trainer):
            stop_once(self)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        before_batch(self, trainer, module, batch, batch_idx)
        if ((when == "mid-step" and self.saved_at_step is not None) or when == "started") and here(trainer):
            stop_once(self)

    def on_validation_batch_start(self, trainer, module, *args):
        if when == "validating" and not trainer.sanity_checking and here(trainer):
            stop_once(self)

    def on_save_checkpoint(self, trainer, module, checkpoint):
        in_save(self, trainer, module, checkpoint)  # metrics.csv written and its rows counted
        if when == "saving" and (self.saved_at_step is not None or at is not None) and here(trainer):
            stop_once(self)

    def on_test_batch_start(self, trainer, module, *args):
        if when == "testing":
            stop_once(self)

    ResumeCheckpoint.on_validation_end = on_validation_end
    ResumeCheckpoint.on_train_batch_start = on_train_batch_start
    ResumeCheckpoint.on_validation_batch_start = on_validation_batch_start
    ResumeCheckpoint.on_save_checkpoint = on_save_checkpoint
    ResumeCheckpoint.on_test_batch_start = on_test_batch_start


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(POINTS)}}}[@STEP] [train.py arguments]")
    install(sys.argv.pop(1))
    # A test runner started in the background (CI, `make test &`) hands its children SIGINT
    # ignored, and Python then keeps it ignored: the test's Ctrl-C would be lost and the run go
    # on to its end. A user's Ctrl-C comes from a terminal, where Python's handler is in place.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv[0] = str(REPO / "train.py")
    runpy.run_path(str(REPO / "train.py"), run_name="__main__")
