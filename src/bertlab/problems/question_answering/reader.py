"""Extractive question answering examples (task=squad, task=qa): SQuAD JSON, JSONL or the hub, checked.

One example is a question, the context it is asked about and its gold answers: spans of the
context, each a text and the character offset where it starts (SQuAD v1.1: one answer per
training question, up to several per dev question). Pools: {"train", "dev"}; sampling.make_splits
then draws train/val/test from them as for the other tasks (questions at random by data_seed).

Files: SQuAD's own JSON (`train-v1.1.json`: {"data": [{"paragraphs": [{"context", "qas": [{"id",
"question", "answers": [{"text", "answer_start"}]}]}]}]}), or `.jsonl`, one question per line in the
hub's flat form: {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}}.
Every answer must be the context's text at its answer_start (a shifted offset would train the model
on the wrong span): one message naming the file and the question's id otherwise.

SQuAD 2.0's unanswerable questions (no answer) are refused: this is SQuAD v1.1's task (every
question has an answer in its context).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import fields
from bertlab.data.hub import load_hub
from bertlab.data.task_files import task_files


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # the gold answer texts
    starts: tuple[int, ...]  # the character offset of each answer in the context

    # The fields every example has (sampling.py, token_cache.py, pretrain/corpus.py and run/fit.py read them).
    @property
    def text_a(self) -> str:
        return self.question

    @property
    def text_b(self) -> str:
        return self.context

    @property
    def label(self) -> QAExample:
        # the gold answers with the context they index into: the baseline (metrics.py)
        # answers from the context, and Problem.baseline receives the labels only
        return self


def read_squad(task: DictConfig) -> dict[str, list[QAExample]]:
    if task.source == "hub" or (task.source == "squad" and task.data_dir is None):
        return read_hub(task)
    if task.source == "squad":
        return read_files(task)
    raise ConfigError(f"task.source={task.source} is unknown for question answering; valid: squad, hub.")


# ---------------------------------------------------------------- local files


def read_files(task: DictConfig) -> dict[str, list[QAExample]]:
    keys = [("train", "train_file"), ("dev", "dev_file")]
    paths = task_files(task, keys)
    pools = {}
    for pool, key in keys:
        path = paths[pool]
        rows = _jsonl_rows(path, task) if path.suffix == ".jsonl" else _squad_rows(path, task)
        pools[pool] = unique_ids([(example(row, where), where) for where, row in rows])
        if not pools[pool]:
            raise DataError(f"{path} holds no question; task.{key} must name a file with at least one.")
    return pools


def _squad_rows(path: Path, task: DictConfig):
    """(where, flat row) per question of a SQuAD JSON file."""
    try:
        root = json.loads(fields.read_text(path, fields.codec(task.encoding)))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); SQuAD files are one JSON document.") from None
    articles = root.get("data") if isinstance(root, dict) else None
    if not isinstance(articles, list):
        raise DataError(
            f'{path}: expected SQuAD\'s JSON ({{"data": [{{"paragraphs": [...]}}]}}); found '
            f"{list(root) if isinstance(root, dict) else type(root).__name__} at the top. A file of one JSON object "
            "per line must end in .jsonl."
        )
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(_field(article, "paragraphs", list, f"{path}, data[{a}]")):
            where = f"{path}, data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where)
            for q, qa in enumerate(_field(paragraph, "qas", list, where)):
                qa_where = f"{where}.qas[{q}]"
                answers = _field(qa, "answers", list, qa_where)
                for answer in answers:
                    _field(answer, "text", str, qa_where)
                    _field(answer, "answer_start", int, qa_where)
                row = {
                    "id": _field(qa, "id", (str, int), qa_where),
                    "question": _field(qa, "question", str, qa_where),
                    "context": context,
                    "answers": {
                        "text": [x["text"] for x in answers],
                        "answer_start": [x["answer_start"] for x in answers],
                    },
                }
                yield f"{path}, question id {row['id']}", row


def _field(node, key: str, kind: type, where: str):
    if not isinstance(node, dict) or key not in node:
        found = list(node) if isinstance(node, dict) else type(node).__name__
        raise DataError(f"{where}: expected a '{key}' field (SQuAD format); found {found}.")
    value = node[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
        raise DataError(f"{where}: '{key}' must be a {kinds}; found {value!r}.")
    return value


FIELDS = ("id", "question", "context", "answers")


def _jsonl_rows(path: Path, task: DictConfig):
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
            if not isinstance(row, dict) or any(key not in row for key in FIELDS):
                found = list(row) if isinstance(row, dict) else type(row).__name__
                raise DataError(
                    f"{where}: expected a JSON object with {', '.join(FIELDS)} (answers: "
                    f'{{"text": [...], "answer_start": [...]}}); found {found}.'
                )
            yield f"{where} (question id {row['id']})", row


def unique_ids(checked: list[tuple[QAExample, str]]) -> list[QAExample]:
    """The examples of one file, each id once: messages, predictions and SQuAD's own evaluation
    name a question by its id."""
    first: dict[str, str] = {}
    for example_, where in checked:
        if example_.id in first:
            raise DataError(
                f"{where}: the id '{example_.id}' is the id of another question too ({first[example_.id]}); "
                "give every question an id of its own."
            )
        first[example_.id] = where
    return [e for e, _ in checked]


def example(row: dict, where: str) -> QAExample:
    """A checked example: strings where strings belong, and every answer at its answer_start."""
    qid = row["id"]
    if isinstance(qid, bool) or not isinstance(qid, (str, int)) or not str(qid).strip():
        raise DataError(f"{where}: 'id' must be a non-empty string (or an integer); found {qid!r}.")
    for key in ("question", "context"):
        fields.text(row[key], where, key)
    answers = row["answers"]
    texts = answers.get("text") if isinstance(answers, dict) else None
    starts = answers.get("answer_start") if isinstance(answers, dict) else None
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise DataError(
            f'{where}: \'answers\' must be {{"text": [...], "answer_start": [...]}}, two lists of the same '
            f"length; found {answers!r}."
        )
    if not texts:
        raise DataError(
            f"{where}: the question has no answer (a SQuAD 2.0 unanswerable question?); question answering here "
            "is SQuAD v1.1's task, every question answered by a span of its context: drop such questions."
        )
    context = row["context"]
    for text, start in zip(texts, starts):
        # a blank answer covers no token: its span would be no span at all
        fields.text(text, where, "answers.text", "answer")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise DataError(
                f"{where}: answer {text!r} needs an integer answer_start >= 0 (its character offset in the context); "
                f"found {start!r}."
            )
        if context[start : start + len(text)] != text:
            raise DataError(
                f"{where}: answer {text!r} is not at its answer_start={start} (the context there reads "
                f"{context[start : start + len(text)]!r}); answer_start is the 0-based character offset of the answer "
                "in the context: fix it in the file."
            )
    return QAExample(str(row["id"]), row["question"], context, tuple(texts), tuple(starts))


# ---------------------------------------------------------------- Hugging Face hub


def read_hub(task: DictConfig) -> dict[str, list[QAExample]]:
    splits = load_hub(task, f"a folder holding {task.train_file} and {task.dev_file} (SQuAD's JSON files)")
    pools = {}
    for pool, split in (("train", "train"), ("dev", "validation")):
        rows = splits[split]
        missing = [key for key in FIELDS if key not in rows.column_names]
        if missing:
            raise DataError(
                f"{task.hub_name} {split} has no column(s) {missing}; expected SQuAD's {', '.join(FIELDS)}."
            )
        pools[pool] = [example(row, f"{task.hub_name} {split}, question id {row['id']}") for row in rows]
    return pools
