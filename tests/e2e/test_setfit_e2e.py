"""approach=setfit end to end through `python train.py`: one run on a pair task of files of our own
(JSONL, three string labels), then `bertlab predict` and `bertlab evaluate` on its saved model, and
`bertlab report` on its folder; a bad setting stops with one message before anything loads."""

import csv
import json
import subprocess

import pytest

from tests.helpers.e2e import TINY, python, run_train
from tests.helpers.installed import needs

pytestmark = needs("setfit")

LABELS = ["contradiction", "entailment", "neutral"]


def bertlab(*args: str) -> subprocess.CompletedProcess:
    return python("-m", "bertlab.cli", *args)


def write_pairs(path, n: int, offset: int = 0) -> None:
    words = ["cats", "rain", "music", "trains", "bread", "rivers"]
    with open(path, "w") as f:
        for i in range(offset, offset + n):
            row = {"premise": f"the {words[i % 6]} story number {i}", "hypothesis": f"about {words[(i * 5) % 6]}"}
            f.write(json.dumps({**row, "gold": LABELS[i % 3]}) + "\n")


@pytest.mark.slow
def test_a_setfit_run_on_a_pair_task_of_ones_own_files_predicts_and_evaluates(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_pairs(data / "train.jsonl", 60)
    write_pairs(data / "dev.jsonl", 30, offset=100)
    run_dir = tmp_path / "run"
    task = [
        "task=csv",
        f"task.data_dir={data}",
        "task.train_file=train.jsonl",
        "task.dev_file=dev.jsonl",
        "task.text_fields=[premise,hypothesis]",
        "task.label_field=gold",
        "task.metrics=[accuracy,mcc]",
        "task.n_train=12",
        "task.n_val=6",
        "task.n_test=null",
    ]
    proc = run_train(*TINY, "approach=setfit", *task, "save_weights=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "setfit stage 1: 64 pairs, 4 steps of 16" in proc.stdout  # debug=fast: 4 steps, 4 * 16 pairs at most
    assert "Traceback" not in proc.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["settings"]["approach"] == "setfit"
    metrics = result["metrics"]
    assert set(metrics) == {f"{p}/{m}" for p in ("val", "test_last", "test_best") for m in ("accuracy", "mcc")}
    assert metrics["test_best/accuracy"] == metrics["test_last/accuracy"]  # one model: the last is the selected one
    assert result["split_sizes"] == {"train": 12, "val": 6, "test": 30}
    assert result["setfit"]["loss"] == "CosineSimilarityLoss" and result["global_steps"] == 4
    # 12 examples, 3 classes: 3 * (4 * 5 / 2) = 30 positive and 12 * 13 / 2 - 30 = 48 negative pairs (each
    # text is paired with itself too, as setfit does); debug=fast's 4 steps * 16 draw at most 32 of each
    # kind: 30 positive, 32 negative, the positives oversampled to 32
    assert result["setfit"]["pairs"] == 64

    # bertlab evaluate: the saved model on the same test split, the same score
    proc = bertlab("evaluate", str(run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{metrics['test_best/accuracy']:.4f}" in proc.stdout.split("test/accuracy")[1].split("\n")[0]

    # bertlab predict: the dev pairs as a CSV of new texts; its predictions score the run's test accuracy
    rows = [json.loads(line) for line in (data / "dev.jsonl").read_text().splitlines()]
    new = tmp_path / "new.csv"
    with open(new, "w", newline="") as f:
        writer = csv.DictWriter(f, ["premise", "hypothesis", "gold"])
        writer.writeheader()
        writer.writerows(rows)
    proc = bertlab("predict", str(run_dir), "--input", str(new))
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted = list(csv.DictReader(open(tmp_path / "new.predictions.csv", newline="")))
    assert all(sum(float(p[f"prob_{label}"]) for label in LABELS) == pytest.approx(1) for p in predicted)
    accuracy = sum(p["prediction"] == p["gold"] for p in predicted) / len(predicted)
    assert accuracy == pytest.approx(metrics["test_best/accuracy"])

    # bertlab report: the run's folder as a sweep of one
    proc = bertlab("report", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_a_setfit_run_of_a_regression_task_stops_with_one_message():
    proc = run_train(*TINY, "approach=setfit", "task=stsb")
    assert proc.returncode != 0
    assert "approach=setfit does not do regression (task=stsb is task.problem=regression)" in proc.stderr
    assert "Traceback" not in proc.stderr
