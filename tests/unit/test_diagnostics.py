"""The diagnostics: block names, Adam update sizes (BERTAdam's oversized first step), gradient norms
and the relative change of each block from its starting weights."""

import math

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertlab.callbacks.diagnostics import grad_norms, relative_change, update_sizes
from bertlab.model.anatomy import blocks_by_param
from bertlab.optim.adam import bias_correction_factor
from bertlab.optim.optimizer import build_optimizer

OPT = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-6, "weight_decay": 0.01}


@pytest.fixture
def model(tiny_bert_dir):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)


def blocks(model):
    block_of = blocks_by_param(model)
    return {id(p): block_of[n] for n, p in model.named_parameters()}


def step_with_random_grads(model, optimizer, steps=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g)
        optimizer.step()


def test_block_names(model):
    # BERT's names, as logs and result.json have always had them (other families: test_anatomy.py)
    block_of = blocks_by_param(model)
    assert block_of["bert.embeddings.word_embeddings.weight"] == "embeddings"
    assert block_of["bert.encoder.layer.1.attention.self.query.weight"] == "layer_1"
    assert block_of["bert.pooler.dense.bias"] == "pooler"
    assert block_of["classifier.weight"] == "classifier"


def test_update_size_matches_hand_formula(model):
    optimizer = build_optimizer(model, {"name": "adamw", **OPT})
    step_with_random_grads(model, optimizer, steps=3)
    sizes = update_sizes(optimizer, blocks(model))
    assert list(sizes) == ["embeddings", "layer_0", "layer_1", "pooler", "classifier"]
    c1, c2 = 1 / (1 - 0.9**3), 1 / math.sqrt(1 - 0.999**3)
    for block in sizes:
        ps = [p for n, p in model.named_parameters() if blocks_by_param(model)[n] == block]
        u = torch.cat(
            [
                (c1 * optimizer.state[p]["exp_avg"] / (c2 * optimizer.state[p]["exp_avg_sq"].sqrt() + 1e-6)).flatten()
                for p in ps
            ]
        )
        assert sizes[block] == pytest.approx(float(u.abs().mean()), rel=1e-5)


def test_bertadam_first_step_is_oversized_by_the_bias_correction_factor(tiny_bert_dir):
    sizes, factors = {}, {}
    for name in ("bertadam", "adamw"):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)
        # eps negligible, so that only the bias correction tells the two apart
        optimizer = build_optimizer(model, {"name": name, **OPT, "eps": 1e-12})
        step_with_random_grads(model, optimizer)
        sizes[name], factors[name] = update_sizes(optimizer, blocks(model)), bias_correction_factor(optimizer)
    assert factors["bertadam"] == 1.0 and factors["adamw"] == pytest.approx(math.sqrt(1 - 0.999) / 0.1)
    for block in sizes["adamw"]:
        # debiased: |g| / (|g| + eps) ~ 1; BERTAdam: 1/factor ~ 3.16x larger (paper Fig. 2-3)
        assert sizes["adamw"][block] == pytest.approx(1.0, rel=1e-6)
        assert sizes["bertadam"][block] * factors["adamw"] == pytest.approx(sizes["adamw"][block], rel=1e-5)


def test_grad_norms(model):
    for p in model.parameters():
        p.grad = torch.full_like(p, 2.0)
    by_block = {}
    for n, p in model.named_parameters():
        by_block.setdefault(blocks_by_param(model)[n], []).append(p)
    norms = grad_norms(by_block)
    for block, ps in by_block.items():
        assert norms[block] == pytest.approx(2.0 * math.sqrt(sum(p.numel() for p in ps)), rel=1e-6)


def test_relative_change_per_block(model):
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for n, p in model.named_parameters():
            if blocks_by_param(model)[n] == "layer_1":
                p.mul_(1.1)
    change = relative_change(model, start)
    assert change["layer_1"] == pytest.approx(0.1, rel=1e-6)
    assert all(v == 0.0 for b, v in change.items() if b != "layer_1")


def test_state_survives_a_resume(model):
    from bertlab.callbacks.diagnostics import TrainingDiagnostics

    before = TrainingDiagnostics(model, every_n_steps=25)
    before.peak_lr, before.update_size_first, before.bias_correction_first = {"all/decay": 1e-3}, {"layer_0": 3.1}, 1.0
    after = TrainingDiagnostics(model, every_n_steps=25)
    after.load_state_dict(before.state_dict())
    assert after.summary() == before.summary()


def test_logged_steps_are_the_early_ones_every_n_and_the_last(model):
    from types import SimpleNamespace

    from bertlab.callbacks.diagnostics import TrainingDiagnostics

    diagnostics = TrainingDiagnostics(model, every_n_steps=25)
    diagnostics.on_train_start(SimpleNamespace(estimated_stepping_batches=63), None)
    logged = [s for s in range(1, 64) if diagnostics._is_log_step(s, None)]
    assert logged == [1, 2, 4, 8, 16, 25, 50, 63]
