"""The per-run record `result.json`, read by the report and by sweep resume.

Written atomically (write a temporary file in the same folder, then rename): a reader never
sees half a file, and a run killed while writing leaves the previous record intact.
"""

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(record), f, indent=2, sort_keys=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_result(run_dir: Path) -> dict | None:
    """The run's record, or None when absent or unreadable."""
    try:
        return json.loads((Path(run_dir) / RESULT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
