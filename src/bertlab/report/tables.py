"""The numbers of the report: per-run failure, per-setting statistics, paired comparisons.

Statistics come from pandas (mean, sample std with ddof=1, median) and scipy (t interval,
paired t-test); nothing here re-derives a formula.

- A run is failed when its status is not `ok`, or when its main test metric (best checkpoint;
  the last one where the run has no best) is NaN, or at/below the majority-class (constant, for
  regression) predictor's score on the same test split, recorded per run in `baseline`; or, with
  `--threshold`, below that one value for every run (the paper: RTE runs below 0.55).
- Statistics use every `ok` run, failed-by-threshold ones included (as the paper's do): a
  degenerate run is a real outcome of the setting. Runs whose status is not `ok` have no
  trustworthy test metric and only count in the failure rate.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from bertlab.report.collect import Run
from bertlab.report.grouping import DATA_SEED, SEED, Grouping, setting_values, sort_key

ALL = "setting"  # the one row key when no setting varies
STATS = ("mean", "std", "median", "max", "min")


def group_keys(grouping: Grouping) -> list[str]:
    return grouping.keys or [ALL]


def judged_value(run: Run) -> float:
    """The value failure is judged on: the best checkpoint's, or the last one's without a best."""
    prefix = "test_best" if f"test_best/{run.main_metric}" in run.metrics else "test_last"
    return run.metric(prefix)


def run_threshold(run: Run, threshold: float | None) -> float:
    if threshold is not None:
        return threshold
    return run.baseline.get(f"test/{run.main_metric}", math.nan)


def failure_reason(run: Run, threshold: float | None) -> str | None:
    """Why the run counts as failed, or None. Without a known threshold only status/NaN fail."""
    if run.status != "ok":
        return f"status {run.status}" + (f": {run.error}" if run.error else "")
    value = judged_value(run)
    if math.isnan(value):
        return f"{run.main_metric} is NaN"
    # --threshold follows the paper ("runs below 55%"): strictly below fails. The baseline rule
    # is "no better than the majority-class (or constant) predictor": at or below fails.
    if threshold is not None:
        if value < threshold:
            return f"{run.main_metric} {value:.4f} < threshold {threshold:.4f}"
        return None
    limit = run_threshold(run, None)
    if not math.isnan(limit) and value <= limit:
        return f"{run.main_metric} {value:.4f} <= baseline {limit:.4f}"
    return None


def training_seed(values: dict):
    """The run's training seed: `seed`, or `init=I,order=O` where init_seed and order_seed were set
    apart (a record from before they existed has neither: seed was both)."""
    seed = values.get(SEED, "None")
    init, order = values.get("init_seed", seed), values.get("order_seed", seed)
    return init if init == order else f"init={init},order={order}"


def _replicates(frame: pd.DataFrame) -> list:
    """Which repetition each run is, the key runs are paired on: the training seed, or
    `data_seed/seed` when the task's runs span several data splits."""
    if frame[DATA_SEED].nunique(dropna=False) <= 1:
        return list(frame["training_seed"])
    return [f"{d}/{t}" for d, t in zip(frame[DATA_SEED], frame["training_seed"])]


def run_frame(runs: list[Run], grouping: Grouping, threshold: float | None) -> pd.DataFrame:
    """One row per run: row keys, seed, data_seed, training_seed, replicate, status, best/last main
    test metric, val (the best validation's main metric), threshold, failure."""
    rows = []
    for run in runs:
        values = setting_values(run)
        ok = run.status == "ok"
        reason = failure_reason(run, threshold)
        row = {key: values.get(key, "None") for key in grouping.keys}
        if not grouping.keys:
            row[ALL] = "all runs"
        row.update(
            seed=values.get(SEED, "None"),
            data_seed=values.get(DATA_SEED, "None"),
            training_seed=training_seed(values),
            status=run.status,
            best=run.metric("test_best") if ok else math.nan,
            last=run.metric("test_last") if ok else math.nan,
            val=run.metric("val") if ok else math.nan,
            threshold=run_threshold(run, threshold),
            failed=reason is not None,
            reason=reason,
            path=str(run.path),
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key in group_keys(grouping) + [SEED, DATA_SEED, "training_seed"]:
        frame[key] = frame[key].astype(object)  # keep 3 as 3, not 3.0
    frame["replicate"] = pd.Series(_replicates(frame), index=frame.index, dtype=object)
    return frame


def _sorted_index(index: pd.Index) -> list:
    def key(item):
        return tuple(sort_key(v) for v in (item if isinstance(item, tuple) else (item,)))

    return sorted(index, key=key)


def summary(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per setting: seeds (ok runs with a value), mean/std/median/max/min of best and last,
    runs, failed, fail_rate. Index: the setting keys, in sorted order."""
    has_value = frame["best"].notna() | frame["last"].notna()
    grouped = frame.assign(has_value=has_value).groupby(keys, dropna=False, sort=False)
    parts = {"seeds": grouped["has_value"].sum().astype(int)}
    for column in ("best", "last"):
        agg = grouped[column].agg(list(STATS))
        for stat in STATS:
            parts[f"{column}_{stat}"] = agg[stat]
    parts["runs"] = grouped.size()
    parts["failed"] = grouped["failed"].sum().astype(int)
    table = pd.DataFrame(parts)
    table["fail_rate"] = table["failed"] / table["runs"]
    return table.loc[_sorted_index(table.index)]


def _per_seed(frame: pd.DataFrame, column: str) -> pd.Series:
    usable = frame[frame["status"].eq("ok") & frame[column].notna()]
    # a seed (of a data split) run twice (two sweeps) counts once, at its mean
    return usable.groupby("replicate", sort=False)[column].mean()


def paired_comparisons(
    frame: pd.DataFrame, keys: list[str], column: str = "best", confidence: float = 0.95
) -> pd.DataFrame:
    """For every key, every pair of its values with all other keys equal: B - A per shared seed
    (per shared data split and seed, where the runs span several splits: `replicate`).

    Rows: key, context (the other keys' values), a, b, seeds, mean_diff, ci_low, ci_high
    (t interval of the mean difference), b_wins, a_wins, ties, p_value (paired t-test),
    diffs ({seed: B - A}). Only pairs with at least 2 shared seeds.
    """
    rows = []
    for key in keys:
        others = [k for k in keys if k != key]
        contexts = frame.groupby(others, dropna=False, sort=False) if others else [((), frame)]
        for context, sub in contexts:
            context = context if isinstance(context, tuple) else (context,)
            by_value = {value: _per_seed(part, column) for value, part in sub.groupby(key, sort=False)}
            values = sorted(by_value, key=sort_key)
            for a, b in itertools.combinations(values, 2):
                pair = pd.concat({"a": by_value[a], "b": by_value[b]}, axis=1, join="inner")
                if len(pair) < 2:
                    continue
                pair = pair.loc[sorted(pair.index, key=sort_key)]
                rows.append(_compare(key, dict(zip(others, context)), a, b, pair, confidence))
    columns = [
        "key",
        "context",
        "a",
        "b",
        "seeds",
        "mean_diff",
        "ci_low",
        "ci_high",
        "b_wins",
        "a_wins",
        "ties",
        "p_value",
        "diffs",
    ]
    return pd.DataFrame(rows, columns=columns)


def _compare(key, context, a, b, pair: pd.DataFrame, confidence: float) -> dict:
    diffs = pair["b"] - pair["a"]
    n = len(diffs)
    mean = float(diffs.mean())
    sem = float(stats.sem(diffs))
    if sem > 0:
        low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    else:  # every seed moved by the same amount: no spread to put an interval on
        low = high = mean
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        p_value = float(stats.ttest_rel(pair["b"], pair["a"]).pvalue)
    return {
        "key": key,
        "context": context,
        "a": a,
        "b": b,
        "seeds": n,
        "mean_diff": mean,
        "ci_low": float(low),
        "ci_high": float(high),
        "b_wins": int((diffs > 0).sum()),
        "a_wins": int((diffs < 0).sum()),
        "ties": int((diffs == 0).sum()),
        "p_value": p_value,
        "diffs": {seed: float(d) for seed, d in diffs.items()},
    }


def curve_summary(curves: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Mean, std and number of runs of `column` per setting and training step."""
    usable = curves.dropna(subset=[column])
    agg = usable.groupby(keys + ["step"], dropna=False, sort=False)[column].agg(["mean", "std", "count"])
    return agg.reset_index().sort_values("step", kind="stable")
