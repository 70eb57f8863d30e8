"""Side features of a task's examples (knowledge injection, Ostendorff et al. 2019): reading them,
checking them, and scaling them with statistics of the training split alone.

Where they come from (a sequence task read from its own files: task=csv, or a GLUE task with
task.data_dir):

- `task.feature_fields`: {column: numeric | categorical} of the task's rows, e.g.
  `task.feature_fields={length: numeric, section: categorical}`;
- `task.feature_file`: one vector of numbers per example, keyed by the example's id (the row's
  `task.id_field` column): a `.npy` matrix (N, d) whose row i is the example with id i, or a
  `.jsonl` file with one `{"id": ..., "features": [numbers]}` object per line.

An example's raw features (`Example.features`) are the feature_fields' values in their order
(numbers as float, categories as their text), then the file's vector. A missing, empty,
non-numeric or non-finite value, an id the file lacks, a vector of another length: one message
naming the file and line (or row), the bad value and the fix; never a silent 0.

`FeatureScaler` turns raw features into what the model reads: every numeric value standardised,
(x - mean) / std, and every category an index into its column's vocabulary (index 0: a category
the training split never showed). Its statistics come from the training split only, so the
validation and test examples never shape them; they are saved with the run (`state()`) and
`bertlab predict` / `evaluate` use the saved ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import fields

KINDS = ("numeric", "categorical")
FILE_SUFFIXES = (".npy", ".jsonl")
# the batch keys the data module adds and the fusion module reads (heads/fusion.py)
NUMERIC_KEY, CATEGORICAL_KEY = "feature_numeric", "feature_categorical"


def feature_fields(task) -> dict[str, str]:
    """task.feature_fields as {column: kind}, checked ({} when unset)."""
    spec = task.get("feature_fields")
    if spec is None:
        return {}
    if not isinstance(spec, Mapping) or not spec:
        raise ConfigError(
            f"task.feature_fields={spec} is invalid: give a mapping of column to kind, e.g. "
            "'task.feature_fields={length: numeric, section: categorical}', or null for none."
        )
    out = {}
    for column, kind in spec.items():
        if kind not in KINDS:
            raise ConfigError(
                f"task.feature_fields.{column}={kind} is invalid; valid kinds: {', '.join(KINDS)} "
                f"(e.g. 'task.feature_fields={{{column}: numeric}}')."
            )
        out[str(column)] = str(kind)
    return out


def wants_features(task) -> bool:
    return bool(task.get("feature_fields")) or task.get("feature_file") is not None


def check_feature_keys(cfg) -> None:
    """The task's feature keys and features.fusion agree, before any data loads."""
    task = cfg.task
    fusion = cfg.features.fusion if "features" in cfg else "none"
    if fusion not in FUSIONS:
        raise ConfigError(f"features.fusion={fusion} is invalid; valid: {', '.join(FUSIONS)}.")
    feature_fields(task)
    path = task.get("feature_file")
    if path is not None:
        suffix = Path(str(path)).suffix
        if suffix not in FILE_SUFFIXES:
            raise ConfigError(
                f"task.feature_file={path}: unknown format '{suffix or '(no extension)'}'; give a .npy matrix (row i = "
                'the example with id i) or a .jsonl file of {"id": ..., "features": [...]} lines.'
            )
        if task.get("id_field") is None:
            raise ConfigError(
                f"task.feature_file={path} is keyed by example id: set task.id_field to the column of the task's "
                "rows that holds each example's id."
            )
    if fusion != "none" and not wants_features(task):
        raise ConfigError(
            f"features.fusion={fusion} has no features to fuse: set task.feature_fields (columns of the task's "
            "rows) and/or task.feature_file, or use features.fusion=none."
        )
    # fusion=none with features set is the baseline of a sweep over features= (one command): the
    # features are read and checked, and the model does not see them (fit.py says so in one line)
    if wants_features(task) and (task.source not in ("csv", "glue") or task.data_dir is None):
        raise ConfigError(
            f"task={task.name}: side features are read from the task's own files (task=csv, or a GLUE task with "
            "task.data_dir); this task has no feature columns. Build a csv task from it (docs: knowledge injection)."
        )


FUSIONS = ("none", "last_layer", "embedding")


def number(value, where: str, field: str) -> float:
    """A numeric feature: a JSON number or a plain decimal number, finite."""
    if value is None or isinstance(value, str) and not value.strip():
        raise DataError(
            f"{where}: the feature '{field}' is missing (empty{' or null' if value is None else ''}); every example "
            "needs a value: fill it in (e.g. 0 with a column saying it was missing) or drop the row."
        )
    raw = value.strip() if isinstance(value, str) else value
    spelt = isinstance(raw, str) and fields.ASCII_NUMBER.fullmatch(raw)
    if isinstance(raw, bool) or not (isinstance(raw, (int, float)) or spelt):
        raise DataError(
            f"{where}: the feature '{field}' is {value!r}, not a number (task.feature_fields.{field}=numeric); "
            f"fix the value, or declare the column categorical ('task.feature_fields={{{field}: categorical}}')."
        )
    result = float(raw)
    if not math.isfinite(result):
        raise DataError(f"{where}: the feature '{field}' is {value!r}, not a finite number; fix the value.")
    return result


def category(value, where: str, field: str) -> str:
    if value is None or isinstance(value, str) and not value.strip():
        raise DataError(
            f"{where}: the feature '{field}' is missing (empty{' or null' if value is None else ''}); every example "
            "needs a category: fill it in (e.g. 'unknown') or drop the row."
        )
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: the categorical feature '{field}' must be a string or an integer; found {value!r}.")
    return str(value).strip()


def row_features(row: dict, where: str, spec: dict[str, str], vectors: FeatureFile | None, id_field) -> tuple:
    """The raw features of one row: its feature_fields' values, then its vector from the feature file."""
    missing = [c for c in spec if c not in row] + ([id_field] if vectors and id_field not in row else [])
    if missing:
        raise DataError(
            f"{where}: no column {missing} (task.feature_fields={dict(spec)}"
            + (f", task.id_field={id_field}" if vectors else "")
            + f"); columns found: {list(row)}."
        )
    values = tuple(number(row[c], where, c) if k == "numeric" else category(row[c], where, c) for c, k in spec.items())
    if vectors is not None:
        values += vectors.vector(row[id_field], where)
    return values


class FeatureFile:
    """The vectors of `task.feature_file`, by example id (text: '7' and 7 are the same id)."""

    def __init__(self, path):
        self.path = Path(str(path)).expanduser()
        if not self.path.is_file():
            raise ConfigError(f"task.feature_file={path}: no such file.")
        self.by_id: dict[str, tuple[float, ...]] = {}
        self.where: dict[str, str] = {}
        if self.path.suffix == ".npy":
            self._read_npy()
        else:
            self._read_jsonl()
        if not self.by_id:
            raise DataError(f"{self.path} holds no feature vectors; it must have one per example.")
        self.dim = len(next(iter(self.by_id.values())))

    def _read_npy(self) -> None:
        import numpy as np

        try:
            matrix = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"{self.path} is not a readable .npy array ({err}).") from None
        if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(matrix.dtype, np.bool_):
            raise DataError(
                f"{self.path} holds a {matrix.dtype} array of shape {matrix.shape}; it must be a 2-D array of numbers, "
                "(examples, features), row i = the example with id i."
            )
        bad = np.argwhere(~np.isfinite(matrix))
        if len(bad):
            row, col = bad[0]
            raise DataError(
                f"{self.path}, row {row}: value {matrix[row, col]} (column {col}) is not a finite number; fix the array."
            )
        for i, vector in enumerate(matrix.astype(float).tolist()):
            self.by_id[str(i)] = tuple(vector)
            self.where[str(i)] = f"{self.path}, row {i}"

    def _read_jsonl(self) -> None:
        with fields.decoding(self.path, "utf-8-sig", None), open(self.path, encoding="utf-8-sig") as f:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                where = f"{self.path}, line {line}"
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not valid JSON ({exc}).") from None
                if not isinstance(obj, dict) or "id" not in obj or "features" not in obj:
                    raise DataError(
                        f'{where}: expected an object {{"id": ..., "features": [numbers]}}; found {text.strip()[:80]}.'
                    )
                key = str(obj["id"]).strip()
                vector = obj["features"]
                if not isinstance(vector, list) or not vector:
                    raise DataError(f"{where}: 'features' must be a non-empty list of numbers; found {vector!r}.")
                values = tuple(number(v, where, f"features[{i}]") for i, v in enumerate(vector))
                if self.by_id:
                    first_key = next(iter(self.by_id))
                    expected = len(self.by_id[first_key])
                    if len(values) != expected:
                        raise DataError(
                            f"{where}: {len(values)} feature values, but {self.where[first_key]} has {expected}; "
                            "every vector must have the same length."
                        )
                if key in self.by_id:
                    raise DataError(f"{where}: id '{key}' again (first at {self.where[key]}); each id once.")
                self.by_id[key] = values
                self.where[key] = where

    def vector(self, example_id, where: str) -> tuple[float, ...]:
        key = str(example_id).strip()
        if key not in self.by_id:
            rows = f"{len(self.by_id)} rows (ids 0 to {len(self.by_id) - 1})" if self.path.suffix == ".npy" else None
            raise DataError(
                f"{where}: id '{key}' has no vector in {self.path} "
                f"({rows or f'{len(self.by_id)} ids'}); add it, or check task.id_field."
            )
        return self.by_id[key]


def feature_kinds(task, file_dim: int = 0) -> list[str]:
    return [*feature_fields(task).values(), *["numeric"] * file_dim]


def feature_names(task, file_dim: int = 0) -> list[str]:
    return [*feature_fields(task), *[f"file[{i}]" for i in range(file_dim)]]


@dataclass
class FeatureScaler:
    """Raw features -> (standardised numbers, category indices). `fit` on the training split only."""

    names: list[str]
    kinds: list[str]
    mean: list[float]  # per numeric feature, in order
    std: list[float]
    vocab: list[list[str]]  # per categorical feature: the training split's categories, sorted

    @classmethod
    def fit(cls, train: list, names: list[str], kinds: list[str]) -> FeatureScaler:
        numeric = [i for i, k in enumerate(kinds) if k == "numeric"]
        categorical = [i for i, k in enumerate(kinds) if k == "categorical"]
        n = len(train)
        mean, std = [], []
        for i in numeric:
            values = [e.features[i] for e in train]
            m = sum(values) / n
            s = math.sqrt(sum((v - m) ** 2 for v in values) / n)  # population std, as sklearn's StandardScaler
            mean.append(m)
            std.append(s if s > 0 else 1.0)  # a constant feature stays 0 instead of dividing by 0
        vocab = [sorted({e.features[i] for e in train}) for i in categorical]
        return cls(list(names), list(kinds), mean, std, vocab)

    @property
    def numeric_count(self) -> int:
        return self.kinds.count("numeric")

    @property
    def vocab_sizes(self) -> list[int]:
        return [len(v) + 1 for v in self.vocab]  # + index 0, unseen in training

    def transform(self, raw: tuple) -> dict:
        """The batch fields of one example's raw features."""
        if raw is None or len(raw) != len(self.kinds):
            raise DataError(
                f"an example has {0 if raw is None else len(raw)} features, the run was trained with {len(self.kinds)} "
                f"({', '.join(self.names)})."
            )
        numbers, categories = [], []
        index = [{c: j + 1 for j, c in enumerate(v)} for v in self.vocab]
        for value, kind in zip(raw, self.kinds):
            if kind == "numeric":
                k = len(numbers)
                numbers.append((value - self.mean[k]) / self.std[k])
            else:
                categories.append(index[len(categories)].get(value, 0))
        out = {}
        if numbers:
            out[NUMERIC_KEY] = numbers
        if categories:
            out[CATEGORICAL_KEY] = categories
        return out

    def state(self) -> dict:
        return {"names": self.names, "kinds": self.kinds, "mean": self.mean, "std": self.std, "vocab": self.vocab}

    @classmethod
    def from_state(cls, state: dict) -> FeatureScaler:
        return cls(**{k: list(state[k]) for k in ("names", "kinds", "mean", "std", "vocab")})
