"""Issue 30's further pre-training options through `python train.py` under debug=fast (one run per
option, a second where the point is reuse): mlm_nsp, Google's whole-word masking, selective masking
(its cached stages and importance.tsv), saved steps with use_step and the report's plot, dapt_tapt's
per-stage settings."""

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.e2e import TINY, python, run_train

pytestmark = pytest.mark.slow
TIMEOUT = 1200  # seconds per run: about 30 s on 2 free cores, ten times that on a shared, loaded machine


def _run(run_dir, cache, *overrides):
    proc = run_train(
        *TINY, f"hydra.run.dir={run_dir}", f"pretrain.cache_dir={cache}", "pretrain=tapt", *overrides, timeout=TIMEOUT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run_dir / "result.json").read_text()), proc


def test_mlm_nsp(tmp_path):
    result, proc = _run(tmp_path / "a", tmp_path / "cache", "pretrain.objective=mlm_nsp")
    (stage,) = result["pretrain"]["stages"]
    assert stage["objective"] == "mlm_nsp" and "new next-sentence head" in stage["head"]
    assert {"mlm_loss", "nsp_loss", "nsp_accuracy"} <= set(stage["held_out_after"])
    assert "held-out MLM + NSP loss" in proc.stdout
    assert result["status"] == "ok"


def test_google_whole_word_mask(tmp_path):
    result, _ = _run(tmp_path / "a", tmp_path / "cache", "pretrain.whole_word_mask=true")
    assert result["status"] == "ok" and result["pretrain"]["settings"]["whole_word_mask"] is True


def test_selective_masking_stages_are_cached_and_the_importance_file_readable(tmp_path):
    cache = tmp_path / "cache"
    first, proc = _run(tmp_path / "a", cache, "pretrain.masking=selective")
    (stage,) = first["pretrain"]["stages"]
    selective = stage["selective"]
    assert not selective["scorer"]["reused"] and not selective["classifier"]["reused"]
    # debug=fast: 16 examples, batch 16, 3 epochs = 3 scorer steps; the classifier's are capped at 4
    assert selective["scorer"]["scorer_steps"] <= 4 and selective["classifier"]["classifier_steps"] <= 4
    lines = open(selective["importance_file"]).read().splitlines()
    assert lines[0].split("\t") == [
        "example",
        "sentence",
        "position",
        "token",
        "p_label_whole",
        "p_label_buffer",
        "gap",
        "important",
    ]
    assert len(lines) - 1 == selective["scorer"]["tokens"]
    assert sum(line.endswith("\t1") for line in lines[1:]) == selective["scorer"]["important"]
    # another fine-tuning seed: every stage from the cache
    again, proc = _run(tmp_path / "b", cache, "pretrain.masking=selective", "seed=5")
    (stage2,) = again["pretrain"]["stages"]
    assert stage2["reused"] and stage2["selective"]["scorer"]["reused"] and stage2["selective"]["classifier"]["reused"]
    assert "importance labels in" in proc.stdout


def test_saved_steps_load_differ_and_the_report_plots_them(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        "-m",
        *TINY,
        "pretrain=tapt",
        f"pretrain.cache_dir={tmp_path / 'cache'}",
        "pretrain.save_every_n_steps=2",
        "pretrain.use_step=2,4",
        f"hydra.sweep.dir={sweep}",
        timeout=2 * TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))]
    assert [r["pretrain"]["use_step"] for r in results] == [2, 4]
    first, second = (r["pretrain"] for r in results)
    assert not first["reused"] and second["reused"]  # one stage run for both
    stage_dir = first["stages"][0]["dir"]
    assert first["stages"][0]["saved_steps"] == [2, 4]
    assert first["model"].endswith("steps/2") and second["model"].endswith("steps/4")
    w2 = load_file(f"{stage_dir}/steps/2/model.safetensors")
    w4 = load_file(f"{stage_dir}/steps/4/model.safetensors")
    name = next(k for k in w2 if "encoder.layer.0.attention" in k and k.endswith("weight"))
    assert not torch.equal(w2[name], w4[name])  # two different points of the stage
    assert any("pooler" in k for k in w2)  # the pooler is carried into every saved step
    report = python("-m", "bertlab.cli", "report", str(sweep), timeout=TIMEOUT)
    assert report.returncode == 0, report.stderr[-3000:]
    assert list(sweep.glob("*_pretrain_steps.png")), list(sweep.iterdir())
    assert "against the pre-training steps" in (sweep / "report.md").read_text()


def test_use_step_the_stage_never_reached_is_one_message(tmp_path):
    proc = run_train(
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"pretrain.cache_dir={tmp_path / 'cache'}",
        "pretrain=tapt",
        "pretrain.save_every_n_steps=2",
        "pretrain.use_step=8",  # debug=fast caps the stage at 4 steps
        timeout=TIMEOUT,
    )
    assert proc.returncode != 0
    assert "pretrain.use_step=8: the stage saved its model at steps [2, 4]" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_dapt_tapt_per_stage_settings_reach_their_stage(tmp_path):
    result, _ = _run(tmp_path / "a", tmp_path / "cache", "pretrain=dapt_tapt", "pretrain.per_stage.dapt.lr=3e-4")
    dapt, tapt = result["pretrain"]["stages"]
    assert (dapt["settings"]["lr"], dapt["settings"]["optimizer"]["lr"], dapt["settings"]["batch_size"]) == (
        3e-4,
        3e-4,
        32,
    )
    assert (tapt["settings"]["lr"], tapt["settings"]["optimizer"]["lr"], tapt["settings"]["batch_size"]) == (
        1e-4,
        1e-4,
        16,
    )
    assert dapt["key"] != tapt["key"] and dapt["steps"] == 4  # debug=fast caps DAPT's own 40 steps
