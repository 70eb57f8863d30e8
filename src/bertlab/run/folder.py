"""A run folder that cannot be written (a file where a folder should be, a read-only or full
filesystem, a quota): one message naming the folder and the fix, instead of chained tracebacks.

Checked twice: before Hydra creates the folder (`RunFolderCheck`, a Hydra callback in
conf/train.yaml: Hydra's own mkdir and config files come before any code of ours), and while the
run writes into it (`storage_error`, used by outcome.py and job.py: a disk that fills up mid-run).
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bertlab.core.atomic import write_text_atomic

# The filesystem refuses more data, or any: the user's to fix, not a bug (EFBIG: a file-size limit).
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
PROBE_BYTES = 64 * 1024  # more than Hydra's own files of a job (its config, ~5 KB)


def storage_error(err: BaseException) -> OSError | None:
    """The storage failure behind `err` (itself, or what it was raised from or while handling:
    Lightning saves its logs again while handling the first failure), else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in STORAGE_ERRNOS:
            return err
        err = err.__cause__ or err.__context__
    return None


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def failed_file(err: OSError, run_dir: Path) -> Path | None:
    """The file a failed write was for, as the user knows it: one in the run folder first (a copy's
    destination is `filename2`), else one outside the system's temporary folder; never a library's
    temporary file in /tmp (Lightning's checkpoint writer, fsspec, shutil name theirs)."""
    names = [Path(n) for n in (err.filename, err.filename2) if isinstance(n, str | os.PathLike) and str(n)]
    return next((n for n in names if _inside(n, run_dir)), None) or next(
        (n for n in names if not _inside(n, tempfile.gettempdir())), None
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def storage_message(err: OSError, run_dir: Path, multirun: bool) -> str:
    """One message for a write that the filesystem refused (STORAGE_ERRNOS): the file (in the run
    folder), the bytes it needed when known (core/atomic.py's NotWritten carries them) and, for a
    full disk or quota, the space free there; then the fix."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    file = failed_file(err, run_dir)
    where = file or Path(run_dir)
    details = [f"writing {file}"] if file else []
    size = getattr(err, "size", None)
    if size is not None:
        details.append(f"{human_bytes(size)} to write")
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        existing = next((p for p in (where, *where.parents) if p.exists()), None)
        if existing is not None:
            details.append(f"{human_bytes(shutil.disk_usage(existing).free)} free there")
    detail = f" ({', '.join(details)})" if details else ""
    subject = f"The run folder {run_dir}" if file is None or _inside(file, run_dir) else str(file)
    return (
        f"{subject} cannot be written: {err.strerror or err}{detail}. Fix: free space (or "
        "quota) there and run the same command again (it continues from the last checkpoint saved, if any), "
        f"or choose another folder with {key}=DIR."
    )


def check_writable(folder: Path, key: str) -> str | None:
    """Why `folder` cannot be created or written, as the message for the user, else None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".bertlab-write-probe"
        write_text_atomic(probe, "x" * PROBE_BYTES)
        probe.unlink()
    except OSError as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            why = f"{blocker} is a file, not a folder"
        else:
            why = f"{err.strerror or err}"
        return (
            f"The run folder {folder} cannot be written: {why}. Fix: choose another folder with {key}=DIR, "
            "or make that one writable (free space, quota, permissions)."
        )
    return None


class RunFolderCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(Path(str(config.hydra.run.dir)), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir")

    @staticmethod
    def _check(folder: Path, key: str) -> None:
        message = check_writable(folder, key)
        if message is not None:
            print(f"error: {message}", file=sys.stderr, flush=True)
            # SystemExit passes through Hydra's callback wrapper (it catches Exception only)
            sys.exit(1)
