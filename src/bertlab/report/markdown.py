"""Text of the report: `report.md` and the table printed in the terminal.

Numbers are shown with 3 decimals (0.695 = 69.5%, the paper's precision); the exact values
are in the tables of `bertlab.report.model.Report` and in `runs.csv`.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from bertlab.report.grouping import label
from bertlab.report.model import Report, TaskReport
from bertlab.report.variance import METHOD


def _num(value: float, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def _mean_std(mean: float, std: float) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    return f"{mean:.3f} ± {_num(std)}"


def format_summary(task: TaskReport) -> pd.DataFrame:
    """The main table as strings: row keys, seeds, best and last statistics, failed."""
    table = task.summary
    index = table.index.to_frame(index=False)
    shown = pd.DataFrame({key: index[key].astype(str) for key in task.keys})
    shown["seeds"] = table["seeds"].to_numpy()
    for column, name in (("best", "best"), ("last", "last")):
        shown[f"{name} mean ± std"] = [_mean_std(m, s) for m, s in zip(table[f"{column}_mean"], table[f"{column}_std"])]
        for stat in ("median", "max", "min"):
            shown[f"{name} {stat}"] = [_num(v) for v in table[f"{column}_{stat}"]]
    shown["failed"] = [
        f"{f}/{r} ({rate:.0%})" for f, r, rate in zip(table["failed"], table["runs"], table["fail_rate"])
    ]
    return shown


def format_paired(task: TaskReport, with_diffs: bool = True) -> pd.DataFrame:
    rows = []
    for _, p in task.paired.iterrows():
        row = {
            "varied": p["key"],
            "with": label(list(p["context"]), tuple(p["context"].values())) if p["context"] else "-",
            "A": str(p["a"]),
            "B": str(p["b"]),
            "seeds": p["seeds"],
            "mean B−A": _num(p["mean_diff"], sign=True),
            "95% CI": f"[{_num(p['ci_low'], True)}, {_num(p['ci_high'], True)}]",
            "B wins": p["b_wins"],
            "A wins": p["a_wins"],
            "ties": p["ties"],
            "p (paired t)": "-" if math.isnan(p["p_value"]) else f"{p['p_value']:.3g}",
        }
        if with_diffs:
            row["per-seed B−A"] = ", ".join(f"{s}: {d:+.3f}" for s, d in p["diffs"].items())
        rows.append(row)
    return pd.DataFrame(rows)


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0%}"


def format_variance(task: TaskReport) -> pd.DataFrame:
    """Split vs training seed per setting (variance.py), as strings."""
    table = task.variance
    index = table.index.to_frame(index=False)
    shown = pd.DataFrame({key: index[key].astype(str) for key in task.keys})
    shown["splits x seeds"] = [f"{a} x {b}" for a, b in zip(table["splits"], table["seeds"])]
    shown["runs used"] = table["runs_used"].to_numpy()
    shown["data split"] = [_pct(v) for v in table["share_split"]]
    shown["training seed"] = [_pct(v) for v in table["share_seed"]]
    total = table["var_split"] + table["var_seed"] + table["var_residual"]
    shown["of which seed alone"] = [_pct(v / t) if t > 0 else "-" for v, t in zip(table["var_seed"], total)]
    shown["of which seed x split"] = [_pct(v / t) if t > 0 else "-" for v, t in zip(table["var_residual"], total)]
    shown["std split"] = [_num(math.sqrt(v)) for v in table["var_split"]]
    shown["std seed (split fixed)"] = [_num(math.sqrt(a + b)) for a, b in zip(table["var_seed"], table["var_residual"])]
    return shown


EXPECTED_N = (1, 2, 3, 5, 10, 20, 50, 100)


def format_expected(task: TaskReport) -> pd.DataFrame:
    """E[max of n] ± std per setting (rows) and n (columns: all n up to 10 runs, else EXPECTED_N and N)."""
    table = task.expected
    biggest = int(table["n"].max())
    shown_n = range(1, biggest + 1) if biggest <= 10 else sorted({*(n for n in EXPECTED_N if n < biggest), biggest})
    rows = []
    for setting, part in table.groupby(task.keys, sort=False, dropna=False):
        setting = setting if isinstance(setting, tuple) else (setting,)
        by_n = part.set_index("n")
        row = {key: str(value) for key, value in zip(task.keys, setting)}
        row["runs"] = int(part["runs"].iloc[0])
        for n in shown_n:
            row[f"n={n}"] = _mean_std(by_n.at[n, "expected_max"], by_n.at[n, "std"]) if n in by_n.index else "-"
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def fixed_line(task: TaskReport) -> str:
    fixed = {k: v for k, v in task.grouping.fixed.items() if k != "task"}
    text = "fixed: " + (", ".join(f"{k}={v}" for k, v in fixed.items()) or "-")
    if task.grouping.derived:
        text += f" (also varying with the settings: {', '.join(task.grouping.derived)})"
    return text


def _heading(task: TaskReport) -> str:
    return f"{task.name}: test {task.metric}, {len(task.runs)} runs"


def _rel(path: Path, out: Path) -> str:
    try:
        return os.path.relpath(path, out)
    except ValueError:  # another drive on Windows
        return str(path)


def render_terminal(report: Report) -> str:
    parts = []
    for task in report.tasks:
        parts += [
            f"== {_heading(task)} ==",
            fixed_line(task),
            task.threshold_note,
            format_summary(task).to_string(index=False),
            "",
        ]
        if not task.variance.empty:
            parts += [
                f"share of the variance of test {task.metric} ({METHOD}):",
                format_variance(task).to_string(index=False),
                "",
            ]
    if report.bad:
        parts.append(f"{len(report.bad)} run folder(s) without a usable result.json:")
        parts += [f"  {bad.path}: {bad.reason}" for bad in report.bad]
    return "\n".join(parts).rstrip() + "\n"


def render_markdown(report: Report, out: Path, command: str | None = None) -> str:
    n_runs = sum(len(t.runs) for t in report.tasks)
    lines = [
        "# Sweep report",
        "",
        f"Sweeps: {', '.join(f'`{d}`' for d in report.dirs)}. {n_runs} runs read, "
        f"{len(report.bad)} run folder(s) without a usable result.json. "
        f"Written {datetime.now():%Y-%m-%d %H:%M}" + (f" by `{command}`." if command else "."),
        "",
        "Statistics per setting are over its `ok` runs (one per seed and data split; failed-by-threshold runs "
        "included, as in the paper); std is the sample std (ddof=1); *best* is the test score of the "
        "weights with the best validation score, *last* of the final weights.",
    ]
    for task in report.tasks:
        lines += [
            "",
            f"## {_heading(task)}",
            "",
            fixed_line(task),
            "",
            task.threshold_note,
            "",
            markdown_table(format_summary(task)),
            "",
        ]
        if "boxplot" in task.figures:
            lines += [f"![{task.name} box plot]({_rel(task.figures['boxplot'], out)})", ""]
        if "curves" in task.figures:
            lines += [
                "### Validation and training-loss curves",
                "",
                f"![{task.name} curves]({_rel(task.figures['curves'], out)})",
                "",
            ]
        lines += ["### Where the spread comes from: data split vs training seed", ""]
        if task.variance.empty:
            lines.append(
                "No setting has a complete grid of at least 2 data splits (task.data_seed) x 2 training seeds "
                "of ok runs: nothing to decompose."
            )
        else:
            lines += [
                f"Share of the variance of test {task.metric} (best checkpoint) across a setting's runs. Method: "
                f"{METHOD}. *training seed* is everything a seed changes with the split held fixed: its "
                "own effect plus its interaction with the split (one run per cell cannot tell these from noise).",
                "",
                markdown_table(format_variance(task)),
            ]
        lines += ["", "### Expected best validation score of n runs", ""]
        if task.expected.empty:
            lines.append(f"No ok run recorded a validation {task.metric}.")
        else:
            lines += [
                f"E[max of n] of validation {task.metric} (the best validation of each run) ± its std, from the "
                "empirical CDF of the setting's runs, n up to their number (Dodge et al. 2019, *Show Your Work*; "
                "the runs are its i.i.d. draws: training seeds x data splits).",
                "",
                markdown_table(format_expected(task)),
                "",
            ]
            if "expected_max" in task.figures:
                lines += [f"![{task.name} expected max]({_rel(task.figures['expected_max'], out)})", ""]
        if "pretrain_steps" in task.figures:
            lines += [
                "### Test metric against the pre-training steps",
                "",
                f"![{task.name} against pre-training steps]({_rel(task.figures['pretrain_steps'], out)})",
                "",
            ]
        lines += ["### Paired comparisons (same seeds)", ""]
        if task.paired.empty:
            lines.append("No pair of settings that differ in one key shares at least 2 seeds.")
        else:
            lines += [
                f"B − A of test {task.metric} (best checkpoint) per seed both sides ran; "
                "95% CI: Student t interval of the mean difference; p: paired t-test.",
                "",
                markdown_table(format_paired(task)),
            ]
        failed = task.frame[task.frame["failed"]]
        if len(failed):
            lines += ["", f"<details><summary>{len(failed)} failed run(s)</summary>", ""]
            lines += [f"- `{_rel(Path(p), out)}`: {r}" for p, r in zip(failed["path"], failed["reason"])]
            lines += ["", "</details>"]
    lines += ["", "## Runs without a usable result.json", ""]
    if report.bad:
        lines += [
            markdown_table(
                pd.DataFrame(
                    {
                        "run folder": [f"`{_rel(b.path, out)}`" for b in report.bad],
                        "reason": [b.reason for b in report.bad],
                    }
                )
            )
        ]
    else:
        lines.append("None.")
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    lines += ["", "Every run, with all settings and metrics: [runs.csv](runs.csv).", ""]
    return "\n".join(lines)
