import pytest
import torch
from transformers import AutoModelForSequenceClassification

from bertlab.core.errors import ConfigError
from bertlab.methods.reinit import reinit_top_layers


@pytest.fixture
def pretrained_pair(tiny_bert_dir):
    """Two identical classifiers: one to re-init, one as the untouched reference."""
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    return model, reference


def changed(model, reference):
    return {k for k, v in model.state_dict().items() if not torch.equal(v, reference[k])}


def test_reinit_touches_only_pooler_and_top_blocks(pretrained_pair):
    model, reference = pretrained_pair
    touched = reinit_top_layers(model, depth=1)
    assert touched == ["bert.pooler", "bert.encoder.layer.1"]
    diff = changed(model, reference)
    # every weight of the pooler and the top block is redrawn (LayerNorm weight 1/bias 0 and the zero
    # biases may coincide with the checkpoint's values, so only weights are required to differ)
    for name, _ in model.named_parameters():
        top = name.startswith(("bert.pooler.", "bert.encoder.layer.1."))
        if not top:
            assert name not in diff, f"{name} must stay bit-identical"
        elif name.endswith("weight") and "LayerNorm" not in name:
            assert name in diff, f"{name} should have been re-initialised"


def test_reinit_statistics_follow_bert_init(tiny_bert_dir):
    # a wider model so the sample std is a meaningful estimate
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert_dir), num_labels=2)
    model.config.initializer_range = 0.05
    torch.manual_seed(1)
    reinit_top_layers(model, depth=2)
    for name, param in model.named_parameters():
        if not name.startswith(("bert.pooler.", "bert.encoder.layer.")):
            continue
        if "LayerNorm.weight" in name:
            assert torch.all(param == 1.0), name
        elif name.endswith("bias"):
            assert torch.all(param == 0.0), name
        else:
            assert abs(param.mean().item()) < 0.01, name
            assert param.std().item() == pytest.approx(0.05, rel=0.15), name


def test_reinit_zero_changes_nothing_and_pooler_alone(pretrained_pair):
    model, reference = pretrained_pair
    assert reinit_top_layers(model, depth=0, reinit_pooler=False) == []
    assert changed(model, reference) == set()
    assert reinit_top_layers(model, depth=0, reinit_pooler=True) == ["bert.pooler"]
    assert changed(model, reference) == {"bert.pooler.dense.weight"} | (
        {"bert.pooler.dense.bias"} if reference["bert.pooler.dense.bias"].abs().sum() > 0 else set()
    )


@pytest.mark.parametrize("depth", [-1, 3])
def test_reinit_out_of_range_names_the_maximum(pretrained_pair, depth):
    model, _ = pretrained_pair
    with pytest.raises(ConfigError, match=rf"reinit={depth} .*between 0 and .*2 for this model"):
        reinit_top_layers(model, depth=depth)
