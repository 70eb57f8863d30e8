"""The sweep report on synthetic result.json sets whose statistics are known by construction."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bertlab.cli import main
from bertlab.report import build_report, render_terminal, write_report
from bertlab.report.build import curve_frame
from bertlab.report.tables import curve_summary
from tests.helpers.report_fixtures import REPO_ROOT, result, settings, write_run, write_sweep

SWEPT = ["optimizer", "reinit", "seed"]
# (optimizer, reinit) -> test_best accuracy for seeds 0, 1, 2; test_last = best - 0.01
BEST = {
    ("adamw", 0): [0.60, 0.65, 0.70],
    ("adamw", 3): [0.70, 0.72, 0.74],
    ("bertadam", 0): [0.50, 0.60, 0.70],
    ("bertadam", 3): [0.66, 0.70, 0.71],
}


def grid_records(task="rte", metric="accuracy"):
    records = []
    for (optimizer, reinit), values in BEST.items():
        for seed, value in enumerate(values):
            s = settings(task=task, optimizer=optimizer, reinit=reinit, seed=seed)
            records.append(result(s, SWEPT, value, value - 0.01, main_metric=metric))
    # a crashed run: counts in the failure rate, not in the statistics
    records.append(
        result(
            settings(task=task, optimizer="bertadam", reinit=0, seed=3),
            SWEPT,
            None,
            status="failed",
            main_metric=metric,
        )
    )
    return records


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("sweep") / "multirun" / "10-00-00", grid_records())


@pytest.fixture(scope="module")
def report(sweep):
    return build_report([sweep])


def test_grouping_rows_are_swept_keys_without_seed(report):
    (task,) = report.tasks
    assert task.grouping.keys == ["optimizer", "reinit"]
    assert task.grouping.derived == ["bias_correction"]  # follows optimizer: no extra row key
    assert task.grouping.fixed["model"] == "minilm" and task.grouping.fixed["lr"] == 2e-05
    assert "seed" not in task.grouping.fixed and "optimizer" not in task.grouping.fixed
    assert list(task.summary.index) == [("adamw", 0), ("adamw", 3), ("bertadam", 0), ("bertadam", 3)]


def test_table_statistics_match_known_values(report):
    table = report.tasks[0].summary
    row = table.loc[("bertadam", 0)]
    assert row["seeds"] == 3 and row["runs"] == 4
    assert row["best_mean"] == pytest.approx(0.6)
    assert row["best_std"] == pytest.approx(0.1)  # sample std, ddof=1
    assert row["best_median"] == pytest.approx(0.6)
    assert row["best_max"] == pytest.approx(0.7) and row["best_min"] == pytest.approx(0.5)
    assert row["last_mean"] == pytest.approx(0.59) and row["last_std"] == pytest.approx(0.1)
    # failed: the crashed run, and 0.50 <= the 0.55 baseline
    assert row["failed"] == 2 and row["fail_rate"] == pytest.approx(0.5)
    for (optimizer, reinit), values in BEST.items():
        r = table.loc[(optimizer, reinit)]
        assert r["best_mean"] == pytest.approx(np.mean(values))
        assert r["best_std"] == pytest.approx(np.std(values, ddof=1))
        assert r["best_median"] == pytest.approx(np.median(values))
    assert table.loc[("adamw", 3), "failed"] == 0


def test_threshold_option_overrides_baseline(sweep):
    table = build_report([sweep], threshold=0.65).tasks[0].summary
    # below 0.65 (the paper's rule: "below 55%"), so 0.65 itself passes: adamw/0 {0.60};
    # bertadam/0 {0.50, 0.60} + crashed; bertadam/3 none (0.66)
    assert table["failed"].tolist() == [1, 0, 3, 0]
    assert "below 0.65 (set with --threshold)" in build_report([sweep], threshold=0.65).tasks[0].threshold_note


def test_paired_comparison_matches_scipy(report):
    paired = report.tasks[0].paired
    assert len(paired) == 4  # optimizer at reinit 0 and 3, reinit at adamw and bertadam
    row = paired[(paired["key"] == "optimizer") & (paired["context"] == {"reinit": 0})].iloc[0]
    assert (row["a"], row["b"], row["seeds"]) == ("adamw", "bertadam", 3)  # seed 3 has no adamw partner
    diffs = np.array(BEST[("bertadam", 0)]) - np.array(BEST[("adamw", 0)])
    assert list(row["diffs"].values()) == pytest.approx(diffs.tolist())
    assert row["mean_diff"] == pytest.approx(diffs.mean())
    low, high = stats.t.interval(0.95, df=2, loc=diffs.mean(), scale=stats.sem(diffs))
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["p_value"] == pytest.approx(stats.ttest_rel(BEST[("bertadam", 0)], BEST[("adamw", 0)]).pvalue)
    assert (row["b_wins"], row["a_wins"], row["ties"]) == (0, 2, 1)
    reinit = paired[(paired["key"] == "reinit") & (paired["context"] == {"optimizer": "adamw"})].iloc[0]
    assert (reinit["a"], reinit["b"]) == (0, 3)
    assert reinit["mean_diff"] == pytest.approx(0.07) and reinit["b_wins"] == 3


def test_curves_average_seeds_per_step(report):
    task = report.tasks[0]
    curves = curve_frame(task, [])
    assert curves["path"].nunique() == 12  # every ok run has a metrics.csv; the crashed one is skipped
    val = curve_summary(curves, task.keys, "val")
    last_step = val[(val["optimizer"] == "adamw") & (val["reinit"] == 3)].iloc[-1]
    assert last_step["step"] == 99 and last_step["count"] == 3
    assert last_step["mean"] == pytest.approx(np.mean(BEST[("adamw", 3)]))


def test_cli_writes_report_figures_and_prints_table(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(sweep), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rte: test accuracy, 13 runs" in printed
    assert "fixed: model=minilm" in printed and "0.600 ± 0.100" in printed and "2/4 (50%)" in printed
    for name in ("rte_boxplot.png", "rte_curves.png"):
        assert (out / name).stat().st_size > 20_000, name  # a real figure, not an empty canvas
    text = (out / "report.md").read_text()
    assert "![rte box plot](rte_boxplot.png)" in text and "![rte curves](rte_curves.png)" in text
    assert "| optimizer | reinit | seeds | best mean ± std |" in text
    assert "Paired comparisons" in text and "95% CI" in text
    assert "majority-class predictor's test accuracy (0.55)" in text and "--threshold 0.55" in text
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 13 and runs["failed"].sum() == 2


def test_default_output_is_the_sweep_folder(tmp_path):
    sweep = write_sweep(tmp_path / "s", grid_records()[:3], curves=False)
    assert main(["report", str(sweep)]) == 0
    assert (sweep / "report.md").exists() and (sweep / "rte_boxplot.png").exists()
    assert not (sweep / "rte_curves.png").exists()  # no metrics.csv: no curves, said in the notes
    assert "no curves figure" in (sweep / "report.md").read_text()


def test_bad_runs_are_listed_not_dropped(tmp_path):
    records = grid_records()[:3]
    sweep = write_sweep(tmp_path / "sweep", records + [None])  # job 3: .hydra but no result.json
    (sweep / "4").mkdir()  # a numbered job folder that never got further
    write_run(sweep / "5", None)
    (sweep / "5" / "result.json").write_text('{"status": "ok", "task": ')
    no_metric = result(settings(seed=9), SWEPT, 0.7)
    no_metric["metrics"] = {"val/accuracy": 0.7}
    write_run(sweep / "6", no_metric)
    nan_metric = result(settings(seed=7), SWEPT, 0.7)
    nan_metric["metrics"]["test_best/accuracy"] = None  # NaN, as result.json writes it: a failed run
    write_run(sweep / "7", nan_metric)
    (sweep / "8").mkdir()
    (sweep / "8" / "result.json").write_text("[1, 2]")

    report = build_report([sweep])
    reasons = {bad.path.name: bad.reason for bad in report.bad}
    assert set(reasons) == {"3", "4", "5", "6", "8"}
    assert "no result.json" in reasons["3"] and "no result.json" in reasons["4"]
    assert "not valid JSON" in reasons["5"]
    assert "no test_best/accuracy" in reasons["6"]
    assert "not an object" in reasons["8"]
    (task,) = report.tasks
    assert len(task.runs) == 4
    assert task.frame.set_index("seed").loc[7, "reason"] == "accuracy is NaN"

    out = tmp_path / "out"
    write_report(report, out)
    text = (out / "report.md").read_text()
    assert "## Runs without a usable result.json" in text
    assert "not valid JSON" in text and "sweep/5" in text
    assert "5 run folder(s) without a usable result.json" in render_terminal(report)


def test_mixed_tasks_get_one_table_and_figure_set_each(tmp_path, capsys):
    rte = write_sweep(tmp_path / "rte_sweep", grid_records(), curves=False)
    mrpc = write_sweep(tmp_path / "mrpc_sweep", grid_records(task="mrpc", metric="f1"), curves=False)
    out = tmp_path / "out"
    assert main(["report", str(rte), str(mrpc), "--out", str(out), "--threshold", "0.55"]) == 0
    printed = capsys.readouterr().out
    assert "== mrpc: test f1, 13 runs ==" in printed and "== rte: test accuracy, 13 runs ==" in printed
    text = (out / "report.md").read_text()
    assert text.count("| optimizer | reinit | seeds |") == 2
    assert (out / "mrpc_boxplot.png").exists() and (out / "rte_boxplot.png").exists()
    report = build_report([rte, mrpc])
    assert [t.name for t in report.tasks] == ["mrpc", "rte"]
    assert report.tasks[0].summary.loc[("bertadam", 0), "best_mean"] == pytest.approx(0.6)


def test_key_only_in_overrides_becomes_a_row_key(tmp_path):
    records = []
    for dropout in ("0.1", "0.2"):
        for seed in range(2):
            records.append(
                result(
                    settings(seed=seed),
                    ["model.dropout", "seed"],
                    0.6 + seed / 10,
                    overrides=[f"model.dropout={dropout}", f"seed={seed}"],
                )
            )
    task = build_report([write_sweep(tmp_path / "a", records, curves=False)]).tasks[0]
    assert task.grouping.keys == ["model.dropout"]
    assert list(task.summary.index) == ["0.1", "0.2"]
    assert task.summary["best_mean"].tolist() == pytest.approx([0.65, 0.65])


def test_unswept_difference_between_merged_sweeps_splits_rows(tmp_path):
    # two sweeps of the optimizer at different (fixed, unswept) learning rates must not share rows
    a = [
        result(settings(optimizer=o, seed=s), ["optimizer", "seed"], 0.6)
        for o in ("adamw", "bertadam")
        for s in range(2)
    ]
    b = [
        result(settings(optimizer=o, seed=s, lr=1e-05), ["optimizer", "seed"], 0.7)
        for o in ("adamw", "bertadam")
        for s in range(2)
    ]
    task = build_report(
        [write_sweep(tmp_path / "a", a, curves=False), write_sweep(tmp_path / "b", b, curves=False)]
    ).tasks[0]
    assert task.grouping.keys == ["optimizer", "lr"]
    assert list(task.summary.index) == [("adamw", 1e-05), ("adamw", 2e-05), ("bertadam", 1e-05), ("bertadam", 2e-05)]
    assert task.summary["best_mean"].tolist() == pytest.approx([0.7, 0.6, 0.7, 0.6])
    assert set(task.paired["key"]) == {"optimizer", "lr"} and len(task.paired) == 4


def test_no_swept_field_falls_back_to_varying_settings(tmp_path):
    records = [result(settings(optimizer=o, seed=s), SWEPT, 0.6) for o in ("adamw", "bertadam") for s in range(2)]
    for record in records:
        del record["swept"], record["overrides"]
    task = build_report([write_sweep(tmp_path / "s", records, curves=False)]).tasks[0]
    assert task.grouping.keys == ["optimizer"] and task.grouping.derived == ["bias_correction"]


def test_single_setting_sweep_has_one_row_and_no_pairs(tmp_path, capsys):
    records = [result(settings(seed=s), ["seed"], v) for s, v in enumerate([0.5, 0.6, 0.7])]
    out = tmp_path / "out"
    assert main(["report", str(write_sweep(tmp_path / "s", records)), "--out", str(out)]) == 0
    assert "all runs" in capsys.readouterr().out
    assert "No pair of settings" in (out / "report.md").read_text()
    assert (out / "rte_boxplot.png").stat().st_size > 10_000


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bertlab report: no result.json") and str(tmp_path) in err
    assert not (tmp_path / "report.md").exists()


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_only_broken_runs_is_an_error_that_lists_them(tmp_path, capsys):
    write_run(tmp_path / "0", None)
    (tmp_path / "0" / "result.json").write_text("{broken")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no readable result.json" in err and "not valid JSON" in err


def test_module_entry_point_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bertlab.cli", "report", str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert proc.returncode == 2
    assert "no result.json" in proc.stderr and proc.stdout == ""


def test_result_json_round_trip_from_the_writer(tmp_path):
    # the training side's atomic writer (NaN -> null) is what the report reads
    from bertlab.core.record import write_json_atomic

    record = result(settings(), SWEPT, float("nan"))
    write_json_atomic(tmp_path / "0" / "result.json", record)
    assert json.loads((tmp_path / "0" / "result.json").read_text())["metrics"]["test_best/accuracy"] is None
    (task,) = build_report([tmp_path]).tasks
    assert bool(task.frame["failed"].iloc[0])


def test_figures_are_titled_labelled_and_grouped_the_way_the_sweep_varied(sweep, tmp_path, monkeypatch):
    """What a reader sees: the first swept key on the x axis, one box colour per value of the next
    (legend titled by it), the metric named on the y axis, titles on every panel."""
    from matplotlib.figure import Figure

    saved = {}
    original = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda fig, path, **kw: (saved.__setitem__(path.name, fig), original(fig, path, **kw))
    )
    main(["report", str(sweep), "--out", str(tmp_path)])
    box, curves = saved["rte_boxplot.png"], saved["rte_curves.png"]

    assert "rte" in box.get_suptitle()
    best, last = box.axes
    assert [best.get_title(), last.get_title()] == ["best checkpoint (chosen on validation)", "last checkpoint"]
    assert best.get_xlabel() == "optimizer" and [t.get_text() for t in best.get_xticklabels()] == ["adamw", "bertadam"]
    assert "accuracy" in best.get_ylabel()
    (legend,) = box.legends
    assert legend.get_title().get_text() == "reinit"
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:2] == ["reinit=0", "reinit=3"] and "failed run" in labels
    assert any("threshold" in text or "baseline" in text for text in labels[2:])  # the failure line is named
    # 2 optimizers x 2 re-init depths, one box each, on each panel
    assert len(best.patches) == 4

    val, loss = curves.axes
    assert "accuracy" in val.get_ylabel() and "loss" in loss.get_ylabel()
    assert "step" in val.get_xlabel() and val.get_title() and loss.get_title()
    (legend,) = curves.legends
    assert sorted(t.get_text() for t in legend.get_texts()) == [
        "optimizer=adamw, reinit=0 (3 runs)",
        "optimizer=adamw, reinit=3 (3 runs)",
        "optimizer=bertadam, reinit=0 (3 runs)",
        "optimizer=bertadam, reinit=3 (3 runs)",
    ]
