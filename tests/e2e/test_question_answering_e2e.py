"""Question answering through `python train.py` (tiny random BERT, the SQuAD JSON and JSONL fixtures):
result.json, re-init + LLRD and the other methods, bad input, kill and resume, evaluate and predict."""

import json
from pathlib import Path

import pytest

from tests.helpers.e2e import TINY, results_under
from tests.helpers.inprocess import run_train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SQUAD = [*TINY, "task=squad", f"task.data_dir={FIXTURES / 'squad'}", "data.token_cache=null"]
METRICS = ("exact_match", "answer_f1")


@pytest.mark.slow
def test_squad_end_to_end(tmp_path):
    proc = run_train(*SQUAD, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["select_metric"] == "answer_f1"
    assert result["split_sizes"] == {"train": 16, "val": 8, "test": 10}  # questions: n_val from train, dev = test
    for prefix in ("val", "test_last", "test_best"):
        assert all(0.0 <= result["metrics"][f"{prefix}/{m}"] <= 1.0 for m in METRICS)
    assert set(result["baseline"]) == {"test/exact_match", "test/answer_f1"}
    assert result["global_steps"] == 4 and result["train_samples_per_s"] > 0


@pytest.mark.slow
def test_reinit_llrd_mixout_prior_wd_and_a_jsonl_task_with_the_token_cache(tmp_path):
    proc = run_train(
        *SQUAD, "reinit=1", "llrd=0.8", "data.group_by_length=true", f"hydra.run.dir={tmp_path / 'reinit_llrd'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_train(*SQUAD, "mixout=0.1", "prior_wd=0.01", "optimizer=bertadam", f"hydra.run.dir={tmp_path / 'mix'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    qa = [*TINY, "task=qa", f"task.data_dir={FIXTURES / 'qa'}", "task.train_file=train.jsonl"]
    qa += ["task.dev_file=dev.jsonl", f"data.token_cache={tmp_path / 'cache'}"]
    for run in ("cold", "warm"):  # the second run reads every split from the cache, windows' map included
        proc = run_train(*qa, f"hydra.run.dir={tmp_path / run}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert {r["status"] for r in results.values()} == {"ok"}
    assert results["reinit_llrd"]["settings"]["llrd"] == 0.8
    assert set(results["warm"]["token_cache_hits"].values()) == {True}
    assert results["warm"]["metrics"] == results["cold"]["metrics"]


@pytest.mark.slow
def test_an_answer_off_its_start_is_one_message(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    squad = json.loads((FIXTURES / "squad" / "train-v1.1.json").read_text())
    squad["data"][3]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    (data / "train-v1.1.json").write_text(json.dumps(squad))
    (data / "dev-v1.1.json").write_text((FIXTURES / "squad" / "dev-v1.1.json").read_text())
    proc = run_train(*SQUAD, f"task.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0
    assert "train-v1.1.json, question id tr0015: answer 'Melbourne' is not at its answer_start=3" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_the_hub_offline_is_one_message(tmp_path):
    proc = run_train(*TINY, "task=squad", f"hydra.run.dir={tmp_path}")  # data_dir null: rajpurkar/squad
    assert proc.returncode != 0
    assert "Cannot load task 'squad' (rajpurkar/squad) from the Hugging Face hub" in proc.stderr
    assert "Traceback" not in proc.stderr
