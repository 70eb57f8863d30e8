"""Which settings tell the runs of one task apart: the report's row keys.

The keys are the swept keys (`swept` in result.json, minus the replicate keys) whose value varies across
the runs, plus any other varying setting that the swept keys do not already determine (two
sweeps merged with different fixed learning rates must not share a row). A setting that
follows from the swept keys (`bias_correction` follows `optimizer`) adds no row key. Without
`swept`, the candidates are all settings in their recorded order. Settings that never vary
go into the table's "fixed" line.

The replicate keys (REPLICATES) say which repetition of a setting a run is, not which setting:
the training seed (`seed`, or `init_seed` and `order_seed` set apart, Dodge et al. 2020) and the
data split (`data_seed`: LM-BFF's protocol runs every setting on five splits). They are never row
keys: a row holds every split and seed of its setting, and the report pairs runs, and splits
their variance (variance.py), along them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bertlab.report.collect import Run

SEED = "seed"
DATA_SEED = "data_seed"
TRAINING_SEEDS = (SEED, "init_seed", "order_seed")  # init_seed, order_seed follow seed unless set apart
REPLICATES = (DATA_SEED, *TRAINING_SEEDS)


@dataclass
class Grouping:
    keys: list[str]  # row keys, in sweep order
    fixed: dict[str, object]  # settings with one value across the task's runs
    derived: list[str]  # varying settings determined by the keys


def normalise_key(key: str, settings: dict) -> str:
    """A swept override key as a settings key: `optimizer.lr` -> `lr` when settings has `lr`."""
    key = key.lstrip("+~")
    if key in settings:
        return key
    tail = key.rsplit(".", 1)[-1]
    return tail if tail in settings else key


def display(value) -> object:
    # None becomes a label, so grouping never drops it as a missing value
    return "None" if value is None else value


def setting_values(run: Run) -> dict:
    """The run's settings plus swept keys that settings lacks, taken from its overrides."""
    values = {key: display(value) for key, value in run.settings.items()}
    for key, raw in run.overrides.items():
        if key.startswith("hydra"):
            continue
        name = normalise_key(key, run.settings)
        values.setdefault(name, raw)
    return values


def settings_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run, one object column per setting (ints stay ints, None is 'None')."""
    frame = pd.DataFrame([setting_values(run) for run in runs], dtype=object)
    return frame.fillna("None") if len(frame) else frame


def sort_key(value):
    """Orders numbers numerically (3 before 10, also when written as strings), then text."""
    if isinstance(value, bool):
        return (1, float(value), "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (2, 0.0, str(value))


def _swept_order(runs: list[Run]) -> list[str]:
    order: list[str] = []
    for run in runs:
        for key in run.swept or []:
            if key.startswith("hydra"):
                continue
            name = normalise_key(key, run.settings)
            if name not in order:
                order.append(name)
    return order


def _varies_within(frame: pd.DataFrame, keys: list[str], column: str) -> bool:
    if not keys:
        return frame[column].nunique(dropna=False) > 1
    return bool((frame.groupby(keys, dropna=False, sort=False)[column].nunique(dropna=False) > 1).any())


def choose_keys(runs: list[Run], frame: pd.DataFrame) -> Grouping:
    varying = [c for c in frame.columns if frame[c].nunique(dropna=False) > 1]
    fixed = {c: frame[c].iloc[0] for c in frame.columns if c not in varying}
    candidates = _swept_order(runs) + list(frame.columns)
    keys: list[str] = []
    derived: list[str] = []
    for column in dict.fromkeys(candidates):  # unique, first occurrence wins
        if column in REPLICATES or column not in varying:
            continue
        if _varies_within(frame, keys, column):
            keys.append(column)
        else:
            derived.append(column)
    return Grouping(keys=keys, fixed=fixed, derived=derived)


def label(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "all runs"
