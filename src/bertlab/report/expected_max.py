"""Expected best validation score as a function of the number of runs n (Dodge et al. 2019,
"Show Your Work"; dodgejesse/show_your_work `expected_max_performance.py`, `samplemax`).

"If I train n models of this setting and keep the best on validation, what validation score do I
expect?" From the N runs' validation scores v_(1) <= ... <= v_(N), drawn with replacement from
their empirical CDF: the max of n draws is v_(i) with probability (i/N)^n - ((i-1)/N)^n, so

    E[max_n] = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n),      n = 1 .. N

(n = 1 is the mean), and its spread, which their code names `var` and computes as the square root
sqrt(sum_i p_i (v_(i) - E[max_n])^2), here `std`. As there, only n <= N is reported: beyond N the
empirical CDF says nothing new. The runs of a setting here differ in their training seed and data
split rather than in hyperparameters; the formula assumes i.i.d. runs, which random seeds are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bertlab.report.grouping import sort_key


def expected_max(values) -> tuple[np.ndarray, np.ndarray]:
    """(E[max of n], its std) for n = 1..N, from N scores (NaN left out)."""
    v = np.sort(np.asarray([x for x in values if not np.isnan(x)], dtype=float))
    big_n = len(v)
    if big_n == 0:
        return np.array([]), np.array([])
    i = np.arange(1, big_n + 1)
    n = np.arange(1, big_n + 1)[:, None]
    p = (i / big_n) ** n - ((i - 1) / big_n) ** n  # row n-1: P(max of n draws = v_(i))
    means = p @ v
    stds = np.sqrt((p * (v[None, :] - means[:, None]) ** 2).sum(axis=1))
    return means, stds


def curves(frame: pd.DataFrame, keys: list[str], column: str = "val") -> pd.DataFrame:
    """Long table: the row keys, n, expected_max, std, runs (N), min and max of the N scores, one
    row per setting and n, from the `ok` runs' best-validation scores."""
    rows = []
    usable = frame[frame["status"].eq("ok") & frame[column].notna()]
    for setting, runs in usable.groupby(keys, dropna=False, sort=False):
        setting = setting if isinstance(setting, tuple) else (setting,)
        values = runs[column].to_numpy(dtype=float)
        means, stds = expected_max(values)
        for n, (mean, std) in enumerate(zip(means, stds), 1):
            rows.append(
                {**dict(zip(keys, setting)), "n": n, "expected_max": mean, "std": std, "runs": len(means)}
                | {"min": values.min(), "max": values.max()}
            )
    table = pd.DataFrame(rows, columns=[*keys, "n", "expected_max", "std", "runs", "min", "max"])
    order = sorted(range(len(table)), key=lambda r: (*(sort_key(table.iloc[r][k]) for k in keys), table.iloc[r]["n"]))
    return table.iloc[order].reset_index(drop=True)
