"""Multiple-choice examples (SWAG and the user's own files): CSV, TSV, JSONL or the hub, checked.

One example is a context, an optional second text (SWAG's `sent2`: the start of every ending, or a
question), N endings and the index of the right one. Pools: {"train", "dev"} (sampling.make_splits
splits dev into val and test, or draws val from train with task.n_val), plus "test" where the task
names a labelled test file of its own (`task.test_file`; SWAG's test.csv has no labels).

Fields are read by name from the header (CSV: comma-separated with quoting; JSONL: one object per
line; any other name: tab-separated, as GLUE's TSV), so SWAG's other columns (video-id, fold-ind,
startphrase, gold-source) are simply not read:
- task.text_fields: [context] or [context, second text] (SWAG: [sent1, sent2]);
- task.ending_fields: N fields of one ending each (SWAG: ending0..ending3), or one field that holds
  the list of N endings (a JSON list in a JSONL file, or a cell holding a JSON list);
- task.label_field: the 0-based index of the right ending; task.num_choices: N, the same for every
  example (checked, example by example).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import fields
from bertlab.data.hub import load_hub
from bertlab.data.readers import _read_rows
from bertlab.data.task_files import task_files


@dataclass(frozen=True)
class ChoiceExample:
    context: str
    question: str  # "" when the task has no second text field
    endings: tuple[str, ...]
    answer: int  # index of the right ending

    # The fields every example has (sampling.py, token_cache.py, pretrain/corpus.py and run/fit.py read
    # them): the context is the first segment, the second segments (the question or start of the
    # ending, then the ending, as transformers' run_swag.py pairs them) are text_b, the answer's index
    # is the label. text_b is exactly what the encoder reads, so the token cache key covers it; a
    # tuple, so the pretraining corpus joins the context and every ending into one document.
    @property
    def text_a(self) -> str:
        return self.context

    @property
    def text_b(self) -> tuple[str, ...]:
        return tuple(f"{self.question} {ending}" if self.question else ending for ending in self.endings)

    @property
    def label(self) -> int:
        return self.answer


def read_choices(task: DictConfig) -> dict[str, list[ChoiceExample]]:
    if task.source == "hub" or (task.source == "swag" and task.data_dir is None):
        return read_hub(task)
    if task.source in ("swag", "csv"):
        return read_files(task)
    raise ConfigError(f"task.source={task.source} is unknown for multiple choice; valid: swag, csv, hub.")


def fields_needed(task: DictConfig) -> list[str]:
    return [*map(str, task.text_fields), *map(str, task.ending_fields), str(task.label_field)]


# ---------------------------------------------------------------- one example


def make_choice(row: dict, where: str, task: DictConfig) -> ChoiceExample:
    """One checked example from a row (a CSV/TSV row of strings, a JSON object or a hub row)."""
    missing = [field for field in fields_needed(task) if field not in row]
    if missing:
        raise DataError(
            f"{where}: no field {missing} (task.text_fields={list(task.text_fields)}, "
            f"task.ending_fields={list(task.ending_fields)}, task.label_field={task.label_field}); "
            f"fields found: {list(row)}."
        )
    context_field = str(task.text_fields[0])
    context = _text(row[context_field], where, context_field, "context")
    question = ""
    if len(task.text_fields) > 1:  # may be empty: then each ending stands alone after the context
        field = str(task.text_fields[1])
        value = row[field]
        question = "" if value is None or value == "" else fields.text(value, where, field, "second text").strip()
    endings = _endings(row, where, task)
    return ChoiceExample(context, question, endings, _answer(row[str(task.label_field)], where, task))


def _text(value, where: str, field: str, what: str) -> str:
    return fields.text(value, where, field, what).strip()


def _endings(row: dict, where: str, task: DictConfig) -> tuple[str, ...]:
    n, fields = task.num_choices, [str(f) for f in task.ending_fields]
    if len(fields) > 1:
        return tuple(_text(row[field], where, field, "ending") for field in fields)
    field, value = fields[0], row[fields[0]]
    if isinstance(value, str) and value.lstrip().startswith("["):  # a CSV/TSV cell holding a JSON list
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: field '{field}' is not a valid JSON list of endings ({exc}).") from None
    if not isinstance(value, list):
        raise DataError(
            f"{where}: field '{field}' (task.ending_fields={fields}) must hold the list of the "
            f"{n} endings; got {type(value).__name__} {str(value)[:60]!r}. With one ending per field, "
            f"list the {n} fields in task.ending_fields."
        )
    if len(value) != n:
        raise DataError(
            f"{where}: {len(value)} endings in field '{field}', task.num_choices={n}; every example needs "
            f"exactly {n} (fix the example, or set task.num_choices)."
        )
    return tuple(_text(ending, f"{where} (ending {i})", field, "ending") for i, ending in enumerate(value))


def _answer(raw, where: str, task: DictConfig) -> int:
    n = task.num_choices
    return fields.index(raw, where, str(task.label_field), n, "the index of the right ending", f"task.num_choices={n}")


# ---------------------------------------------------------------- local files


def read_files(task: DictConfig) -> dict[str, list[ChoiceExample]]:
    keys = [("train", "train_file"), ("dev", "dev_file")] + ([("test", "test_file")] if task.test_file else [])
    paths = task_files(task, keys)
    encoding = fields.codec(task.encoding)
    pools = {}
    for pool, key in keys:
        path = paths[pool]
        pools[pool] = [make_choice(row, f"{path}, line {line}", task) for line, row in _read_rows(path, None, encoding)]
        if not pools[pool]:
            raise DataError(f"{path} has no examples (empty, or only a header); task.{key} must name one with some.")
    return pools


# ---------------------------------------------------------------- Hugging Face hub


def read_hub(task: DictConfig) -> dict[str, list[ChoiceExample]]:
    splits = load_hub(task, f"a folder holding {task.train_file} and {task.dev_file} (SWAG's CSV files)")
    # the hub's test split is unlabelled (label -1), as SWAG's test.csv: dev is halved into val/test
    return {
        pool: [
            make_choice(row, f"{task.hub_name}/{task.hub_config} {split}, row {i}", task)
            for i, row in enumerate(splits[split])
        ]
        for pool, split in (("train", "train"), ("dev", "validation"))
    }
