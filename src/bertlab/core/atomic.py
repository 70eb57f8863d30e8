"""The one way files that others read are written: in full to a temporary name in the same
folder, then renamed over the target.

A rename within one folder (one filesystem) is atomic on POSIX: a reader, a resumed run or a
concurrent job sees the previous file or the complete new one, never a torn one, and a write
that fails (full disk, a crash, a kill) leaves the previous file as it was. A move from another
filesystem (e.g. a temporary file in /tmp) is a copy, and is not atomic.

The temporary file is created with the mode the umask gives (as `open` does), not the 0600 of
`tempfile.mkstemp`: results and checkpoints on a shared cluster stay readable by whoever the
user's umask lets read them.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


class NotWritten(OSError):
    """A file that could not be written, named as the user knows it (never the temporary file it
    went through: ours, or one a library wrote first, e.g. in /tmp), with the bytes it needed when
    known. errno and strerror are the failure's (ENOSPC, ...), so run/folder.py's checks see it."""

    def __init__(self, path: Path, err: OSError, size: int | None = None) -> None:
        super().__init__(err.errno, err.strerror or str(err), str(path))
        self.size = size


def write_atomic(path: Path, write: Callable[[Path], None], size: int | None = None) -> None:
    """`write(tmp)` writes the whole content to the path it is given; it then replaces `path`.
    The folder is created when missing; on any failure the temporary file is removed, and an
    OSError is raised again as NotWritten naming `path` (`size`: the bytes it needed, if known)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a name of our own; 0o666 & ~umask, like any file `open` creates
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        write(tmp)
        # A writer may put its own file in place of ours (Lightning moves a finished temporary
        # file of its own there, with mode 0600): the mode is set again, from the umask.
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:  # on disk before the rename, so a power cut cannot tear it
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # e.g. a file where the folder should be: the error below says so
            pass
        if isinstance(err, OSError):  # named as the file asked for (a nested write named its own temporary file)
            raise NotWritten(path, err, size if size is not None else getattr(err, "size", None)) from err
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: tmp.write_bytes(data), size=len(data))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def save_torch_atomic(path: Path, obj: Any) -> None:
    """torch.save, atomically. Serialised in memory first (as Lightning's own checkpoint save does):
    torch's file writer reports a full disk as a RuntimeError ("file write failed"), not an OSError
    naming the file, and the size is then known for the message."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes_atomic(path, buffer.getbuffer())


def follow_umask(folder: Path) -> None:
    """Give every file under `folder` the mode the umask gives new files (0o666 & ~umask).
    transformers' save_pretrained writes model.safetensors with mode 0600 (through a temporary
    file of its own), so colleagues on a shared cluster could not read the weights that every
    other file of the run lets them read."""
    mode = 0o666 & ~_umask()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def _umask() -> int:
    # Read without changing it where the OS says it (Linux); os.umask can only be read by setting it.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish_folder(tmp: Path, path: Path) -> None:
    """Rename a folder written in full (`tmp`, a sibling of `path` in the same filesystem) to `path`:
    readers see no folder or the complete one (pretrain/cache.py's entries). `path` must not exist."""
    os.replace(tmp, path)
