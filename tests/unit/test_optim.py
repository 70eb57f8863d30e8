"""The Adam family against a hand-written reference of each formula and against torch itself."""

import math

import pytest
import torch
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.optim.adam import AdamFamily, bias_correction_factor
from bertlab.optim.optimizer import build_optimizer

CONF = CONF_DIR / "optimizer"
SHAPES = [(7, 5), (5,), (3, 4, 2), (1,)]
STEPS = 100


def reference_run(params, grads, lrs, betas, eps, wd, bias_correction, mode):
    """The formulas written out, tensor by tensor, in float64 (see optim/adam.py's docstring):
    BERT's AdamWeightDecay when bias_correction is off, textbook Adam (+ decoupled or L2 decay)
    when on."""
    b1, b2 = betas
    params = [p.double().clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for t, (step_grads, lr) in enumerate(zip(grads, lrs), start=1):
        for i, (p, g) in enumerate(zip(params, step_grads)):
            g = g.double()
            if mode == "l2":
                g = g + wd * p
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            if bias_correction:
                update = (m[i] / (1 - b1**t)) / ((v[i] / (1 - b2**t)).sqrt() + eps)
            else:
                update = m[i] / (v[i].sqrt() + eps)
            if mode == "decoupled":
                update = update + wd * p
            params[i] = p - lr * update
    return params


def random_problem(seed=0, steps=STEPS, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=dtype) * 0.1 for s in SHAPES] for _ in range(steps)]
    # A moving LR, as a schedule would set it, to check it is read at every step.
    lrs = [1e-3 * (1 + 0.5 * math.sin(t / 10)) for t in range(steps)]
    return params, grads, lrs


def run(optimizer_factory, params, grads, lrs):
    params = [torch.nn.Parameter(p.clone()) for p in params]
    optimizer = optimizer_factory(params)
    for step_grads, lr in zip(grads, lrs):
        for group in optimizer.param_groups:
            group["lr"] = lr
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        optimizer.step()
    return [p.detach() for p in params], optimizer


def assert_close(actual, expected, tol=1e-6, rtol=None):
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a.double(), e.double(), rtol=tol if rtol is None else rtol, atol=tol)


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("mode", ["decoupled", "l2"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adam_family_matches_reference_formula(bias_correction, mode, dtype):
    params, grads, lrs = random_problem(dtype=dtype)
    kw = dict(betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1)
    ours, _ = run(
        lambda ps: AdamFamily(ps, bias_correction=bias_correction, weight_decay_mode=mode, **kw), params, grads, lrs
    )
    expected = reference_run(params, grads, lrs, kw["betas"], kw["eps"], kw["weight_decay"], bias_correction, mode)
    # float64: 1e-6 absolute; float32: 100 steps of rounding on values up to ~3 reach ~1.5e-6
    # absolute, so 1e-6 relative as well. The other variant's formula is off by > 0.1 here.
    assert_close(ours, expected, rtol=0 if dtype == torch.float64 else 1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(ours, params))  # the run did move the params


@pytest.mark.parametrize("mode, torch_cls", [("decoupled", torch.optim.AdamW), ("l2", torch.optim.Adam)])
def test_bias_corrected_family_matches_torch(mode, torch_cls):
    params, grads, lrs = random_problem(seed=1)
    kw = dict(betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05)
    ours, _ = run(lambda ps: AdamFamily(ps, bias_correction=True, weight_decay_mode=mode, **kw), params, grads, lrs)
    theirs, _ = run(lambda ps: torch_cls(ps, foreach=True, **kw), params, grads, lrs)
    assert_close(ours, theirs, tol=1e-7)


def _cfg(name, **overrides):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    cfg.lr = 1e-3
    cfg.weight_decay = 0.1
    for k, v in overrides.items():
        cfg[k] = v
    return cfg


def _build(cfg):
    return lambda ps: build_optimizer(_ParamList(ps), cfg)


class _ParamList(torch.nn.Module):
    """Parameters with names, as build_optimizer expects a model (no bias: one decay group)."""

    def __init__(self, params):
        super().__init__()
        for i, p in enumerate(params):
            self.register_parameter(f"w{i}", p)


@pytest.mark.parametrize(
    "name, torch_cls, mode", [("adamw", torch.optim.AdamW, "decoupled"), ("adam_l2", torch.optim.Adam, "l2")]
)
def test_configs_delegate_to_torch_and_match_reference(name, torch_cls, mode):
    # float64, so the 1e-6 tolerance is absolute (rtol=0): it tests the formula, not float32 rounding
    params, grads, lrs = random_problem(seed=2, dtype=torch.float64)
    ours, optimizer = run(_build(_cfg(name)), params, grads, lrs)
    assert type(optimizer) is torch_cls
    theirs, _ = run(
        lambda ps: torch_cls(ps, foreach=True, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1), params, grads, lrs
    )
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))  # to the bit: it *is* torch's optimizer
    assert_close(ours, reference_run(params, grads, lrs, (0.9, 0.999), 1e-6, 0.1, True, mode), rtol=0)


def test_bertadam_config_is_the_bert_formula_and_adamw_without_bias_correction_is_bertadam():
    params, grads, lrs = random_problem(seed=3, dtype=torch.float64)
    bert, optimizer = run(_build(_cfg("bertadam")), params, grads, lrs)
    assert type(optimizer) is AdamFamily
    assert_close(bert, reference_run(params, grads, lrs, (0.9, 0.999), 1e-6, 0.1, False, "decoupled"), rtol=0)
    switched, _ = run(_build(_cfg("adamw", bias_correction=False)), params, grads, lrs)
    assert all(torch.equal(a, b) for a, b in zip(bert, switched))
    l2_plain, _ = run(_build(_cfg("adam_l2", bias_correction=False)), params, grads, lrs)
    assert_close(l2_plain, reference_run(params, grads, lrs, (0.9, 0.999), 1e-6, 0.1, False, "l2"), rtol=0)


def test_update_ratio_debiased_over_bertadam_is_the_bias_correction_factor():
    # With wd = 0 the moments depend on the gradients only, so both optimizers see the same m, v
    # and (eps negligible) debiased update = factor * BERTAdam update, at every step.
    params, grads, _ = random_problem(seed=4, steps=5)
    kw = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-12, weight_decay=0.0)
    pb = [torch.nn.Parameter(p.clone().double()) for p in params]
    pd = [torch.nn.Parameter(p.clone().double()) for p in params]
    bert, debiased = AdamFamily(pb, bias_correction=False, **kw), torch.optim.AdamW(pd, **kw)
    assert bias_correction_factor(debiased) == pytest.approx(math.sqrt(1 - 0.999) / (1 - 0.9))  # before step 1
    for t, step_grads in enumerate(grads, start=1):
        before_b, before_d = [p.detach().clone() for p in pb], [p.detach().clone() for p in pd]
        for p, q, g in zip(pb, pd, step_grads):
            p.grad, q.grad = g.double(), g.double()
        bert.step()
        debiased.step()
        factor = bias_correction_factor(debiased)
        assert factor == pytest.approx(math.sqrt(1 - 0.999**t) / (1 - 0.9**t), rel=1e-12)
        assert bias_correction_factor(bert) == 1.0
        for p, q, b0, d0 in zip(pb, pd, before_b, before_d):
            torch.testing.assert_close((q - d0) / (p - b0), torch.full_like(p, factor), rtol=1e-7, atol=0)
    assert factor < 1  # early on BERTAdam's steps are the larger ones: the paper's instability


def test_state_names_and_checkpoint_resume():
    params, grads, lrs = random_problem(seed=5, steps=20)
    straight, _ = run(lambda ps: AdamFamily(ps, lr=1e-3), params, grads, lrs)
    first, optimizer = run(lambda ps: AdamFamily(ps, lr=1e-3), params, grads[:10], lrs[:10])
    state = optimizer.state_dict()
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}  # as torch's AdamW
    assert float(state["state"][0]["step"]) == 10
    resumed = [torch.nn.Parameter(p.clone()) for p in first]
    optimizer = AdamFamily(resumed, lr=1e-3)
    optimizer.load_state_dict(state)
    for step_grads, lr in zip(grads[10:], lrs[10:]):
        optimizer.param_groups[0]["lr"] = lr
        for p, g in zip(resumed, step_grads):
            p.grad = g.clone()
        optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(straight, resumed))


def test_parameters_without_gradients_are_left_alone():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    optimizer = AdamFamily([a, b], lr=0.1, weight_decay=0.1)
    a.grad = torch.ones(3)
    optimizer.step()
    assert torch.equal(b, torch.ones(3)) and b not in optimizer.state
    assert not torch.equal(a, torch.ones(3))


def test_build_optimizer_on_tiny_bert_keeps_group_names(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)
    optimizer = build_optimizer(model, _cfg("bertadam"), llrd=0.5)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["head/decay"] == 1e-3 and lrs["embeddings/decay"] == pytest.approx(1e-3 * 0.5**3)
    loss = model(input_ids=torch.tensor([[101, 2000, 102]]), labels=torch.tensor([1])).loss
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("name", "sgd", "optimizer.name='sgd'"),
        ("weight_decay_mode", "coupled", "optimizer.weight_decay_mode='coupled'"),
        ("lr", 0.0, "optimizer.lr=0.0"),
        ("lr", -1e-5, "optimizer.lr"),
        ("lr", "fast", "optimizer.lr='fast'"),
        ("betas", [0.9, 1.0], "optimizer.betas=[0.9, 1.0]"),
        ("betas", [-0.1, 0.999], "optimizer.betas=[-0.1, 0.999]"),
        ("betas", [0.9], "optimizer.betas"),
        ("eps", 0.0, "optimizer.eps=0.0"),
        ("weight_decay", -0.01, "optimizer.weight_decay=-0.01"),
        ("bias_correction", "yes", "optimizer.bias_correction='yes'"),
        ("bias_corection", False, "unknown key"),
    ],
)
def test_invalid_configs_raise_config_error(key, value, match):
    cfg = OmegaConf.to_container(_cfg("adamw"))
    cfg[key] = value
    with pytest.raises(ConfigError, match=match.replace("[", r"\[").replace(".", r"\.")) as err:
        build_optimizer(_ParamList([torch.nn.Parameter(torch.ones(2))]), cfg)
    assert "valid" in str(err.value)


# ---------------------------------------------------------------- any optimizer, by _target_

SGD = {
    "_target_": "torch.optim.SGD",
    "_partial_": True,
    "name": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.01,
}


def test_an_optimizer_class_named_by_target_trains_through_the_builder(tiny_bert_dir):
    """A new optimizer is a config with `_target_` and its kwargs: the builder gives it the same
    parameter groups (decay / no_decay, LLRD) as ours, and it trains."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)
    optimizer = build_optimizer(model, OmegaConf.create(SGD), llrd=0.5)
    assert type(optimizer) is torch.optim.SGD
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["head/decay"]["lr"] == 0.1 and groups["embeddings/decay"]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert groups["head/decay"]["weight_decay"] == 0.01 and groups["head/no_decay"]["weight_decay"] == 0.0
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)
    batch = dict(input_ids=torch.tensor([[101, 2000, 102], [101, 2001, 102]]), labels=torch.tensor([1, 0]))
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "change, fragments",
    [
        (
            {"_target_": "torch.optim.Nope"},
            ["optimizer._target_='torch.optim.Nope' cannot be imported", "valid", "installed"],
        ),
        ({"_target_": "nopkg.Lamb"}, ["optimizer._target_='nopkg.Lamb' cannot be imported"]),
        ({"momentom": 0.5}, ["unknown key", "optimizer.momentom=0.5", "did you mean optimizer.momentum?"]),
        ({"momentum": -1.0}, ["optimizer._target_=torch.optim.SGD refused", "momentum=-1.0", "Invalid momentum"]),
        ({"_partial_": False}, ["optimizer._partial_=False is invalid", "valid: true"]),
        ({"name": None}, ["optimizer.name=None is invalid", "valid"]),
        ({"lr": 0}, ["optimizer.lr=0 is invalid", "positive"]),
    ],
)
def test_a_bad_target_or_argument_is_one_config_error(change, fragments):
    with pytest.raises(ConfigError) as err:
        build_optimizer(_ParamList([torch.nn.Parameter(torch.ones(2))]), {**SGD, **change})
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


def test_one_bias_correction_formula_for_the_factor_and_the_diagnostics():
    """optim/adam.py moment_debias is the formula the factor and the diagnostics' update sizes read."""
    from bertlab.callbacks.diagnostics import bias_correction_in_force
    from bertlab.optim.adam import moment_debias

    betas = (0.9, 0.999)
    assert moment_debias(betas, 1) == (1 - 0.9, 1 - 0.999)
    c1, c2 = bias_correction_in_force({"betas": betas}, 3.0)
    first, second = moment_debias(betas, 3.0)
    assert (c1, c2) == (1 / first, 1 / math.sqrt(second))
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], betas=betas)
    assert bias_correction_factor(optimizer) == math.sqrt(moment_debias(betas, 1.0)[1]) / moment_debias(betas, 1.0)[0]
