"""Parameter groups on real HF encoders: weight-decay membership and layer-wise LR decay."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

from bertlab.core.errors import ConfigError
from bertlab.optim.param_groups import param_groups

LR, WD = 2e-5, 0.01


@pytest.fixture(scope="module")
def bert(tiny_bert_dir):
    return AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)


def group_of(groups):
    """Parameter id -> the one group holding it (fails on a parameter held twice)."""
    owner = {}
    for g in groups:
        for p in g["params"]:
            assert id(p) not in owner, f"parameter in both {owner[id(p)]['name']} and {g['name']}"
            owner[id(p)] = g
    return owner


def expected_no_decay(name):
    return name.endswith(".bias") or name.endswith("LayerNorm.weight")


def test_decay_membership_and_every_param_once(bert):
    groups = param_groups(bert, LR, WD)
    assert [g["name"] for g in groups] == ["all/decay", "all/no_decay"]
    owner = group_of(groups)
    names = dict(bert.named_parameters())
    assert len(owner) == len(names) == sum(len(g["params"]) for g in groups)
    for name, p in names.items():
        g = owner[id(p)]
        assert g["name"] == ("all/no_decay" if expected_no_decay(name) else "all/decay"), name
        assert g["weight_decay"] == (0.0 if expected_no_decay(name) else WD)
        assert g["lr"] == LR
    assert any("LayerNorm.weight" in n for n in names)  # the rule was actually exercised


def expected_depth(name, num_layers):
    """(group depth, power of d) written from the paper's description."""
    if name.startswith("classifier.") or name.startswith("bert.pooler."):
        return "head", 0
    if name.startswith("bert.embeddings."):
        return "embeddings", num_layers + 1
    i = int(name.split(".")[3])  # bert.encoder.layer.{i}.
    return f"layer_{i}", num_layers - i


@pytest.mark.parametrize("d", [0.9, 0.5])
def test_layerwise_lr_decay(bert, d):
    num_layers = bert.config.num_hidden_layers
    groups = param_groups(bert, LR, WD, llrd=d)
    owner = group_of(groups)
    names = dict(bert.named_parameters())
    assert len(owner) == len(names)
    for name, p in names.items():
        depth, k = expected_depth(name, num_layers)
        g = owner[id(p)]
        assert g["name"] == f"{depth}/{'no_decay' if expected_no_decay(name) else 'decay'}", name
        assert g["lr"] == pytest.approx(LR * d**k, rel=1e-12), name
        assert g["weight_decay"] == (0.0 if expected_no_decay(name) else WD)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["embeddings/decay"] == pytest.approx(LR * d ** (num_layers + 1))
    assert lrs["layer_1/decay"] == pytest.approx(LR * d) and lrs["layer_0/no_decay"] == pytest.approx(LR * d**2)
    # Output first, embeddings last: the order the lead logs them in.
    assert [g["name"].split("/")[0] for g in groups][::2] == ["head", "layer_1", "layer_0", "embeddings"]


def test_frozen_parameters_are_left_out(bert):
    frozen = list(bert.bert.embeddings.parameters())
    for p in frozen:
        p.requires_grad_(False)
    try:
        owner = group_of(param_groups(bert, LR, WD, llrd=0.9))
        assert not any(id(p) in owner for p in frozen)
        assert len(owner) == sum(p.requires_grad for p in bert.parameters())
        assert all(not g["name"].startswith("embeddings") for g in owner.values())
    finally:
        for p in frozen:
            p.requires_grad_(True)


def test_roberta_naming_is_detected():
    config = RobertaConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        num_labels=3,
    )
    model = RobertaForSequenceClassification(config)
    owner = group_of(param_groups(model, LR, WD, llrd=0.8))
    named = dict(model.named_parameters())
    assert owner[id(named["classifier.out_proj.weight"])]["name"] == "head/decay"
    assert owner[id(named["roberta.encoder.layer.2.output.dense.weight"])]["lr"] == pytest.approx(LR * 0.8)
    assert owner[id(named["roberta.encoder.layer.0.output.LayerNorm.weight"])]["name"] == "layer_0/no_decay"
    assert owner[id(named["roberta.embeddings.word_embeddings.weight"])]["lr"] == pytest.approx(LR * 0.8**4)


@pytest.mark.parametrize("llrd", [0.0, -0.5, 1.5, "0.9"])
def test_llrd_out_of_range(bert, llrd):
    with pytest.raises(ConfigError, match=rf"llrd={llrd!r}.*valid"):
        param_groups(bert, LR, WD, llrd=llrd)


def test_llrd_needs_encoder_layers():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(model, LR, WD)  # fine without LLRD
    # The norm is found by its class, though its weight is called just "1.weight".
    assert decay["params"] == [model[0].weight]
    assert {id(p) for p in no_decay["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias)}
    with pytest.raises(ConfigError, match=r"llrd=0.9 needs the model's encoder blocks.*Sequential.*llrd=1"):
        param_groups(model, LR, WD, llrd=0.9)
