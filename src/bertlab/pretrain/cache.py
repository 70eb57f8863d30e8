"""The disk cache of pre-trained stages (`pretrain.cache_dir`), shared by the jobs of a sweep.

A sweep over seeds, re-init depths or optimizers fine-tunes from the same pre-trained model, so a
stage runs once per distinct key (`stage_key`: a hash of everything its result depends on, as the
token cache, data/token_cache.py, keys on content) and later jobs load its folder:

    <cache_dir>/<key>/            config.json, model.safetensors, tokenizer files, stage.json
    <cache_dir>/<key>.lock        the lock the builder holds while it trains
    <cache_dir>/.<key>.<pid>.<hex>.tmp/    a folder being written

Written atomically: the stage trains into the temporary folder and renames it to `<key>` when the
model and stage.json (the record of how it was made) are complete, so a reader sees no entry or a
whole one. Concurrent jobs (hydra/launcher=gpus) take the file lock (the `filelock` package, which
torch and huggingface_hub already install; an OS lock, so a killed builder releases it at once):
the first builds, the others block on the lock and then find the entry. A builder killed mid-stage
leaves only its temporary folder, which the next builder (holding the lock, so no one else is
writing) deletes before it runs the stage again: a killed stage is restarted, not resumed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from bertlab.core.atomic import publish_folder

FORMAT_VERSION = 1  # bump when a stage's saved layout or training changes what a key means
STAGE_FILE = "stage.json"


def stage_key(parts: dict) -> str:
    """The hash of a stage's identity (JSON-serialisable parts, order of keys irrelevant)."""
    text = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def files_fingerprint(folder: str | Path) -> str:
    """A content hash of a model folder's files (config, weights, tokenizer): a retrained checkpoint
    saved under the same path must miss the cache. Hashing a 1.3 GB checkpoint takes seconds, only
    in jobs that pre-train."""
    h = hashlib.sha256()
    folder = Path(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(str(path.relative_to(folder)).encode() + b"\x00")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def read_entry(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAGE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def cached_stage(
    cache_dir: str | Path, key: str, build: Callable[[Path], dict], announce: Callable[[str], None] = print
) -> tuple[Path, dict, bool]:
    """(the entry's folder, its stage.json, whether it was reused). `build(tmp)` writes the model into
    the folder it is given and returns the record, which is written beside it as stage.json."""
    root = Path(cache_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key
    record = read_entry(folder)
    if record is not None:
        return folder, record, True
    lock = FileLock(str(root / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        announce(f"pretrain: another job is training this stage ({folder}); waiting for it")
        start = time.time()
        lock.acquire()
        announce(f"pretrain: waited {time.time() - start:.0f} s")
    try:
        record = read_entry(folder)
        if record is not None:  # the job we waited for wrote it
            return folder, record, True
        for stale in root.glob(f".{key}.*.tmp"):  # a killed builder's; we hold the lock, no one writes there
            shutil.rmtree(stale, ignore_errors=True)
        if folder.exists():  # a folder without stage.json: not ours to trust (torn by hand); replaced
            shutil.rmtree(folder)
        tmp = root / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        tmp.mkdir()
        try:
            record = build(tmp)
            (tmp / STAGE_FILE).write_text(json.dumps(record, indent=2))
            publish_folder(tmp, folder)  # atomic: a folder rename within one filesystem
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder, record, False
    finally:
        lock.release()
