"""Mixout: identity at p = 0 and in eval mode, the mixing formula, targets as buffers, dropout off."""

import pytest
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from bertlab.core.errors import ConfigError
from bertlab.methods.mixout import MixLinear, apply_mixout, mix
from bertlab.methods.reinit import reinit_top_layers


@pytest.fixture
def model(tiny_bert_dir):
    torch.manual_seed(0)
    m = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=3)
    m.train()
    return m


def batch():
    g = torch.Generator().manual_seed(1)
    return {
        "input_ids": torch.randint(0, 1000, (4, 12), generator=g),
        "attention_mask": torch.ones(4, 12, dtype=torch.long),
    }


def test_p0_is_the_identity(model):
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    dropouts = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert apply_mixout(model, 0.0) == []
    assert not any(isinstance(m, MixLinear) for m in model.modules())
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == dropouts  # dropout untouched
    assert all(torch.equal(v, reference[k]) for k, v in model.state_dict().items())


def test_mixlinear_p0_and_eval_are_exactly_linear():
    torch.manual_seed(0)
    linear = nn.Linear(6, 5)
    x = torch.randn(3, 6)
    expected = linear(x)
    assert torch.equal(MixLinear.from_linear(linear, 0.0).train()(x), expected)
    mixed = MixLinear.from_linear(linear, 0.7)
    with torch.no_grad():
        mixed.weight.add_(1.0)  # move away from the target: eval must use W itself, not the target
    assert torch.equal(mixed.eval()(x), nn.functional.linear(x, mixed.weight, mixed.bias))


def test_mix_formula_per_input_unit_and_unbiased():
    torch.manual_seed(0)
    w, w0, p = torch.randn(5, 7), torch.randn(5, 7), 0.3
    for _ in range(20):
        out = mix(w, w0, p)
        kept = torch.isclose(out, w0 + (w - w0) / (1 - p), atol=1e-6)
        mixed_out = torch.isclose(out, w0, atol=1e-6)
        assert torch.all(kept | mixed_out)
        # one decision per input unit (column), shared by every output row, as the authors' code
        assert torch.all(kept == kept[:1]) and torch.all(mixed_out == mixed_out[:1])
    mean = torch.stack([mix(w, w0, p) for _ in range(20000)]).mean(0)
    torch.testing.assert_close(mean, w, atol=0.05, rtol=0)  # E[W_mix] = W


def test_gradient_is_exact():
    torch.manual_seed(0)
    linear = MixLinear.from_linear(nn.Linear(4, 3), 0.5).train()
    x = torch.randn(2, 4)
    torch.manual_seed(7)
    linear(x).sum().backward()
    torch.manual_seed(7)
    keep = torch.empty(1, 4).bernoulli_(0.5)
    # d out / d W = mask / (1 - p) times the plain Linear gradient (autograd; no lost 1/(1-p))
    expected = keep / 0.5 * (torch.ones(3, 2) @ x)
    torch.testing.assert_close(linear.weight.grad, expected)


def test_apply_wraps_pretrained_linears_only_and_zeroes_dropout(model):
    names_before = [n for n, _ in model.named_parameters()]
    params_before = [id(p) for p in model.parameters()]
    keys_before = list(model.state_dict())
    reinit_top_layers(model, 1)
    after_reinit = {n: p.detach().clone() for n, p in model.named_parameters()}
    wrapped = apply_mixout(model, 0.1)
    # every Linear of the encoder and pooler, not the new classifier
    expected = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith("bert.")]
    assert sorted(wrapped) == sorted(expected) and "bert.pooler.dense" in wrapped
    assert all(isinstance(model.get_submodule(n), MixLinear) for n in wrapped)
    assert type(model.classifier) is nn.Linear
    # same Parameters under the same names (optimizer groups, LLRD, save_pretrained unchanged)
    assert [n for n, _ in model.named_parameters()] == names_before
    assert [id(p) for p in model.parameters()] == params_before
    assert list(model.state_dict()) == keys_before  # targets are non-persistent buffers
    # targets = weights after re-init
    for n in wrapped:
        torch.testing.assert_close(model.get_submodule(n).target, after_reinit[f"{n}.weight"], rtol=0, atol=0)
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, nn.Dropout))
    assert model.config.hidden_dropout_prob == 0.0 and model.config.attention_probs_dropout_prob == 0.0


def test_targets_move_with_the_model(model):
    apply_mixout(model, 0.2)
    model.to(torch.float64)  # stands in for .to("cuda"): buffers follow the module
    targets = [m.target for m in model.modules() if isinstance(m, MixLinear)]
    assert targets and all(t.dtype == torch.float64 for t in targets)
    assert len(list(model.buffers())) >= len(targets)


def test_training_forward_changes_eval_forward_does_not(model):
    model.eval()
    reference = model(**batch()).logits
    apply_mixout(model, 0.5)
    with torch.no_grad():  # weights drift from the targets, as during training
        for m in model.modules():
            if isinstance(m, MixLinear):
                m.weight.add_(0.5 * torch.randn_like(m.weight))
    model.eval()
    eval_out = model(**batch()).logits
    assert not torch.allclose(eval_out, reference)  # eval uses the current W, not the target
    model.train()
    torch.manual_seed(0)
    a = model(**batch()).logits
    torch.manual_seed(1)
    b = model(**batch()).logits
    assert not torch.allclose(a, b)  # a fresh mask per forward pass


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, True])
def test_bad_p(model, p):
    with pytest.raises(ConfigError, match="mixout="):
        apply_mixout(model, p)
