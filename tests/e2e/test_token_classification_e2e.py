"""Token classification through `python train.py` (tiny random BERT, the CoNLL-2003 and JSONL
fixtures): result.json, the methods, bad input, kill and resume."""

from pathlib import Path

import pytest

from tests.helpers.e2e import TINY, results_under
from tests.helpers.inprocess import run_train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONLL = [*TINY, "task=conll2003", f"task.data_dir={FIXTURES / 'conll2003'}", "data.token_cache=null"]
METRICS = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")


@pytest.mark.slow
def test_conll2003_end_to_end(tmp_path):
    proc = run_train(*CONLL, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["status"] == "ok" and result["select_metric"] == "entity_f1"
    assert result["split_sizes"] == {"train": 16, "val": 8, "test": 10}  # n_val from valid.txt; test.txt whole
    for prefix in ("val", "test_last", "test_best"):
        assert all(0.0 <= result["metrics"][f"{prefix}/{m}"] <= 1.0 for m in METRICS)
    assert result["baseline"]["test/entity_f1"] == 0.0 and 0 < result["baseline"]["test/token_accuracy"] < 1
    assert result["head"] == "new classifier head (9 labels)"


@pytest.mark.slow
def test_reinit_llrd_mixout_prior_wd_and_all_pieces(tmp_path):
    proc = run_train(
        *CONLL,
        "reinit=1",
        "llrd=0.8",
        "task.label_all_pieces=true",
        "data.group_by_length=true",
        f"hydra.run.dir={tmp_path / 'reinit_llrd'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_train(*CONLL, "mixout=0.1", "prior_wd=0.01", "optimizer=bertadam", f"hydra.run.dir={tmp_path / 'mix'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert {r["status"] for r in results.values()} == {"ok"}
    assert results["reinit_llrd"]["settings"]["llrd"] == 0.8


@pytest.mark.slow
def test_jsonl_task_with_inferred_tags(tmp_path):
    proc = run_train(
        *TINY,
        "task=tokens",
        f"task.data_dir={FIXTURES / 'tokens'}",
        "task.train_file=train.jsonl",
        "task.dev_file=dev.jsonl",
        "task.n_val=null",  # val/test = the halves of dev.jsonl
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path)["."]
    assert result["split_sizes"] == {"train": 16, "val": 6, "test": 6}
    assert result["head"] == "new classifier head (8 labels)"


@pytest.mark.slow
def test_a_tag_outside_the_labels_is_one_message(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        (data / name).write_text((FIXTURES / "conll2003" / name).read_text())
    (data / "test.txt").write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP B-ORGANISATION\n\n")
    proc = run_train(*CONLL, f"task.data_dir={data}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode != 0
    assert "test.txt, line 4: tag 'B-ORGANISATION'" in proc.stderr and "Traceback" not in proc.stderr
