"""Where a setting's spread comes from: the data split or the training seed.

A sweep over data splits (task.data_seed, e.g. LM-BFF's five) and training seeds is a two-way
crossed design with one run per cell. Its decomposition here is the two-way random-effects
ANOVA without replication, by the method of moments on the expected mean squares (Montgomery,
*Design and Analysis of Experiments*, the two-factor random-effects model with n = 1): with `a`
splits and `b` seeds,

    SS_split = b * sum_i (mean_i. - mean..)^2       MS_split = SS_split / (a - 1)   E = s2_res + b * s2_split
    SS_seed  = a * sum_j (mean_.j - mean..)^2       MS_seed  = SS_seed / (b - 1)    E = s2_res + a * s2_seed
    SS_res   = SS_total - SS_split - SS_seed         MS_res   = SS_res / ((a-1)(b-1)) E = s2_res

    s2_split = (MS_split - MS_res) / b,   s2_seed = (MS_seed - MS_res) / a,   s2_res = MS_res

A negative estimate is set to 0 (the usual convention for this estimator). With one run per cell
the seed x split interaction and the run-to-run noise are one residual: what a seed does
depending on the split. So the share of the training seed, as the report states it, is
(s2_seed + s2_res) / total: the spread left when the split is held fixed; the split's is
s2_split / total. Seed 3 is taken as the same level on every split (the same init_seed and
order_seed: Dodge et al. 2020's crossed design); the residual holds whatever it does not share.

Only a complete grid is decomposed: the splits x seeds of the setting's `ok` runs, a seed run
twice on a split counted once at its mean; where cells are missing (a failed or absent run), the
seeds (or the splits, whichever keeps more runs) that lack one are left out, and the table says
how many runs it used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bertlab.report.grouping import DATA_SEED, sort_key

METHOD = (
    "two-way random-effects ANOVA without replication (sums of squares, method of moments on the "
    "expected mean squares; negative estimates set to 0)"
)
COLUMNS = ["splits", "seeds", "runs_used", "var_split", "var_seed", "var_residual", "share_split", "share_seed"]


def components(grid: np.ndarray) -> dict[str, float]:
    """Variance components of a complete splits x seeds grid (rows: splits, columns: seeds),
    at least 2 x 2: var_split, var_seed, var_residual, and the split's and seed's shares."""
    a, b = grid.shape
    grand = grid.mean()
    ss_split = b * ((grid.mean(axis=1) - grand) ** 2).sum()
    ss_seed = a * ((grid.mean(axis=0) - grand) ** 2).sum()
    ss_res = ((grid - grand) ** 2).sum() - ss_split - ss_seed
    ms_split, ms_seed = ss_split / (a - 1), ss_seed / (b - 1)
    ms_res = max(ss_res, 0.0) / ((a - 1) * (b - 1))  # max: rounding below 0 when the fit is exact
    var_split = max(0.0, (ms_split - ms_res) / b)
    var_seed = max(0.0, (ms_seed - ms_res) / a)
    total = var_split + var_seed + ms_res
    share = (lambda v: v / total) if total > 0 else (lambda v: float("nan"))
    return {
        "var_split": float(var_split),
        "var_seed": float(var_seed),
        "var_residual": float(ms_res),
        "share_split": float(share(var_split)),
        "share_seed": float(share(var_seed + ms_res)),  # the seed's main effect and its interaction with the split
    }


def complete_grid(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """splits x training seeds of `column` (ok runs), with incomplete seeds or splits left out."""
    usable = runs[runs["status"].eq("ok") & runs[column].notna()]
    grid = usable.pivot_table(index=DATA_SEED, columns="training_seed", values=column, aggfunc="mean")
    by_seeds = grid.dropna(axis=1)  # keep every split, drop seeds that miss one
    by_splits = grid.dropna(axis=0)  # keep every seed, drop splits that miss one
    grid = by_seeds if by_seeds.size >= by_splits.size else by_splits
    grid = grid.loc[sorted(grid.index, key=sort_key), sorted(grid.columns, key=sort_key)]
    return grid


def decomposition(frame: pd.DataFrame, keys: list[str], column: str = "best") -> pd.DataFrame:
    """Per setting (index: `keys`, as tables.summary's): splits, seeds, runs used and the
    components; settings whose complete grid is smaller than 2 splits x 2 seeds are left out."""
    rows = []
    for setting, runs in frame.groupby(keys, dropna=False, sort=False):
        setting = setting if isinstance(setting, tuple) else (setting,)
        grid = complete_grid(runs, column)
        if grid.shape[0] < 2 or grid.shape[1] < 2:
            continue
        sizes = {"splits": grid.shape[0], "seeds": grid.shape[1], "runs_used": grid.size}
        rows.append((setting, sizes | components(grid.to_numpy(dtype=float))))
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    rows.sort(key=lambda row: tuple(sort_key(v) for v in row[0]))
    settings = [setting for setting, _ in rows]
    index = (
        pd.MultiIndex.from_tuples(settings, names=keys)
        if len(keys) > 1
        else pd.Index([s[0] for s in settings], name=keys[0])
    )
    return pd.DataFrame([values for _, values in rows], index=index, columns=COLUMNS)
