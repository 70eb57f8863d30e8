"""The one rule every reader applies to its files and fields (GLUE/CSV/TSV/JSONL, CoNLL and token
JSONL, multiple choice, SQuAD JSON/JSONL, `bertlab predict`'s input).

A file is decoded with a codec named by `task.encoding` (UTF-8 read as utf-8-sig, so a byte-order
mark is never part of the first word or column name); a byte that does not decode is one message
naming the file, the line and the fix. A field is checked for presence, type and emptiness before
it becomes part of an example: a JSON `null`, `true`, a number or a list where text belongs would
otherwise become the text "None", "True", "5" or "['a']" (or a class of that name) and train
silently on it. Each message names where (file and line, or the example's id), the bad value and
what to do. Readers pass `where` ("FILE, line N"); `fix` is the option that names the encoding
(`task.encoding=...` for a task, `--encoding ...` for `bertlab predict`).
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bertlab.core.errors import ConfigError, DataError

TASK_ENCODING = "task.encoding"
ASCII_INTEGER = re.compile(r"-?[0-9]+")  # str.isdigit() is true for '²' and '١', which int() refuses or reads
# float() also reads '1_000' (1000.0) and Arabic-Indic digits: a score is written as a plain decimal number
NOT_FINITE = ("nan", "inf", "infinity")  # numbers to float(), refused below as not finite
ASCII_NUMBER = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def codec(name, key: str = TASK_ENCODING) -> str:
    """The codec to open files with for `name` (task.encoding). UTF-8 is read as utf-8-sig: a
    leading byte-order mark (MRPC's files have one) is not part of the first column's name."""
    name = str(name)
    try:
        found = codecs.lookup(name).name
    except LookupError:
        raise ConfigError(
            f"{key}={name} is not an encoding Python knows; e.g. utf-8 (the default), latin-1, cp1252, utf-16."
        ) from None
    return "utf-8-sig" if found == "utf-8" else name


@contextmanager
def decoding(path: Path, encoding: str, key: str | None = TASK_ENCODING) -> Iterator[None]:
    """Reads of `path` inside this block that hit an undecodable byte raise one DataError naming the
    file, the line and `key` (Python's UnicodeDecodeError names neither the file nor the line)."""
    try:
        yield
    except UnicodeDecodeError:
        raise DataError(decode_error(Path(path), encoding, key)) from None


def decode_error(path: Path, encoding: str, key: str | None = TASK_ENCODING) -> str:
    """`key`: the option that names the file's encoding (`task.encoding`, `--encoding`); None for a
    file that is UTF-8 by definition (one bertlab wrote, a pre-training corpus): then convert it."""
    data = path.read_bytes()
    shown = "utf-8" if encoding == "utf-8-sig" else encoding
    if key is None:
        fix = "the file must be UTF-8: convert it (e.g. iconv -f latin1 -t utf-8)."
    else:
        option = f"{key}=" if key.startswith("task.") else f"{key} "
        fix = (
            f"the file has another encoding: name it with {option}... (e.g. {option}latin-1 or {option}cp1252), "
            "or convert the file to UTF-8."
        )
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        pos = exc.start
        line = data.count(b"\n", 0, pos) + 1
        column = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        return f"{path}, line {line}: byte 0x{data[pos]:02x} (byte {column} of the line) is not valid {shown}; {fix}"
    return f"{path} cannot be decoded as {shown}; {fix}"


def read_text(path: Path, encoding: str, key: str | None = TASK_ENCODING) -> str:
    """A whole file (SQuAD's one JSON document), decoded under the rule above."""
    with decoding(path, encoding, key), open(path, encoding=encoding) as f:
        return f.read()


def _found(value) -> str:
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else f"{value!r} (type {type(value).__name__})"


def text(value, where: str, field: str, what: str = "text") -> str:
    """A non-empty string, stripped of nothing (its spaces may matter to offsets): JSON null, a
    bool, a number, a list or an empty / whitespace-only string is refused."""
    if not isinstance(value, str):
        raise DataError(
            f"{where}: the {what} in field '{field}' must be a string; found {_found(value)}. "
            "Write it as a JSON string (in quotes), or fix the field name."
        )
    if not value.strip():
        raise DataError(
            f"{where}: the {what} in field '{field}' is empty; every example needs one: fill it in or drop it."
        )
    return value


def class_label(value, where: str, field: str) -> str:
    """A class label as the key it is looked up by: a non-empty string or an integer (JSON), stripped
    ("pos " in a hand-edited CSV is "pos"). null, a bool, a float, a list or an object is refused:
    with labels inferred from the file it would silently become a class of its own ("True", "1.0")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(
            f"{where}: the label in field '{field}' is empty{' (null)' if value is None else ''}; every example "
            "needs one: fill it in or remove the row."
        )
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(
            f"{where}: the label in field '{field}' must be a class name (a string) or an integer; found "
            f"{_found(value)}. Fix the file, or check task.label_field."
        )
    return str(value).strip()


def index(value, where: str, field: str, count: int, means: str, fix: str) -> int:
    """A 0-based index below `count` (`means`: what it indexes; `fix`: the key that sets `count`): a
    JSON integer or a string of ASCII digits. A bool, a float, '+1' or a Unicode digit ('²', which
    str.isdigit() accepts and int() refuses; '١', which int() reads as 1) is refused."""
    raw = value.strip() if isinstance(value, str) else value
    if isinstance(raw, bool) or not (isinstance(raw, int) or isinstance(raw, str) and ASCII_INTEGER.fullmatch(raw)):
        raise DataError(
            f"{where}: label {_found(value)} in field '{field}' is not {means} (an integer from 0 to {count - 1}, "
            "in ASCII digits); fix the example or check the field name."
        )
    number = int(raw)
    if not 0 <= number < count:
        raise DataError(
            f"{where}: label {number} in field '{field}' is out of range: {means} is 0 to {count - 1} ({fix}, 0-based)."
        )
    return number


def score(value, where: str, field: str) -> float:
    """A regression target: a JSON number or a plain decimal number (ASCII digits, optional sign,
    point and exponent); not a bool, '1_000', '١' (which float() reads), NaN or infinity."""
    raw = value.strip() if isinstance(value, str) else value
    spelt = isinstance(raw, str) and (ASCII_NUMBER.fullmatch(raw) or raw.lower().lstrip("+-") in NOT_FINITE)
    if isinstance(raw, bool) or not (isinstance(raw, (int, float)) or spelt):
        raise DataError(
            f"{where}: label {_found(value)} in field '{field}' is not a number (task.problem=regression: a decimal "
            "number such as 3.8); fix the score or remove the row."
        )
    number = float(raw)
    if not math.isfinite(number):  # one such score makes every loss, and the metric used to select, NaN
        raise DataError(
            f"{where}: label {_found(value)} in field '{field}' is not a finite number (task.problem=regression); "
            "fix the score or remove the row."
        )
    return number


def unique_labels(labels, key: str = "task.labels") -> None:
    """task.labels lists each class once: a duplicate is a class that is never a target (its index
    is never looked up), and the model has an output for it all the same."""
    if labels is None:
        return
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        name = str(label).strip()
        if name in seen:
            raise ConfigError(
                f"{key}={list(labels)} lists '{name}' twice (positions {seen[name]} and {i}); each class once: "
                "drop the duplicate (labels are compared as stripped text, so 1 and '1' are the same class)."
            )
        seen[name] = i
