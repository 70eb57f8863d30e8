"""Every head through `python train.py` with re-init, LLRD and mixout, saved and reloaded."""

import json

import pytest
import torch
from transformers import AutoTokenizer

from bertlab.heads.build import load_head_model
from tests.helpers.e2e import TINY
from tests.helpers.inprocess import run_train

HEADS = ("cls", "mean", "max", "concat_last4", "layers_cnn", "scalar_mix")


@pytest.mark.slow
@pytest.mark.parametrize("head", HEADS)
def test_every_head_composes_with_reinit_llrd_and_mixout_and_reloads(tmp_path, head):
    run_dir = tmp_path / "run"
    layers = ["head.layers=2"] if head == "concat_last4" else []  # the tiny model has 2 layers
    proc = run_train(
        *TINY,
        f"head={head}",
        *layers,
        "reinit=1",
        "llrd=0.9",
        "mixout=0.1",
        "save_weights=true",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert result["settings"]["head"] == head
    assert result["head"].startswith(f"new {head} head")
    d = result["diagnostics"]
    # the head is LLRD's head group, and the diagnostics' classifier; no pooler is built
    assert list(d["relative_change"]) == ["embeddings", "layer_0", "layer_1", "classifier"]
    assert all(v > 0 for v in d["relative_change"].values())
    lr = result["settings"]["lr"]
    for depth, k in (("head", 0), ("layer_1", 1), ("layer_0", 2), ("embeddings", 3)):
        assert d["peak_lr"][f"{depth}/decay"] == pytest.approx(lr * 0.9**k)

    model = load_head_model(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    inputs = tokenizer(["one text", "and another, longer text"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (2, model.config.num_labels) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_a_bad_head_value_is_one_message_before_anything_loads(tmp_path):
    proc = run_train(*TINY, "head=scalar_mix", "head.pool=last", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1
    assert "head.pool='last' is invalid; valid: cls, mean" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
