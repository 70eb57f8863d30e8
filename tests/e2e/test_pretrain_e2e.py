"""Further pre-training through `python train.py ... pretrain=tapt`: result.json's `pretrain`
record, the cache across jobs, bad input as one message."""

import json

import pytest

from tests.helpers.bad_input import assert_one_clear_message
from tests.helpers.e2e import TINY
from tests.helpers.inprocess import run_train

pytestmark = pytest.mark.slow

FAST_STAGE = ["pretrain.max_steps=3", "pretrain.eval_batch_size=16"]


def _run(run_dir, cache, *overrides):
    proc = run_train(*TINY, f"hydra.run.dir={run_dir}", f"pretrain.cache_dir={cache}", *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run_dir / "result.json").read_text()), proc


def test_tapt_records_pretrain_and_the_next_job_reuses_it(tmp_path):
    cache = tmp_path / "cache"
    first, proc = _run(tmp_path / "a", cache, "pretrain=tapt", *FAST_STAGE)
    pre = first["pretrain"]
    assert first["status"] == "ok" and first["settings"]["pretrain"] == "tapt"
    (stage,) = pre["stages"]
    assert stage["stage"] == "tapt" and not stage["reused"] and stage["steps"] == 3
    assert stage["corpus"]["documents"] == first["split_sizes"]["train"]  # debug=fast: the 16 drawn articles
    assert stage["corpus"]["tokens"] > 0 and stage["corpus"]["train_blocks"] > 0
    assert pre["held_out_loss_before"] > 10 and pre["held_out_loss_after"] is not None
    assert pre["model_from"] == "packaged:tiny" and pre["model"] == stage["dir"]
    assert pre["settings"]["lr"] == 1e-4 and pre["settings"]["optimizer"]["name"] == "adamw"
    assert "new masked-LM head" in proc.stdout and "fine-tuning starts from" in proc.stdout
    metrics_csv = (tmp_path / "a" / "metrics.csv").read_text().splitlines()[0]
    assert "pretrain/val_loss" in metrics_csv and "pretrain/train_loss" in metrics_csv

    # another fine-tuning seed: the same stage, from the cache
    again, proc = _run(tmp_path / "b", cache, "pretrain=tapt", *FAST_STAGE, "seed=3")
    assert again["pretrain"]["reused"] and again["pretrain"]["model"] == pre["model"]
    assert "reused" in proc.stdout and "new masked-LM head" not in proc.stdout
    # another stage setting: trained anew
    changed, _ = _run(tmp_path / "c", cache, "pretrain=tapt", *FAST_STAGE, "pretrain.mlm_probability=0.2")
    assert not changed["pretrain"]["reused"] and changed["pretrain"]["model"] != pre["model"]

    none, _ = _run(tmp_path / "d", cache)  # the default: no stage
    assert none["pretrain"] == {"name": "none"} and none["settings"]["pretrain"] == "none"


def test_missing_domain_corpus_is_one_message(tmp_path):
    proc = run_train(*TINY, f"hydra.run.dir={tmp_path / 'run'}", "pretrain=dapt", "pretrain.domain_corpus=/no/such/dir")
    assert_one_clear_message(proc, "pretrain.domain_corpus=/no/such/dir")


def test_empty_domain_corpus_is_one_message(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    proc = run_train(
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"pretrain.cache_dir={tmp_path}",
        "pretrain=dapt",
        f"pretrain.domain_corpus={empty}",
    )
    assert_one_clear_message(proc, str(empty))


def test_model_without_masked_lm_head_is_one_message(tmp_path, tiny_family_dirs):
    proc = run_train(
        *TINY, f"hydra.run.dir={tmp_path / 'run'}", "pretrain=tapt", f"model.name_or_path={tiny_family_dirs['gpt2']}"
    )
    assert_one_clear_message(proc, "has no masked-LM head class")
