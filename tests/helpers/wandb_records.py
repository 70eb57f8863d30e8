"""What W&B received, read back from an offline run's file (`<run_dir>/wandb/offline-run-*/run-<id>.wandb`).

wandb 0.31 keeps no summary file offline and no Python reader of its own log, so the tests read
it here. The file is a LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, a version),
then 32 KiB blocks of records, each a 7-byte header (crc32, length, type: full, first, middle,
last) and its bytes; a protobuf `wandb.proto.wandb_internal_pb2.Record` spans one full record or a
first..last chain. A block's tail shorter than a header is padding.
"""

import json
import struct
from pathlib import Path
from typing import NamedTuple

BLOCK = 32 * 1024
FILE_HEADER = 7
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """Every protobuf Record of the file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
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
        body = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if kind in (FULL, FIRST):
            pending = body
        else:
            pending += body
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


class WandbRun(NamedTuple):
    run_id: str
    name: str
    group: str
    config: dict  # key -> value (wandb's {"value": ...} unwrapped)
    history: list[dict]  # one dict per wandb.log call
    summary: dict  # the last value set for each key by summary updates
    resumed: bool


def _value(item) -> object:
    return json.loads(item.value_json)


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def read_run(path: Path) -> WandbRun:
    run_id = name = group = ""
    config, history, summary, resumed = {}, [], {}, False
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run_id, name, group = record.run.run_id, record.run.display_name, record.run.run_group
            resumed = resumed or record.run.resumed
            config.update({_key(i): _value(i) for i in record.run.config.update})
        elif kind == "config":
            config.update({_key(i): _value(i) for i in record.config.update})
        elif kind == "history":
            history.append({_key(i): _value(i) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(i): _value(i) for i in record.summary.update})
    config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}
    return WandbRun(run_id, name, group, config, history, summary, resumed)


def offline_runs(run_dir: Path) -> list[WandbRun]:
    """Each offline W&B run file under `run_dir/wandb`, oldest first."""
    return [read_run(p) for p in sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))]
