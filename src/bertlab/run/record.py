"""The per-run record `result.json`, read by the report and by sweep resume.

Written atomically (atomic.py): a reader never sees half a file, and a run killed while
writing, or a full disk, leaves the previous record intact.
"""

import json
import math
from pathlib import Path
from typing import Any

from bertlab.core.atomic import write_text_atomic

RESULT_FILE = "result.json"


def _jsonable(value: Any) -> Any:
    # NaN/inf are not valid JSON; write them as null so every JSON reader can load the file.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_json_atomic(path: Path, record: dict) -> None:
    # serialised before anything is written: a record that cannot be written leaves no file behind
    write_text_atomic(path, json.dumps(_jsonable(record), indent=2, sort_keys=False))


def read_result(run_dir: Path) -> dict | None:
    """The run's record, or None when absent or unreadable."""
    try:
        return json.loads((Path(run_dir) / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
