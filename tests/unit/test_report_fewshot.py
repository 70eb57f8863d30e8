"""The report over data splits and seeds: the split-vs-seed variance decomposition (report/
variance.py) on synthetic sweeps with known components, Dodge et al.'s expected max (report/
expected_max.py) against a hand example and their own code, and both through `build_report`."""

import numpy as np
import pandas as pd
import pytest

from bertlab.report import build_report, write_report
from bertlab.report.expected_max import expected_max
from bertlab.report.variance import METHOD, components, decomposition
from tests.helpers.report_fixtures import result, settings, write_sweep


def test_components_of_a_hand_grid():
    # rows: splits, columns: seeds; row means 1.5, 3.5 (SS 4), column means 2, 3 (SS 1), no residual
    got = components(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert got["var_split"] == pytest.approx(2.0)  # MS_split 4 / 2 seeds
    assert got["var_seed"] == pytest.approx(0.5)  # MS_seed 1 / 2 splits
    assert got["var_residual"] == pytest.approx(0.0)
    assert got["share_split"] == pytest.approx(0.8) and got["share_seed"] == pytest.approx(0.2)


def test_additive_effects_without_noise_give_their_sample_variances():
    rng = np.random.default_rng(0)
    split, seed = rng.normal(0, 3, 5), rng.normal(0, 1, 3)
    got = components(split[:, None] + seed[None, :] + 0.7)
    assert got["var_split"] == pytest.approx(np.var(split, ddof=1))
    assert got["var_seed"] == pytest.approx(np.var(seed, ddof=1))
    assert got["var_residual"] == pytest.approx(0.0, abs=1e-12)


def test_a_large_synthetic_sweep_recovers_known_components():
    rng = np.random.default_rng(1)
    a, b = 300, 300
    sd_split, sd_seed, sd_res = 2.0, 1.0, 0.5
    grid = rng.normal(0, sd_split, (a, 1)) + rng.normal(0, sd_seed, (1, b)) + rng.normal(0, sd_res, (a, b))
    got = components(grid)
    assert got["var_split"] == pytest.approx(sd_split**2, rel=0.2)
    assert got["var_seed"] == pytest.approx(sd_seed**2, rel=0.2)
    assert got["var_residual"] == pytest.approx(sd_res**2, rel=0.05)
    total = sd_split**2 + sd_seed**2 + sd_res**2
    assert got["share_split"] == pytest.approx(sd_split**2 / total, abs=0.05)


def test_a_negative_estimate_is_zero():
    # the split means are closer than the noise allows: MS_split < MS_res
    got = components(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.5, 0.5, 0.5]]))
    assert got["var_split"] == 0.0 and got["var_residual"] > 0


def runs_frame(values: dict, setting: str = "adamw") -> pd.DataFrame:
    rows = [
        {"optimizer": setting, "data_seed": d, "training_seed": s, "status": "ok", "best": v}
        for (d, s), v in values.items()
    ]
    return pd.DataFrame(rows).astype({"data_seed": object, "training_seed": object})


def test_an_incomplete_grid_leaves_out_the_seed_that_misses_a_split():
    values = {(d, s): float(d + s) for d in (13, 21, 42) for s in (1, 2, 3)}
    frame = runs_frame(values)
    frame.loc[(frame["data_seed"] == 21) & (frame["training_seed"] == 3), "status"] = "failed"
    table = decomposition(frame, ["optimizer"])
    assert table.loc["adamw", "splits"] == 3 and table.loc["adamw", "seeds"] == 2
    assert table.loc["adamw", "runs_used"] == 6


def test_one_split_only_is_not_decomposed():
    table = decomposition(runs_frame({(13, s): float(s) for s in (1, 2, 3)}), ["optimizer"])
    assert table.empty


def samplemax(validation_performance):
    """dodgejesse/show_your_work expected_max_performance.py, its loops as written."""
    validation_performance = sorted(validation_performance)
    N = len(validation_performance)
    pdfs = []
    for n in range(1, N + 1):
        F = [(i / N) ** n for i in range(1, N + 1)]
        f, cur = [], 0
        for value in F:
            f.append(value - cur)
            cur = value
        pdfs.append(f)
    means = [sum(validation_performance[i] * pdfs[n][i] for i in range(N)) for n in range(N)]
    var = [np.sqrt(sum((validation_performance[i] - means[n]) ** 2 * pdfs[n][i] for i in range(N))) for n in range(N)]
    return means, var


def test_expected_max_of_a_hand_example():
    means, stds = expected_max([0.9, 0.5, 0.7])
    # n=1: the mean; n=2: P(max=v_i) = 1/9, 3/9, 5/9; n=3: 1/27, 7/27, 19/27
    assert means == pytest.approx([0.7, (0.5 + 3 * 0.7 + 5 * 0.9) / 9, (0.5 + 7 * 0.7 + 19 * 0.9) / 27])
    assert stds[0] == pytest.approx(np.std([0.5, 0.7, 0.9]))  # n=1: the population std


def test_expected_max_matches_dodges_code_with_ties_and_nan_left_out():
    values = np.random.default_rng(3).uniform(0.4, 0.8, 15).round(2)  # rounding makes ties
    means, stds = expected_max(list(values) + [float("nan")])
    ref_means, ref_stds = samplemax(values)
    assert means == pytest.approx(ref_means) and stds == pytest.approx(ref_stds)
    assert np.all(np.diff(means) >= -1e-12) and means[-1] <= values.max()


def fewshot_sweep(tmp_path, effects):
    """2 settings x 5 LM-BFF splits x 3 seeds; test = val = base + split effect + seed effect."""
    records = []
    for optimizer, base in (("adamw", 0.6), ("bertadam", 0.55)):
        for i, data_seed in enumerate((13, 21, 42, 87, 100)):
            for seed in (1, 2, 3):
                value = base + effects["split"][i] + effects["seed"][seed - 1]
                s = settings(optimizer=optimizer, data_seed=data_seed, seed=seed, init_seed=seed, order_seed=seed)
                s["k_shot"] = 16
                records.append(
                    result(s, ["optimizer", "task.data_seed", "seed"], value, baseline=0.5)
                    | {"overrides": [f"optimizer={optimizer}", f"task.data_seed={data_seed}", f"seed={seed}"]}
                )
    return write_sweep(tmp_path / "sweep", records)


def test_the_report_decomposes_a_sweep_over_splits_and_seeds(tmp_path):
    effects = {"split": [0.0, 0.1, -0.1, 0.05, -0.05], "seed": [0.0, 0.01, -0.01]}
    sweep = fewshot_sweep(tmp_path, effects)
    report = build_report([sweep])
    task = report.tasks[0]
    assert task.keys == ["optimizer"]  # data_seed and the seeds are replicates, never row keys
    assert list(task.summary["seeds"]) == [15, 15]
    variance = task.variance
    assert list(variance.index) == ["adamw", "bertadam"]
    assert variance.loc["adamw", "var_split"] == pytest.approx(np.var(effects["split"], ddof=1))
    assert variance.loc["adamw", "var_seed"] == pytest.approx(np.var(effects["seed"], ddof=1))
    # pairs share a data split and a seed: 15 of them, every difference the base's
    pair = task.paired.iloc[0]
    assert pair["seeds"] == 15 and pair["mean_diff"] == pytest.approx(-0.05)
    assert "13/1" in pair["diffs"]
    expected = task.expected[task.expected["optimizer"] == "adamw"]
    assert list(expected["n"]) == list(range(1, 16)) and expected["expected_max"].iloc[0] == pytest.approx(0.6)

    path = write_report(report, tmp_path / "out")
    text = path.read_text()
    assert "### Where the spread comes from: data split vs training seed" in text and METHOD in text
    assert "### Expected best validation score of n runs" in text and "| n=1 | n=2 | n=3 | n=5 | n=10 | n=15 |" in text
    assert (tmp_path / "out" / "rte_expected_max.png").stat().st_size > 0


def test_a_report_without_data_splits_says_there_is_nothing_to_decompose(tmp_path):
    records = [result(settings(seed=s), ["seed"], 0.6 + s / 100) for s in range(3)]
    report = build_report([write_sweep(tmp_path / "sweep", records)])
    assert report.tasks[0].variance.empty
    text = write_report(report, tmp_path / "out").read_text()
    assert "nothing to decompose" in text
    assert "n=3" in text  # the expected max needs no splits
