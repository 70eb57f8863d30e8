"""`make bench` (`python -m scripts.bench`) end to end on the tiny model: every section runs and
writes its figures.

Speed goals are not asserted (timings on a shared machine are no test); this keeps the benchmark
itself from rotting: the three equal-settings loops see the same batches (bench.py checks the
batch widths), whole runs of both kinds finish with a test score, and the JSON holds every figure.
"""

import json
import subprocess
import sys

import pytest

from tests.helpers.e2e import REPO
from tests.helpers.installed import needs

# several minutes on 2 CPU cores: the benchmark trains with Lightning, transformers.Trainer and a
# bare loop (pytest -m "not slow", `make test-fast`, leaves it out)
pytestmark = [
    pytest.mark.slow,
    needs("accelerate", reason="transformers.Trainer needs accelerate (pip install -e .[bench])"),
]


@pytest.mark.long
def test_bench_runs_every_section_on_the_tiny_model(tmp_path):
    """Every section but start-up, which the test below runs alone (its repeats of fresh processes
    are the slowest part of the quick bench)."""
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--quick", "--model", "tiny", "--json", str(out), "--skip", "startup"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    eq = res["equal_settings"]
    assert set(eq["median_samples_per_s"]) == {"lightning (this project)", "transformers.Trainer", "bare PyTorch loop"}
    assert all(v > 0 for v in eq["median_samples_per_s"].values()) and eq["ratio_vs_trainer"] > 0
    for task in ("mrpc", "cola_like"):
        w = res["whole_runs"][task]
        ours, theirs = w["runs"]["ours"][0], w["runs"]["run_glue"][0]
        assert ours["padding_efficiency"] > theirs["padding_efficiency"]  # dynamic vs padded to 128
        assert ours["test"]["best"] is not None and theirs["test"]["last"] is not None
        assert 0 < ours["startup_s"] < ours["wall_s"] and w["speedup_wall"] > 0
    for p in res["padding"].values():
        assert p["pad_to_128"] < p["dynamic"] <= p["dynamic_grouped"]
    assert res["optimizer"]["ratio"] > 0
    assert "speed-up, whole run" in proc.stdout and "bertadam / AdamW foreach" in proc.stdout


def test_bench_heads_times_every_head_against_pooler_on_the_tiny_model(tmp_path):
    out = tmp_path / "heads.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.bench_heads", "--model", "tiny", "--steps", "3", "--warmup", "1"]
        + ["--repeats", "1", "--heads", "pooler,mean,layers_cnn,scalar_mix", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["ratio_vs_pooler"]) == {"pooler", "mean", "layers_cnn", "scalar_mix"}
    assert res["ratio_vs_pooler"]["pooler"] == 1.0 and all(v > 0 for v in res["median_samples_per_s"].values())


def test_bench_problems_times_every_problem_at_equal_tokens_on_the_tiny_model(tmp_path):
    out = tmp_path / "problems.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.bench_problems", "--model", "tiny", "--steps", "3", "--warmup", "1"]
        + ["--repeats", "1", "--length", "32", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res["median_examples_per_s"]) == {
        "classification",
        "token_classification",
        "multiple_choice",
        "question_answering",
    }
    assert res["tokens_per_batch"] == 16 * 32 and all(v > 0 for v in res["median_examples_per_s"].values())
    assert "vs classification" in proc.stdout


@pytest.mark.long
def test_bench_startup_section_prints_start_up_beside_the_floor(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "scripts.bench", "--model", "tiny", "--json", str(out), "--startup-repeats", "1"]
    proc = subprocess.run(
        cmd + ["--skip", "equal", "whole", "padding", "optimizer"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    st = json.loads(out.read_text())["startup"]
    assert set(st["median_s"]) == {"floor", "floor + model code", "floor, collector paused", "train.py debug=fast"}
    assert all(v > 0 for v in st["median_s"].values()) and st["ratio_to_floor"] > 0
    assert (
        st["over_floor_collector_paused_s"]
        == st["median_s"]["train.py debug=fast"] - st["median_s"]["floor, collector paused"]
    )
    assert "this project - floor" in proc.stdout and "this project - (floor, collector paused)" in proc.stdout
