"""The report's figures, drawn with matplotlib's object API (no pyplot, no global backend).

- `<task>_boxplot.png`: the main test metric by setting, best and last checkpoint side by side;
  the first row key on the x axis, one box colour per value of the other keys (the paper's
  Figures 4 and 6), every seed as a dot, failed runs as red crosses, the failure threshold dashed.
- `<task>_curves.png`: validation main metric and training loss against the training step,
  mean across seeds per setting with a +-1 std band (the paper's Figure 3).
- `<task>_expected_max.png`: the expected best validation score of n runs against n, per
  setting (Dodge et al. 2019's expected-max curve; report/expected_max.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bertlab.problems.metric_names import REGRESSION_METRICS
from bertlab.report.grouping import label, sort_key
from bertlab.report.tables import curve_summary

METRIC_LABELS = {
    "accuracy": "accuracy (fraction correct, 0-1)",
    "f1": "F1 of the positive class (0-1)",
    "mcc": "Matthews correlation, MCC (-1 to 1)",
    "spearman": "Spearman correlation (-1 to 1)",
    "pearson": "Pearson correlation (-1 to 1)",
    "entity_f1": "entity-level F1, seqeval (0-1)",
    "exact_match": "exact match of the answer, SQuAD (0-1)",
    "answer_f1": "F1 of the answer's words, SQuAD (0-1)",
}
STEP_LABEL = "training step (optimizer updates)"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def loss_label(metric: str) -> str:
    return "training loss (mean squared error)" if metric in REGRESSION_METRICS else "training loss (cross-entropy)"


def _colours(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _values(frame: pd.DataFrame, keys: list[str]) -> list[tuple]:
    combos = {tuple(row) for row in frame[keys].itertuples(index=False, name=None)} if keys else {()}
    return sorted(combos, key=lambda combo: tuple(sort_key(v) for v in combo))


def boxplot(
    frame: pd.DataFrame,
    keys: list[str],
    title: str,
    metric: str,
    threshold: float | None,
    threshold_label: str,
    path: Path,
) -> Path:
    """Box plot of `best` and `last` by setting; `keys` non-empty (use a constant column)."""
    x_key, hue_keys = keys[0], keys[1:]
    xs = _values(frame, [x_key])
    hues = _values(frame, hue_keys)
    colours = _colours(len(hues))
    width = 0.8 / len(hues)
    panel_width = min(14.0, max(4.5, 0.55 * len(xs) * len(hues) + 1.5))
    fig = Figure(figsize=(2 * panel_width + 2.5, 5.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    rng = np.random.default_rng(0)  # fixed jitter: the same report twice gives the same figure
    for ax, column, name in zip(axes, ("best", "last"), ("best checkpoint (chosen on validation)", "last checkpoint")):
        for i, (x,) in enumerate(xs):
            for j, hue in enumerate(hues):
                mask = frame[x_key].map(lambda v, x=x: v == x)
                for key, value in zip(hue_keys, hue):
                    mask &= frame[key].map(lambda v, value=value: v == value)
                runs = frame[mask & frame[column].notna()]
                if runs.empty:
                    continue
                pos = i + (j - (len(hues) - 1) / 2) * width
                box = ax.boxplot(
                    runs[column].to_numpy(),
                    positions=[pos],
                    widths=width * 0.85,
                    patch_artist=True,
                    showfliers=False,
                    manage_ticks=False,
                )
                for patch in box["boxes"]:
                    patch.set(facecolor=colours[j], alpha=0.55, edgecolor="black")
                for median in box["medians"]:
                    median.set(color="black", linewidth=1.5)
                jitter = rng.uniform(-width / 5, width / 5, size=len(runs))
                ok = ~runs["failed"].to_numpy(dtype=bool)
                ax.scatter(pos + jitter[ok], runs[column].to_numpy()[ok], s=12, color="black", zorder=3)
                ax.scatter(pos + jitter[~ok], runs[column].to_numpy()[~ok], s=28, color="red", marker="x", zorder=3)
        if threshold is not None and not math.isnan(threshold):
            ax.axhline(threshold, color="red", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(xs)), [str(x) for (x,) in xs])
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.set_xlabel(x_key)
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"test {metric_label(metric)}")
    handles = (
        [Patch(facecolor=c, alpha=0.55, edgecolor="black", label=label(hue_keys, h)) for c, h in zip(colours, hues)]
        if hue_keys
        else []
    )
    handles += [
        Line2D([], [], marker="o", color="black", linestyle="", markersize=4, label="one seed"),
        Line2D([], [], marker="x", color="red", linestyle="", markersize=6, label="failed run"),
    ]
    if threshold is not None and not math.isnan(threshold):
        handles.append(Line2D([], [], color="red", linestyle="--", label=threshold_label))
    fig.legend(handles=handles, loc="outside right upper", title=", ".join(hue_keys) or None, fontsize="small")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def curves(curve_frame: pd.DataFrame, keys: list[str], title: str, metric: str, path: Path) -> Path | None:
    """Validation metric and training loss against step per setting; None when nothing was logged."""
    if curve_frame.empty or (curve_frame["val"].isna().all() and curve_frame["loss"].isna().all()):
        return None
    settings = _values(curve_frame, keys)
    colours = _colours(len(settings))
    fig = Figure(figsize=(13, 5), layout="constrained")
    axes = fig.subplots(1, 2)
    panels = (
        ("val", f"validation {metric_label(metric)}", "validation " + metric),
        ("loss", loss_label(metric), "training loss"),
    )
    runs_per_setting = curve_frame.groupby(keys, sort=False)["path"].nunique()
    for ax, (column, ylabel, name) in zip(axes, panels):
        table = curve_summary(curve_frame, keys, column)
        for colour, setting in zip(colours, settings):
            mask = np.ones(len(table), dtype=bool)
            for key, value in zip(keys, setting):
                mask &= table[key].map(lambda v, value=value: v == value).to_numpy(dtype=bool)
            rows = table[mask]
            if rows.empty:
                continue
            n = runs_per_setting.loc[setting if len(setting) > 1 else setting[0]]
            ax.plot(
                rows["step"],
                rows["mean"],
                color=colour,
                marker="o" if column == "val" else None,
                markersize=3,
                label=f"{label(keys, setting)} ({n} runs)",
            )
            spread = rows["std"].fillna(0)
            ax.fill_between(rows["step"], rows["mean"] - spread, rows["mean"] + spread, color=colour, alpha=0.2)
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{name} (mean, band: +-1 std across seeds)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", title="setting")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def expected_max(table: pd.DataFrame, keys: list[str], title: str, metric: str, path: Path) -> Path | None:
    """Expected best validation score against the number of runs n (report/expected_max.py), one
    line per setting with a +-1 std band kept inside the runs' min and max, as Dodge et al.'s
    plot.py shades it; None when no setting has a validation score."""
    if table.empty:
        return None
    settings = _values(table, keys)
    colours = _colours(len(settings))
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    for colour, setting in zip(colours, settings):
        mask = np.ones(len(table), dtype=bool)
        for key, value in zip(keys, setting):
            mask &= table[key].map(lambda v, value=value: v == value).to_numpy(dtype=bool)
        rows = table[mask]
        if rows.empty:
            continue
        low, high = rows["min"].iloc[0], rows["max"].iloc[0]
        ax.plot(
            rows["n"],
            rows["expected_max"],
            color=colour,
            marker="o",
            markersize=3,
            label=f"{label(keys, setting)} ({int(rows['runs'].iloc[0])} runs)",
        )
        ax.fill_between(
            rows["n"],
            np.clip(rows["expected_max"] - rows["std"], low, high),
            np.clip(rows["expected_max"] + rows["std"], low, high),
            color=colour,
            alpha=0.2,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # n counts runs
    ax.set_xlabel("number of runs n (training seeds x data splits)")
    ax.set_ylabel(f"expected best validation {metric_label(metric)}")
    ax.set_title("E[max of n runs] from the runs' empirical CDF (band: +-1 std)")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize="small", title="setting")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def pretrain_steps(frame: pd.DataFrame, step_key: str, keys: list[str], metric: str, title: str, path: Path):
    """`<task>_pretrain_steps.png`: the test metric (best weights) against the pre-training step
    fine-tuning started from (`pretrain.use_step`, pretrain/snapshots.py): "when to stop pre-training",
    mean +-1 std across seeds per value of the other keys, every run a dot. None when no run has a step."""
    ok = frame[frame["status"] == "ok"].copy()
    ok["_step"] = pd.to_numeric(ok[step_key], errors="coerce")
    ok = ok.dropna(subset=["_step", "best"])
    if ok.empty:
        return None
    others = [k for k in keys if k != step_key]
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    settings = _values(ok, others)
    for colour, values in zip(_colours(len(settings)), settings):
        part = ok
        for key, value in zip(others, values):
            part = part[part[key] == value]
        stats = part.groupby("_step")["best"].agg(["mean", "std", "count"]).sort_index()
        name = label(others, values) if others else "mean over seeds"
        ax.plot(stats.index, stats["mean"], marker="o", color=colour, label=name)
        ax.fill_between(
            stats.index,
            stats["mean"] - stats["std"].fillna(0),
            stats["mean"] + stats["std"].fillna(0),
            color=colour,
            alpha=0.15,
        )
        ax.scatter(part["_step"], part["best"], color=colour, s=12, alpha=0.6)
    ax.set_xlabel("pre-training step fine-tuning started from (pretrain.use_step)")
    ax.set_ylabel(f"test {metric_label(metric)}, best weights")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
