"""Multiple choice through `python train.py` (tiny random BERT, the SWAG-format and JSONL fixtures):
result.json, the methods, bad input, kill and resume, evaluate and predict."""

from pathlib import Path

import pytest

from tests.helpers.e2e import TINY, results_under
from tests.helpers.inprocess import run_train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SWAG = [*TINY, "task=swag", f"task.data_dir={FIXTURES / 'swag'}", "data.token_cache=null"]
CHOICES = [
    *TINY,
    "task=choices",
    f"task.data_dir={FIXTURES / 'choices'}",
    "task.train_file=train.jsonl",
    "task.dev_file=dev.jsonl",
    "task.text_fields=[context,question]",
    "task.ending_fields=[endings]",
    "task.num_choices=3",
    "task.label_field=answer",
]


@pytest.mark.slow
def test_swag_end_to_end(tmp_path):
    proc = run_train(*SWAG, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["select_metric"] == "accuracy"
    assert result["split_sizes"] == {"train": 16, "val": 8, "test": 20}  # n_val from train.csv; val.csv whole
    for prefix in ("val", "test_last", "test_best"):
        assert 0.0 <= result["metrics"][f"{prefix}/accuracy"] <= 1.0
    assert 0 < result["baseline"]["test/accuracy"] < 1
    assert result["train_samples_per_s"] > 0 and 0 < result["padding_efficiency"] <= 1
    assert result["head"].startswith("new classifier head")


@pytest.mark.slow
def test_reinit_llrd_and_mixout_prior_wd(tmp_path):
    proc = run_train(
        *SWAG, "reinit=1", "llrd=0.8", "data.group_by_length=true", f"hydra.run.dir={tmp_path / 'reinit_llrd'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_train(*SWAG, "mixout=0.1", "prior_wd=0.01", "optimizer=bertadam", f"hydra.run.dir={tmp_path / 'mix'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert {r["status"] for r in results.values()} == {"ok"}
    assert results["reinit_llrd"]["settings"]["llrd"] == 0.8 and results["reinit_llrd"]["settings"]["reinit"] == 1


@pytest.mark.slow
def test_jsonl_choices_with_a_list_field(tmp_path):
    proc = run_train(*CHOICES, "task.n_val=null", f"hydra.run.dir={tmp_path}")  # val/test = dev.jsonl's halves
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["split_sizes"] == {"train": 16, "val": 6, "test": 6}


@pytest.mark.slow
def test_an_example_with_the_wrong_number_of_endings_is_one_message(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text((FIXTURES / "choices" / "train.jsonl").read_text())
    lines = (FIXTURES / "choices" / "dev.jsonl").read_text().splitlines()
    lines[4] = lines[4].replace('"endings": [', '"endings": ["one more", ')
    (data / "dev.jsonl").write_text("\n".join(lines) + "\n")
    proc = run_train(*CHOICES, f"task.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0
    assert "dev.jsonl, line 5: 4 endings in field 'endings', task.num_choices=3" in proc.stderr
    assert "Traceback" not in proc.stderr
