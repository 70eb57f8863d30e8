"""From sweep folders to a `Report` (tables in memory), and from a `Report` to files on disk."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from bertlab.problems.metric_names import QUESTION_ANSWERING_METRICS, REGRESSION_METRICS, TOKEN_CLASSIFICATION_METRICS
from bertlab.report import expected_max, figures, variance
from bertlab.report.collect import Run, collect, read_curves
from bertlab.report.grouping import choose_keys, settings_frame
from bertlab.report.markdown import render_markdown
from bertlab.report.model import Report, TaskReport
from bertlab.report.tables import group_keys, paired_comparisons, run_frame, summary


class NoRunsError(Exception):
    """No run folder (with or without a result.json) under any of the given folders."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _threshold_note(task: str, metric: str, frame: pd.DataFrame, threshold: float | None) -> tuple[str, float | None]:
    rule = f"failed = status not ok, or test {metric} (best checkpoint) NaN or "
    if threshold is not None:  # strictly below, as the paper's rule (tables.failure_reason)
        return rule + f"below {threshold:g} (set with --threshold)", threshold
    predictor = (
        "constant"
        if metric in REGRESSION_METRICS
        else "majority-tag"  # every word tagged with the most common training tag (problems/token_classification/metrics.py)
        if metric in TOKEN_CLASSIFICATION_METRICS
        else "first-k-words"  # the context's first k words, k the median training answer (problems/question_answering/metrics.py)
        if metric in QUESTION_ANSWERING_METRICS
        else "majority-class"
    )
    known = frame["threshold"].dropna().round(4).unique()
    unknown = int(frame["threshold"].isna().sum())
    if len(known) == 0:
        return (
            f"failed = status not ok, or test {metric} NaN (no run recorded a baseline; "
            "set one with --threshold, e.g. 0.55 for RTE as in the paper)",
            None,
        )
    value = f"{known[0]:.4g}" if len(known) == 1 else f"{known.min():.4g}-{known.max():.4g}, per run"
    note = rule + f"at/below the {predictor} predictor's test {metric} ({value})"
    if task == "rte":
        note += "; the paper counts RTE runs below 0.55 accuracy: --threshold 0.55"
    if unknown:
        note += f"; {unknown} run(s) without a baseline are judged on status only"
    return note, (float(known[0]) if len(known) == 1 else None)


def build_report(dirs: list[Path], threshold: float | None = None) -> Report:
    """Read every run under `dirs` and compute the tables. Raises FileNotFoundError for a missing
    folder and NoRunsError when no run folder is found at all."""
    dirs = [Path(d) for d in dirs]
    collection = collect(dirs)
    if not collection.runs and not collection.bad:
        raise NoRunsError(f"no result.json (and no run folder) under {', '.join(map(str, dirs))}")
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in collection.runs:
        groups.setdefault((run.task, run.main_metric), []).append(run)
    tasks_with_metrics: dict[str, int] = {}
    for task, _ in groups:
        tasks_with_metrics[task] = tasks_with_metrics.get(task, 0) + 1
    tasks = []
    for (task, metric), runs in sorted(groups.items()):
        grouping = choose_keys(runs, settings_frame(runs))
        frame = run_frame(runs, grouping, threshold)
        keys = group_keys(grouping)
        note, line = _threshold_note(task, metric, frame, threshold)
        tasks.append(
            TaskReport(
                name=task if tasks_with_metrics[task] == 1 else f"{task}-{metric}",
                task=task,
                metric=metric,
                runs=runs,
                grouping=grouping,
                frame=frame,
                summary=summary(frame, keys),
                paired=paired_comparisons(frame, grouping.keys),
                threshold_note=note,
                threshold_line=line,
                variance=variance.decomposition(frame, keys),
                expected=expected_max.curves(frame, keys),
            )
        )
    return Report(dirs=dirs, threshold=threshold, tasks=tasks, bad=collection.bad)


def curve_frame(task: TaskReport, notes: list[str]) -> pd.DataFrame:
    """metrics.csv of every ok run of the task, long format with the row keys; problems go to notes."""
    parts = []
    for run, (_, row) in zip(task.runs, task.frame.iterrows()):
        if run.status != "ok":
            continue  # a crashed run's partial curve would bend the mean at early steps
        curves, problem = read_curves(run)
        if problem:
            notes.append(f"`{run.path}`: {problem}")
        if curves is None or curves.empty:
            continue
        parts.append(curves.assign(path=str(run.path), **{k: [row[k]] * len(curves) for k in task.keys}))
    if not parts:
        return pd.DataFrame(columns=["step", "val", "loss", "path", *task.keys])
    return pd.concat(parts, ignore_index=True)


def write_figures(report: Report, out: Path) -> None:
    for task in report.tasks:
        stem = _slug(task.name)
        title = f"{task.task}: test {task.metric} by setting ({len(task.runs)} runs)"
        line_label = "" if task.threshold_line is None else f"failure threshold {task.threshold_line:.4g}"
        if report.threshold is None:
            line_label += " (baseline predictor)"
        task.figures["boxplot"] = figures.boxplot(
            task.frame, task.keys, title, task.metric, task.threshold_line, line_label, out / f"{stem}_boxplot.png"
        )
        curves = curve_frame(task, report.notes)
        title = f"{task.task}: validation {task.metric} and training loss during training"
        path = figures.curves(curves, task.keys, title, task.metric, out / f"{stem}_curves.png")
        if path is None:
            report.notes.append(
                f"{task.name}: no run logged a metrics.csv with val/{task.metric} or train/loss "
                "(logger=none?), so no curves figure"
            )
        else:
            task.figures["curves"] = path
        title = f"{task.task}: expected best validation {task.metric} of n runs"
        path = figures.expected_max(task.expected, task.keys, title, task.metric, out / f"{stem}_expected_max.png")
        if path is not None:
            task.figures["expected_max"] = path
        step_keys = [k for k in task.keys if k.rsplit(".", 1)[-1] == "use_step"]
        if step_keys:  # a "when to stop" sweep (pretrain/snapshots.py): the metric against the steps
            title = f"{task.task}: test {task.metric} against the pre-training steps"
            path = figures.pretrain_steps(
                task.frame, step_keys[0], task.keys, task.metric, title, out / f"{stem}_pretrain_steps.png"
            )
            if path is not None:
                task.figures["pretrain_steps"] = path


def runs_table(report: Report) -> pd.DataFrame:
    """Every run of every task, one row each, for analyses the report does not make."""
    rows = []
    for task in report.tasks:
        for run, (_, row) in zip(task.runs, task.frame.iterrows()):
            rows.append(
                {
                    "task": task.task,
                    "main_metric": task.metric,
                    **run.settings,
                    "status": run.status,
                    "failed": row["failed"],
                    "failure_reason": row["reason"],
                    "threshold": row["threshold"],
                    **{k: v for k, v in run.metrics.items() if not math.isnan(v)},
                    "error": run.error,
                    "run_dir": str(run.path),
                }
            )
    return pd.DataFrame(rows)


def write_report(report: Report, out: Path, command: str | None = None) -> Path:
    """Figures, `runs.csv` and `report.md` into `out`; returns the report.md path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_figures(report, out)
    runs_table(report).to_csv(out / "runs.csv", index=False)
    path = out / "report.md"
    path.write_text(render_markdown(report, out, command))
    return path
