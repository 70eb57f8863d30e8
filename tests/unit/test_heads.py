"""The `head` group: which layer the classifier reads (bertlab/heads), against hand computations,
today's model, padding, gradients, the methods (re-init, LLRD, mixout) and save / reload."""

import pytest
import torch
from torch import nn
from transformers import PretrainedConfig

from bertlab.core.errors import ConfigError
from bertlab.heads import modules
from bertlab.heads.build import check_head, load_classifier, load_head_model
from bertlab.heads.model import HeadModel
from bertlab.methods.mixout import MixLinear, apply_mixout
from bertlab.methods.reinit import reinit_top_layers
from bertlab.model.anatomy import anatomy, blocks_by_param
from bertlab.model.load import load_config, load_model
from bertlab.optim.param_groups import param_groups
from bertlab.run.checks import check_config
from tests.helpers.families import ENCODER_FAMILIES

HEADS = ("cls", "mean", "max", "concat_last4", "layers_cnn", "scalar_mix")
TEXTS = ["a short one", "a much longer sentence that needs a good deal of padding for the other one"]


def head_cfg(name: str, **keys) -> dict:
    # the packaged option by name; concat_last4 reads 2 layers of the 2-layer tiny models
    return {"name": name, **({"layers": 2} if name == "concat_last4" else {}), **keys}


def build(path, head: str, num_labels: int = 2, problem: str = "classification", seed: int = 0):
    config = load_config(str(path), num_labels, problem)
    torch.manual_seed(seed)
    return load_classifier(head_cfg(head), str(path), config)


def batch(tokenizer, texts=TEXTS):
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


# -- pooler: today's model ---------------------------------------------------------------------


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
def test_pooler_is_todays_model_bit_for_bit(tiny_family_dirs, family):
    path = str(tiny_family_dirs[family])
    torch.manual_seed(0)
    tokenizer, today = load_model(path, load_config(path, 3, "classification"))
    tokenizer, model = build(path, "pooler", num_labels=3)
    assert type(model) is type(today)
    assert model.state_dict().keys() == today.state_dict().keys()
    assert all(torch.equal(v, today.state_dict()[k]) for k, v in model.state_dict().items())
    today.eval(), model.eval()
    inputs = batch(tokenizer)
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, today(**inputs).logits)


def test_default_head_is_pooler(compose_train):
    cfg = compose_train()
    assert cfg.head.name == "pooler" and cfg.head._target_ is None
    check_config(cfg)


# -- the heads' maths ------------------------------------------------------------------------------


def stand_in(layers: int = 6, hidden: int = 8, labels: int = 3) -> PretrainedConfig:
    return PretrainedConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_labels=labels, initializer_range=0.02, hidden_dropout_prob=0.1
    )


def states(layers=6, batch_size=2, tokens=5, hidden=8, grad=False):
    torch.manual_seed(1)
    return tuple(torch.randn(batch_size, tokens, hidden, requires_grad=grad) for _ in range(layers + 1))


MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])


def linear_of(head, features):
    return features @ head.classifier.weight.T + head.classifier.bias


def test_each_head_against_a_hand_computation():
    config, hs = stand_in(), states()
    cls, mean, mx = modules.ClsHead(config).eval(), modules.MeanHead(config).eval(), modules.MaxHead(config).eval()
    top = hs[-1]
    torch.testing.assert_close(cls(hs, MASK), linear_of(cls, top[:, 0]))
    hand_mean = torch.stack([top[0, :3].mean(0), top[1].mean(0)])
    torch.testing.assert_close(mean(hs, MASK), linear_of(mean, hand_mean))
    hand_max = torch.stack([top[0, :3].max(0).values, top[1].max(0).values])
    torch.testing.assert_close(mx(hs, MASK), linear_of(mx, hand_max))

    concat = modules.ConcatLastHead(config, layers=4).eval()
    features = torch.cat([hs[6][:, 0], hs[5][:, 0], hs[4][:, 0], hs[3][:, 0]], dim=-1)
    torch.testing.assert_close(concat(hs, MASK), linear_of(concat, features))

    mix = modules.ScalarMixHead(config).eval()
    with torch.no_grad():
        mix.layer_weights.copy_(torch.arange(7.0))
        mix.gamma.fill_(0.5)
    w = torch.softmax(torch.arange(7.0), 0)
    mixed = 0.5 * sum(w[j] * hs[j] for j in range(7))
    torch.testing.assert_close(mix(hs, MASK), linear_of(mix, mixed[:, 0]))
    mix_mean = modules.ScalarMixHead(config, pool="mean").eval()
    even = sum(hs) / 7  # w = 0, gamma = 1 at the start: an even mix
    torch.testing.assert_close(mix_mean(hs, MASK), linear_of(mix_mean, modules.masked_mean(even, MASK)))

    cnn = modules.LayersCNNHead(config, channels=4, kernel_size=3).eval()
    stacked = torch.stack([h[:, 0] for h in hs[1:]], dim=1)  # (batch, layers, hidden)
    padded = nn.functional.pad(stacked, (0, 0, 1, 1))
    weight = cnn.conv.weight  # (channels, hidden, kernel)
    windows = torch.stack(
        [torch.einsum("bkh,chk->bc", padded[:, i : i + 3], weight) + cnn.conv.bias for i in range(6)], 1
    )
    torch.testing.assert_close(cnn(hs, MASK), linear_of(cnn, windows.relu().max(1).values))


def test_max_ignores_padding_even_when_padding_is_largest():
    hidden = torch.tensor([[[-3.0], [-2.0], [100.0]]])
    assert modules.masked_max(hidden, torch.tensor([[1, 1, 0]])).item() == -2.0
    assert modules.masked_mean(hidden, torch.tensor([[1, 1, 0]])).item() == -2.5


# which hidden states (0 = embeddings output, 6 = top layer) each head reads, on a 6-layer model
READS = {
    "cls": {6},
    "mean": {6},
    "max": {6},
    "concat_last4": {3, 4, 5, 6},
    "layers_cnn": {1, 2, 3, 4, 5, 6},
    "scalar_mix": {0, 1, 2, 3, 4, 5, 6},
}
CLASSES = {
    "cls": modules.ClsHead,
    "mean": modules.MeanHead,
    "max": modules.MaxHead,
    "concat_last4": modules.ConcatLastHead,
    "layers_cnn": modules.LayersCNNHead,
    "scalar_mix": modules.ScalarMixHead,
}


@pytest.mark.parametrize("name", HEADS)
def test_gradients_reach_every_layer_the_head_reads_and_no_other(name):
    hs = states(grad=True)
    head = CLASSES[name](stand_in())
    head(hs, MASK).pow(2).sum().backward()
    reached = {i for i, h in enumerate(hs) if h.grad is not None and h.grad.abs().sum() > 0}
    assert reached == READS[name]


@pytest.mark.parametrize("name", HEADS)
def test_on_a_model_every_block_and_head_parameter_gets_a_gradient(tiny_bert_dir, name):
    tokenizer, model = build(tiny_bert_dir, name)
    model(**batch(tokenizer), labels=torch.tensor([0, 1])).loss.backward()
    blocks = blocks_by_param(model)
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    # token_type row 1 is unused by one-text inputs; every other parameter learns
    assert [n for n in missing if "token_type" not in n] == []
    assert set(blocks.values()) == {"embeddings", "layer_0", "layer_1", "classifier"}  # no pooler: unused, not built


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
@pytest.mark.parametrize("name", ["mean", "max"])
def test_mean_and_max_give_an_example_the_same_output_alone_and_in_a_padded_batch(tiny_family_dirs, family, name):
    tokenizer, model = build(tiny_family_dirs[family], name)
    model.eval()
    with torch.no_grad():
        together = model(**batch(tokenizer)).logits
        alone = torch.cat([model(**batch(tokenizer, [t])).logits for t in TEXTS])
    assert batch(tokenizer)["attention_mask"].min() == 0  # the short text is padded
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


# -- the methods and the rest of the house -----------------------------------------------------------


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
@pytest.mark.parametrize("name", HEADS)
def test_every_head_is_the_head_for_llrd_reinit_and_mixout(tiny_family_dirs, family, name):
    tokenizer, model = build(tiny_family_dirs[family], name)
    assert isinstance(model, HeadModel)
    parts = anatomy(model)
    assert parts.pooler is None and parts.depth == (1 if family == "albert" else 2)
    head_names = {f"head.{n}" for n, _ in model.head.named_parameters()}
    assert {n for n, b in blocks_by_param(model).items() if b == "classifier"} == head_names
    groups = param_groups(model, 1e-3, 0.01, llrd=0.5)
    in_head = {id(p) for g in groups if g["name"].startswith("head/") for p in g["params"]}
    assert in_head == {id(p) for p in model.head.parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    touched = reinit_top_layers(model, 1)
    assert touched == [parts.blocks[-1]]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith(parts.blocks[-1] + ".") for n in changed)
    wrapped = apply_mixout(model, 0.1)
    assert wrapped and not any(isinstance(m, MixLinear) for m in model.head.modules())
    assert all(m.p == 0 for m in model.modules() if isinstance(m, nn.Dropout))  # the head's dropout too
    model.train()
    loss = model(**batch(tokenizer), labels=torch.tensor([0, 1])).loss
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("family", ENCODER_FAMILIES)
@pytest.mark.parametrize("name", ("pooler", *HEADS))
def test_save_and_reload_gives_the_same_logits(tiny_family_dirs, tmp_path, family, name):
    tokenizer, model = build(tiny_family_dirs[family], name)
    apply_mixout(model, 0.1)  # as a run with mixout saves it
    with torch.no_grad():  # weights a run would have moved
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    model.save_pretrained(tmp_path / "model")
    reloaded = load_head_model(tmp_path / "model")
    assert not reloaded.training and type(reloaded) is type(model)
    inputs = batch(tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_a_saved_head_run_as_the_next_runs_checkpoint_keeps_its_encoder_not_its_head_name(tiny_bert_dir, tmp_path):
    _, model = build(tiny_bert_dir, "mean")
    model.save_pretrained(tmp_path / "model")
    tokenizer, pooler = build(tmp_path / "model", "pooler")
    assert not hasattr(pooler.config, "bertlab_head")
    torch.testing.assert_close(
        pooler.bert.encoder.layer[0].output.dense.weight, model.bert.encoder.layer[0].output.dense.weight
    )
    pooler.save_pretrained(tmp_path / "pooler")
    assert type(load_head_model(tmp_path / "pooler")) is type(pooler)


@pytest.mark.parametrize("name", HEADS)
def test_regression_head_is_one_output_trained_on_mse(tiny_bert_dir, name):
    tokenizer, model = build(tiny_bert_dir, name, num_labels=1, problem="regression")
    model.eval()
    labels = torch.tensor([0.5, 3.0])
    out = model(**batch(tokenizer), labels=labels)
    assert out.logits.shape == (2, 1)
    torch.testing.assert_close(out.loss, nn.functional.mse_loss(out.logits.squeeze(-1), labels))


# -- config checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ({"name": "mean", "dropout": 1.5}, "head.dropout=1.5 is invalid"),
        ({"name": "concat_last4", "layers": 0}, "head.layers=0 is invalid"),
        ({"name": "scalar_mix", "pool": "last"}, "head.pool='last' is invalid; valid: cls, mean"),
        ({"name": "layers_cnn", "chanels": 8}, "did you mean head.channels"),
        ({"name": "pooler", "dropout": 0.2}, "head has key(s) ['dropout'] that nothing reads"),
        (
            {"name": "avg"},
            "head.name='avg' is unknown; valid: cls, concat_last4, layers_cnn, max, mean, pooler, scalar_mix",
        ),
        (
            {"name": "mine", "_target_": "bertlab.heads.modules.Nope"},
            "head._target_='bertlab.heads.modules.Nope' cannot",
        ),
    ],
)
def test_bad_head_settings_are_one_message(head, message):
    with pytest.raises(ConfigError) as err:
        check_head(head)
    assert message in str(err.value)


def test_head_layers_beyond_the_models_depth_fail_before_the_weights_load(tiny_bert_dir):
    config = load_config(str(tiny_bert_dir), 2, "classification")
    with pytest.raises(ConfigError, match=r"head.layers=4 is invalid for this model: it has 2 layers; valid: 1 to 2"):
        load_classifier({"name": "concat_last4"}, str(tiny_bert_dir), config)


def test_every_packaged_head_passes_the_config_check(compose_train):
    for name in ("pooler", *HEADS):
        cfg = compose_train(f"head={name}")
        assert cfg.head.name == name
        check_head(cfg.head)


def test_a_forks_head_class_by_target(tiny_bert_dir):
    config = load_config(str(tiny_bert_dir), 2, "classification")
    cfg = {"_target_": "bertlab.heads.modules.MeanHead", "_partial_": True, "name": "my_mean", "dropout": 0.0}
    tokenizer, model = load_classifier(cfg, str(tiny_bert_dir), config)
    assert model.head.dropout.p == 0.0 and "my_mean" in model.head_origin
    assert tokenizer.pad_token == "[PAD]"


def test_a_key_of_another_head_is_refused_by_the_key_check():
    from bertlab.config.keys import check_overrides
    from bertlab.core.paths import CONF_DIR

    with pytest.raises(ConfigError, match=r"It is a key of head=concat_last4, not of head=pooler"):
        check_overrides(["head.layers=2"], CONF_DIR)
    check_overrides(["head=concat_last4", "head.layers=2"], CONF_DIR)
