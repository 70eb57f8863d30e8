"""Kill and resume: a run killed mid-training and started again with the same command (same run
directory) continues from its last checkpoint and ends with the metrics of an uninterrupted run.

While a run trains, `<run_dir>/resume/last.ckpt` holds Lightning's full training state (weights,
optimizer and schedule, loop progress, the training loader's position, the best weights kept
by KeepBestWeights, and the RNG states). It is rewritten after a validation (at most once per
`resume_every_s` seconds) and when the process receives SIGTERM (SLURM preemption): Lightning
notes the signal, the current training step finishes, the checkpoint is saved, and Lightning
stops the run (exit code 143). A SIGKILL loses only the steps since the last save. The folder is deleted when the run ends (ok,
failed or diverged), so a finished run keeps no checkpoint.

Lightning's ModelCheckpoint is not used: it cannot save on SIGTERM and keeps top-k/last
bookkeeping that a single overwritten resume file does not need. Lightning's checkpoint writer
writes a temporary file in /tmp and moves it into place, which is a copy (and can be torn by a
full disk) when /tmp is another filesystem, and a full disk is then reported as that /tmp file's:
the Trainer writes with RunFolderCheckpointIO instead (run/trainer.py), to a temporary name beside
the checkpoint, renamed over it (atomic.py). A checkpoint that cannot be read when a run starts (torn
by a crash before this was so, or a damaged disk) is set aside, not deleted, and the run starts
over.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from bertlab.core.atomic import save_torch_atomic, write_atomic, write_text_atomic
from bertlab.core.lines import say
from bertlab.data.resumable_loader import ResumableDataLoader
from bertlab.loggers.run_csv import RunFolderCSVLogger

RESUME_DIR = "resume"
RESUME_FILE = "last.ckpt"
ROWS_FILE = "metrics_rows.json"  # metrics.csv's rows up to a checkpoint saved mid-step on SIGTERM
CHECKPOINT_KEY = "bertlab_resume"  # our part of the Lightning checkpoint: RNG states, loader position


OWNER_FILE = "overrides.json"  # the overrides of the job the checkpoint belongs to


class RunFolderCheckpointIO(TorchCheckpointIO):
    """The Trainer's checkpoint writer (the Trainer's `plugins`, run/trainer.py): Lightning's, but
    atomic within the checkpoint's own folder (atomic.py), never through /tmp (see the docstring)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:  # as Lightning's TorchCheckpointIO
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        save_torch_atomic(Path(path), checkpoint)


def resume_checkpoint(run_dir: Path, overrides: list[str] | None = None) -> Path | None:
    """The checkpoint to resume from, when a previous attempt of this same job left one.

    A sweep folder re-used for a different sweep holds, in job folder N, the checkpoint of the
    old sweep's job N: resuming from it would continue another job's training. Such a
    checkpoint (its recorded overrides differ) is deleted, and the job starts afresh."""
    path = Path(run_dir) / RESUME_DIR / RESUME_FILE
    if not path.is_file():
        return None
    owner_file = path.parent / OWNER_FILE
    owner = json.loads(owner_file.read_text()) if overrides is not None and owner_file.is_file() else None
    if owner is not None and owner != list(overrides):
        say(f"not resuming: {path} belongs to another job ({' '.join(owner)}); starting afresh")
        remove_resume_state(run_dir)
        return None
    problem = _unreadable(path)
    if problem is not None:
        # Kept for a post-mortem (and because deleting is not ours to decide), outside resume/,
        # which goes when the run ends.
        aside = _free_name(Path(run_dir) / f"{RESUME_FILE}.unreadable")
        path.rename(aside)
        say(f"not resuming: {path} cannot be read ({problem}); set aside as {aside}, starting over")
        remove_resume_state(run_dir)
        return None
    return path


def _unreadable(path: Path) -> str | None:
    """Why the checkpoint cannot be resumed from, or None. mmap: only the archive's index and the
    small entries are read, not the weights."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises many kinds for a torn or foreign file
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    needed = ("global_step", "state_dict", CHECKPOINT_KEY)
    missing = [k for k in needed if not isinstance(checkpoint, dict) or k not in checkpoint]
    return f"no {', '.join(missing)} in it" if missing else None


def _free_name(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.{n}")
        n += 1
    return candidate


def remove_resume_state(run_dir: Path) -> None:
    shutil.rmtree(Path(run_dir) / RESUME_DIR, ignore_errors=True)


def metrics_rows(checkpoint: Path) -> int:
    """How many rows of metrics.csv were logged before `checkpoint` was saved: the rows the resumed
    run keeps (loggers/run_csv.py), all the others it logs again.

    The count is saved in the checkpoint. A checkpoint saved on SIGTERM inside a training step is
    followed by that step's own rows (Lightning logs a step's metrics after the callbacks'
    on_train_batch_end), which the resumed run, starting at the next step, does not log again: the
    run counts them when it stops (ROWS_FILE, for that checkpoint's step only)."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    rows = saved[CHECKPOINT_KEY].get("metrics_rows") or 0  # None: no metrics.csv (logger=none)
    later = Path(checkpoint).parent / ROWS_FILE
    if later.is_file():
        counted = json.loads(later.read_text())
        if counted.get("global_step") == saved["global_step"]:
            rows = max(rows, counted["rows"])
    return rows


def _metrics_file_logger(trainer: L.Trainer) -> RunFolderCSVLogger | None:
    return next((lg for lg in trainer.loggers if isinstance(lg, RunFolderCSVLogger)), None)


class ResumeCheckpoint(L.Callback):
    """Saves the resume checkpoint after each validation and on SIGTERM; restores the RNG states.

    The RNG states are captured when the checkpoint is written (at a step boundary) and put back
    just before the first training step of the resumed run, so dropout draws the same masks as
    in the uninterrupted run (nothing between two steps consumes the global RNG: the loaders
    use their own generators, see resumable_loader.py).

    A plain Callback, not a `Checkpoint` subclass: the Trainer runs with enable_checkpointing=False
    (no ModelCheckpoint by default), which rejects Checkpoint callbacks. Keep it after
    KeepBestWeights in the callback list so each save holds the best weights of that validation.
    """

    def __init__(self, run_dir: Path, every_s: float, overrides: list[str] | None = None):
        # no default for every_s: resume_every_s (conf/train.yaml) is the one
        self.path = Path(run_dir) / RESUME_DIR / RESUME_FILE
        self.overrides = overrides  # written beside the checkpoint: whose it is (resume_checkpoint)
        # A save writes weights, Adam state and the best weights (~1 s for MiniLM on a CPU, 6% of
        # a 1k-example run when done at all 10 validations): at most one per `every_s` seconds.
        # A SIGKILL then loses at most that much training; SIGTERM always saves.
        self.every_s = float(every_s)
        self._since: float | None = None  # monotonic time of the last save, or of the fit start
        self._to_restore: dict[str, Any] | None = None  # from the checkpoint being resumed
        self.saved_on_sigterm = False
        self.saved_at_step: int | None = None

    def save(self, trainer: L.Trainer) -> None:
        # the full state (and no log line per save)
        if trainer.is_global_zero:
            if self.overrides is not None:
                write_text_atomic(self.path.parent / OWNER_FILE, json.dumps(list(self.overrides)))
            # atomic whatever the Trainer's checkpoint writer (ours, RunFolderCheckpointIO, is too)
            write_atomic(self.path, lambda tmp: trainer.save_checkpoint(tmp, weights_only=False))
        else:  # only rank 0 writes; the others still take part in save_checkpoint's barrier
            trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_at_step = trainer.global_step
        self._since = time.monotonic()

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._since = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        if self._since is None or time.monotonic() - self._since >= self.every_s:
            self.save(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        # SIGTERM received during this step: save now, at the point where Lightning's own step
        # checkpoints are taken (its loop restores exactly from here); Lightning then stops.
        if trainer.received_sigterm and not self.saved_on_sigterm:
            self.save(trainer)
            self.saved_on_sigterm = True
            say(f"SIGTERM: saved {self.path} at step {trainer.global_step}")

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        # Only preemption is worth resuming: a diverged or failed run would fail again. SIGTERM
        # during a validation stops there, without passing through on_train_batch_end. When the
        # checkpoint on disk is of this very step (saved at the end of its validation), keep it:
        # saving again here, after Lightning has advanced its step counters, would resume with
        # the logged step numbers off by one (the training itself is the same).
        if (
            isinstance(exception, SIGTERMException)
            and trainer.state.fn == "fit"
            and not self.saved_on_sigterm
            and self.saved_at_step != trainer.global_step
        ):
            self.save(trainer)
            self.saved_on_sigterm = True
            say(f"SIGTERM: saved {self.path} at step {trainer.global_step}")
        elif self.saved_on_sigterm and self.saved_at_step == trainer.global_step and trainer.is_global_zero:
            # saved mid-step (on_train_batch_end): the step's own rows came after it (metrics_rows)
            csv_logger = _metrics_file_logger(trainer)
            if csv_logger is not None:
                counted = {"global_step": trainer.global_step, "rows": csv_logger.flush()}
                write_text_atomic(self.path.parent / ROWS_FILE, json.dumps(counted))

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        rng = _collect_rng_states(include_cuda=True)
        # numpy's state holds an ndarray, which torch.load(weights_only=True) refuses: store a list
        name, keys, pos, has_gauss, cached = rng["numpy"]
        rng["numpy"] = [name, keys.tolist(), pos, has_gauss, cached]
        loader = trainer.train_dataloader
        # metrics.csv written out before the checkpoint, which counts its rows: a kill between the
        # two leaves more rows than counted, which the resumed run drops and logs again
        csv_logger = _metrics_file_logger(trainer) if trainer.is_global_zero else None
        checkpoint[CHECKPOINT_KEY] = {
            "rng": rng,
            "train_loader": loader.state_dict() if isinstance(loader, ResumableDataLoader) else None,
            "metrics_rows": csv_logger.flush() if csv_logger is not None else None,
        }

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._to_restore = checkpoint.get(CHECKPOINT_KEY)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Lightning has its own plumbing for stateful loaders, but it restores nothing here: the
        # loader is built before the checkpoint is read (to count the schedule's steps), and
        # Lightning applies loader states only when it builds the loader. So the position is
        # applied here, before the first batch of the resumed epoch is drawn.
        state = self._to_restore
        loader = trainer.train_dataloader
        if state and state["train_loader"] is not None and isinstance(loader, ResumableDataLoader):
            loader.load_state_dict(state["train_loader"])

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        state, self._to_restore = self._to_restore, None
        if state is not None:
            name, keys, pos, has_gauss, cached = state["rng"]["numpy"]
            _set_rng_states({**state["rng"], "numpy": (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)})
