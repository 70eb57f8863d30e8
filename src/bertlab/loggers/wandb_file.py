"""What W&B holds of a run, read back from its local run files (`<run_dir>/wandb/*run-*/run-<id>.wandb`).

W&B writes every run's records to this file, online too (it is what `wandb sync` sends), but
wandb-core keeps them in memory until the run finishes: a SIGKILL loses all that attempt had
logged (wandb 0.31: 20 rows logged, then 12 s idle, then SIGKILL left the 7-byte header alone;
there is no public flush). A resumed run sends the values its checkpoint covers and no file holds
(loggers/build.py), so W&B misses none of them, however many times the run was killed.

wandb 0.31 has no Python reader of this file, so it is read here: a LevelDB-style log, a 7-byte
header (":W&B", magic 0xBEE1, a version), then 32 KiB blocks of records, each a 7-byte header
(crc32, length, type: full, first, middle, last) and its bytes; a protobuf
`wandb.proto.wandb_internal_pb2.Record` spans one full record or a first..last chain. A block's
tail shorter than a header is padding; a file cut by a kill ends at its last whole record.
"""

import json
import struct
from collections.abc import Iterator
from pathlib import Path

BLOCK = 32 * 1024
FILE_HEADER = 7
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
STEP_KEY = "trainer/global_step"  # the x-axis every chart uses (loggers/build.py: define_metric)


def records(path: Path) -> Iterator:
    """Every whole protobuf Record of the file, in order."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        return
    pos, pending = FILE_HEADER, b""
    while pos + RECORD_HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < RECORD_HEADER:  # padding at the end of a block
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + RECORD_HEADER])
        if kind == 0 and length == 0:  # zero padding
            pos += room
            continue
        if pos + RECORD_HEADER + length > len(data):
            return  # cut by a kill
        body = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        pending = body if kind in (FULL, FIRST) else pending + body
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(pending)
            except DecodeError:
                return
            yield record


def item_key(item) -> str:
    """The key of a history, summary or config item: a nested key is its parts joined by "/"."""
    return "/".join(item.nested_key) if item.nested_key else item.key


def run_files(run_dir: Path, run_id: str | None = None) -> list[Path]:
    """The run folder's W&B run files (of `run_id` only, when given), oldest first."""
    name = f"run-{run_id}.wandb" if run_id else "run-*.wandb"
    return sorted(Path(run_dir).glob(f"wandb/*run-*/{name}"))


def held(run_dir: Path, run_id: str) -> set[tuple[int, str]]:
    """(step, metric) of every history value the run's files hold, each attempt's file together."""
    pairs = set()
    for path in run_files(run_dir, run_id):
        for record in records(path):
            if record.WhichOneof("record_type") != "history":
                continue
            row = {item_key(i): i.value_json for i in record.history.item}
            if STEP_KEY in row:
                step = int(json.loads(row[STEP_KEY]))
                pairs.update((step, key) for key in row if not key.startswith("_") and key != STEP_KEY)
    return pairs
