"""Tagged sentences (token classification): CoNLL column files, JSONL or the hub, checked.

One sentence is a tuple of words and one tag per word (an index into `task.labels`). Pools:
{"train", "dev", "test"} where the task has its own test file (CoNLL-2003: train.txt, valid.txt,
test.txt), else {"train", "dev"} (sampling.make_splits then splits dev into val and test).

CoNLL files: one word per line, space-separated columns (word first, e.g. `EU NNP B-NP B-ORG`),
the tag in column `task.tag_column` (0-based: 3 is CoNLL-2003's NER tag), a blank line between
sentences, `-DOCSTART-` lines between documents. JSONL files (`.jsonl`): one sentence per line,
`{"tokens": [...], "tags": [...]}` (the field names are task.text_fields[0] and task.label_field).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, open_dict

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import fields
from bertlab.data.hub import load_hub
from bertlab.data.task_files import task_files

DOCSTART = "-DOCSTART-"
SCHEMES = ("IOB1", "IOB2")


@dataclass(frozen=True)
class TaggedSentence:
    tokens: tuple[str, ...]
    tags: tuple[int, ...]  # indices into task.labels, one per token

    # The fields every example has (sampling.py, token_cache.py and run/fit.py read them):
    # the words are the text, there is no second segment, the tag sequence is the label.
    @property
    def text_a(self) -> tuple[str, ...]:
        return self.tokens

    @property
    def text_b(self) -> None:
        return None

    @property
    def label(self) -> tuple[int, ...]:
        return self.tags


def read_tagged(task: DictConfig) -> dict[str, list[TaggedSentence]]:
    """The labelled pools. With `task.labels: null` the tag set is inferred from the training file
    and written back into task.labels (read before anything needs the number of labels)."""
    if task.source == "hub" or (task.source == "conll" and task.data_dir is None):
        return read_hub(task)
    if task.source == "conll":
        return read_files(task)
    raise ConfigError(f"task.source={task.source} is unknown for token classification; valid: conll, hub.")


# ---------------------------------------------------------------- local files


def read_files(task: DictConfig) -> dict[str, list[TaggedSentence]]:
    keys = [("train", "train_file"), ("dev", "dev_file")] + ([("test", "test_file")] if task.test_file else [])
    paths = task_files(task, keys)
    raw = {}  # pool -> [(where, words, tag names)]: tags are mapped once all are known
    for pool, key in keys:
        path = paths[pool]
        reader = _jsonl_sentences if path.suffix == ".jsonl" else _conll_sentences
        raw[pool] = list(reader(path, task))
        if not raw[pool]:
            raise DataError(f"{path} holds no sentence; task.{key} must name a file with at least one.")
    if task.labels is None:
        with open_dict(task):
            task.labels = infer_labels({tag for _, _, tags in raw["train"] for tag, _ in tags})
    index = label_index(task)
    pools = {
        pool: [sentence(words, tags, where, task, index) for where, words, tags in rows] for pool, rows in raw.items()
    }
    check_tag_names(list(map(str, task.labels)), task.tag_scheme)  # tags of task.labels no file uses
    return pools


def _conll_sentences(path: Path, task: DictConfig) -> Iterator[tuple[str, tuple, list]]:
    """(where, words, [(tag, where of its line)]) per sentence of a CoNLL column file."""
    column = task.tag_column
    width = None  # the column count of the file's first word line; every word line must have it
    words, tags, start = [], [], 0
    encoding = fields.codec(task.encoding)
    with fields.decoding(path, encoding), open(path, encoding=encoding) as f:
        for line_no, line in enumerate(f, 1):
            columns = line.split()
            if not columns or columns[0] == DOCSTART:  # a sentence (or document) ends here
                if words:
                    yield f"{path}, line {start}", tuple(words), tags
                words, tags = [], []
                continue
            if width is None:
                width = len(columns)
                if column >= width:
                    raise ConfigError(
                        f"task.tag_column={column} is out of range: {path}, line {line_no} has {width} columns "
                        f"(0 to {width - 1}; the word is column 0). CoNLL-2003's NER tag is column 3."
                    )
            if len(columns) != width:
                raise DataError(
                    f"{path}, line {line_no}: {len(columns)} columns, the file's first word line has {width} "
                    f"({line.rstrip()!r}); CoNLL files need the same space-separated columns on every word line."
                )
            if not words:
                start = line_no
            words.append(columns[0])
            tags.append((columns[column], f"{path}, line {line_no}"))
    if words:
        yield f"{path}, line {start}", tuple(words), tags


def _jsonl_sentences(path: Path, task: DictConfig) -> Iterator[tuple[str, tuple, list]]:
    tokens_key, tags_key = str(task.text_fields[0]), str(task.label_field)
    encoding = fields.codec(task.encoding)
    with fields.decoding(path, encoding), open(path, encoding=encoding) as f:
        for line_no, text in enumerate(f, 1):
            if not text.strip():
                continue
            where = f"{path}, line {line_no}"
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc}).") from None
            if not isinstance(row, dict) or tokens_key not in row or tags_key not in row:
                found = list(row) if isinstance(row, dict) else type(row).__name__
                raise DataError(
                    f"{where}: expected a JSON object with '{tokens_key}' and '{tags_key}' (task.text_fields[0], "
                    f"task.label_field); found {found}."
                )
            words, tags = row[tokens_key], row[tags_key]
            if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags) or not words:
                raise DataError(
                    f"{where}: '{tokens_key}' and '{tags_key}' must be non-empty lists of the same length "
                    f"(one tag per word); got {_length(words)} words and {_length(tags)} tags."
                )
            # a null, empty or blank word has no sub-word piece (its tag would never be trained or
            # scored); a number or a list is no word: refused, as every reader's fields are
            words = tuple(fields.text(w, f"{where} (word {i + 1})", tokens_key, "word") for i, w in enumerate(words))
            tags = [(fields.class_label(t, f"{where} (word {i + 1})", tags_key), where) for i, t in enumerate(tags)]
            yield where, words, tags


def _length(value) -> str:
    return str(len(value)) if isinstance(value, list) else f"a {type(value).__name__}"


# ---------------------------------------------------------------- tags


def infer_labels(tags: set[str]) -> list[str]:
    """`O` first, then by entity type, B- before I- (the order of the hub's CoNLL-2003 names)."""
    return sorted(tags, key=lambda t: (t != "O", t[2:] if t[1:2] == "-" else t, t))


def label_index(task: DictConfig) -> dict[str, int]:
    return {str(label): i for i, label in enumerate(task.labels)}


def sentence(words: tuple, tags: list, where: str, task: DictConfig, index: dict[str, int]) -> TaggedSentence:
    ids = []
    for tag, tag_where in tags:
        if tag not in index:
            raise DataError(
                f"{tag_where}: tag '{tag}' (column task.tag_column={task.tag_column} / field '{task.label_field}') "
                f"is not one of task.labels={list(index)}; fix the file, add it to task.labels, or check "
                "task.tag_column."
            )
        ids.append(index[tag])
    check_scheme([t for t, _ in tags], task.tag_scheme, where)
    return TaggedSentence(tuple(words), tuple(ids))


def _not_a_scheme_tag(tag: str, scheme: str) -> str:
    return (
        f"tag '{tag}' is not an {scheme} tag (O, B-TYPE or I-TYPE): task.tag_scheme={scheme} scores entities, "
        "and seqeval's strict mode fails on any other tag. Tags that are no entities (POS, chunk or integer "
        "tags): set task.tag_scheme=null; else fix the tag."
    )


def check_tag_names(labels: list[str], scheme: str | None) -> None:
    """Every tag of task.labels is one the scheme knows (a label no file uses reaches seqeval as a
    prediction all the same)."""
    if scheme is None:
        return
    for tag in labels:
        if tag != "O" and (tag[:2] not in ("B-", "I-") or not tag[2:]):
            raise ConfigError(f"task.labels={labels}: {_not_a_scheme_tag(tag, scheme)}")


def check_scheme(tags: list[str], scheme: str | None, where: str) -> None:
    """The gold tags must be valid under task.tag_scheme: scored strictly (seqeval's strict mode),
    IOB1 data read as IOB2 would silently lose every entity that starts with I-."""
    if scheme is None:
        return
    previous = "O"
    for position, tag in enumerate(tags):
        prefix, kind = tag[:2], tag[2:]
        if tag != "O" and (prefix not in ("B-", "I-") or not kind):
            raise DataError(f"{where} (word {position + 1}): {_not_a_scheme_tag(tag, scheme)}")
        continues = previous[2:] == kind and previous != "O"
        if scheme == "IOB2" and prefix == "I-" and not continues:
            raise DataError(
                f"{where} (word {position + 1}): tag '{tag}' follows '{previous}', which IOB2 does not allow (an "
                "entity starts with B-); the file looks like IOB1: set task.tag_scheme=IOB1, or null to score "
                "leniently as conlleval does."
            )
        if scheme == "IOB1" and prefix == "B-" and not continues:
            raise DataError(
                f"{where} (word {position + 1}): tag '{tag}' follows '{previous}'; IOB1 uses B- only between two "
                "entities of the same type: the file looks like IOB2: set task.tag_scheme=IOB2."
            )
        previous = tag


# ---------------------------------------------------------------- Hugging Face hub

# The hub's CoNLL-2003 copy (eriktks/conll2003) keeps each tag column as a feature of its own.
HUB_TAG_FEATURES = {1: "pos_tags", 2: "chunk_tags", 3: "ner_tags"}


def read_hub(task: DictConfig) -> dict[str, list[TaggedSentence]]:
    splits = load_hub(
        task, f"a folder holding {task.train_file}, {task.dev_file} and {task.test_file} (the CoNLL column files)"
    )
    feature = HUB_TAG_FEATURES.get(task.tag_column)
    if feature is None or feature not in splits["train"].features:
        raise ConfigError(
            f"task.tag_column={task.tag_column}: the hub copy {task.hub_name} has no such tag column; "
            f"valid: {', '.join(f'{c} ({f})' for c, f in HUB_TAG_FEATURES.items())}."
        )
    names = splits["train"].features[feature].feature.names  # a Sequence of ClassLabel
    if task.labels is None:
        with open_dict(task):
            task.labels = list(names)
    index = label_index(task)
    pools = {}
    for pool, split in (("train", "train"), ("dev", "validation"), ("test", "test")):
        rows = splits[split]
        pools[pool] = [
            sentence(
                tuple(row["tokens"]),
                [(names[t], f"{task.hub_name} {split}, row {i}") for t in row[feature]],
                f"{task.hub_name} {split}, row {i}",
                task,
                index,
            )
            for i, row in enumerate(rows)
            if row["tokens"] and row["tokens"] != [DOCSTART]  # the hub keeps the -DOCSTART- lines as rows
        ]
    check_tag_names(list(map(str, task.labels)), task.tag_scheme)
    return pools
