"""Pre-trained weight decay: pulls the pretrained parameters that get weight decay toward their
starting values with the group lr in force (as the official PriorWD: not biases and norm weights),
leaves the new classifier alone, and adds to ordinary weight decay."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertlab.core.errors import ConfigError
from bertlab.methods.prior_wd import PriorWeightDecay, pretrained_parameters
from bertlab.methods.reinit import reinit_top_layers
from bertlab.optim.optimizer import build_optimizer
from bertlab.optim.param_groups import no_decay_ids

OPT = {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-6, "weight_decay": 0.0}


@pytest.fixture
def model(tiny_bert_dir):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)


def drift(model, scale=0.1):
    """Move every parameter away from where it started, as training would."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def pulled(model, name):
    """Written from the rule: pretrained (bert.*), and neither a bias nor a norm weight."""
    return name.startswith("bert.") and not name.endswith(".bias") and "LayerNorm" not in name


def test_pulls_toward_start_with_group_lr_and_skips_classifier(model):
    reinit_top_layers(model, 1)
    start = snapshot(model)  # p0 = the weights after re-init
    callback = PriorWeightDecay(model, strength=0.5)
    assert callback.names == sorted(n for n, _ in model.named_parameters() if pulled(model, n))
    assert "bert.pooler.dense.weight" in callback.names and "bert.pooler.dense.bias" not in callback.names
    optimizer = build_optimizer(model, OPT, llrd=0.5)
    for group in optimizer.param_groups:
        group["lr"] *= 0.3  # what a schedule does between steps: the lr in force must be used
    drift(model)
    before = snapshot(model)
    callback.on_before_optimizer_step(None, None, optimizer)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    for name, p in params.items():
        if name.startswith("classifier."):
            assert torch.equal(p, before[name]), "the new classifier has no prior to decay toward"
        elif not pulled(model, name):
            assert torch.equal(p, before[name]), f"{name}: no weight decay, so no pull (official PriorWD)"
        else:
            expected = before[name] - lr_of[id(p)] * 0.5 * (before[name] - start[name])
            torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-7)
    # LLRD: the embeddings (lr * 0.5^3) are pulled less than the pooler (lr)
    assert lr_of[id(params["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1e-3 * 0.3 * 0.5**3)


def test_converges_to_start_without_gradients(model):
    start = snapshot(model)
    callback = PriorWeightDecay(model, strength=100.0)
    optimizer = build_optimizer(model, {**OPT, "lr": 1e-2})  # lr * lambda = 1: one step lands on p0
    drift(model)
    callback.on_before_optimizer_step(None, None, optimizer)
    for name, p in pretrained_parameters(model).items():
        torch.testing.assert_close(p.detach(), start[name], rtol=0, atol=1e-6)


def test_combines_with_ordinary_weight_decay(model):
    """AdamW with zero gradients only decays: p <- (p - lr lam (p - p0)) (1 - lr wd)."""
    start = snapshot(model)
    optimizer = build_optimizer(model, {**OPT, "weight_decay": 0.1})
    callback = PriorWeightDecay(model, strength=2.0)
    drift(model)
    before = snapshot(model)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    callback.on_before_optimizer_step(None, None, optimizer)
    optimizer.step()
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    lr = OPT["lr"]
    for name, p in model.named_parameters():
        after_pull = before[name] - lr * 2.0 * (before[name] - start[name]) if pulled(model, name) else before[name]
        expected = after_pull * (1 - lr * decay_of[id(p)])
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-7)
    # the ordinary weight decay was not switched off (the paper code's slip)
    assert any(g["weight_decay"] == 0.1 for g in optimizer.param_groups)


def test_zero_strength_changes_nothing(model):
    optimizer = build_optimizer(model, OPT)
    callback = PriorWeightDecay(model, strength=0.0)
    drift(model)
    before = snapshot(model)
    callback.on_before_optimizer_step(None, None, optimizer)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_pulls_exactly_the_decay_group_of_every_family(tiny_family):
    """The no-decay rule is param_groups' own: pulled = pretrained and in a decay group."""
    family, model = tiny_family
    no_decay = no_decay_ids(model)
    names = PriorWeightDecay(model, strength=1.0).names
    base = model.base_model_prefix + "."
    assert names == sorted(n for n, p in model.named_parameters() if n.startswith(base) and id(p) not in no_decay)
    assert names and not any(n.endswith(".bias") or "norm" in n.lower() for n in names), family


@pytest.mark.parametrize("strength", [-1, float("inf"), True, "0.1"])
def test_bad_strength_is_the_config_checks_error(model, strength):
    """Used as a library, the callback refuses what the config check refuses, with its message."""
    with pytest.raises(ConfigError, match=r"prior_wd=.* is invalid: pre-trained weight decay must be a number >= 0"):
        PriorWeightDecay(model, strength=strength)
