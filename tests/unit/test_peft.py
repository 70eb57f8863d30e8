"""peft=: what LoRA, IA3, prefix tuning and BitFit train, per encoder family; their layers against
the papers' formulas and peft's own forward; save and reload; the head's lr; gradient
checkpointing; and every refusal's message. In-process, on the tiny random models (2 layers,
hidden 32) of tests/conftest.py.

The expected names are written from each family's parameter names, independently of
model/targets.py and model/anatomy.py.
"""

import re

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoConfig

from bertlab.core.errors import ConfigError, ModelError
from bertlab.methods.peft_tuning import apply_peft, check_peft, check_peft_model, parameter_counts
from bertlab.model.anatomy import anatomy, skeleton
from bertlab.optim.param_groups import param_groups
from tests.helpers.installed import needs

pytestmark = needs("peft")

PEFT_FAMILIES = ("bert", "roberta", "distilbert", "electra", "deberta-v2")
# family -> (block prefix with {i}, query, key, value, feed-forward output (relative to a block),
#            the head's parameter prefixes)
NAMES = {
    "bert": (
        "bert.encoder.layer.{i}.",
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "output.dense",
        ("classifier.",),
    ),
    "roberta": (
        "roberta.encoder.layer.{i}.",
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "output.dense",
        ("classifier.",),
    ),
    "distilbert": (
        "distilbert.transformer.layer.{i}.",
        "attention.q_lin",
        "attention.k_lin",
        "attention.v_lin",
        "ffn.lin2",
        ("pre_classifier.", "classifier."),
    ),
    "electra": (
        "electra.encoder.layer.{i}.",
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "output.dense",
        ("classifier.",),
    ),
    # DeBERTa's pooler sits beside the base and is new: it trains with the head
    "deberta-v2": (
        "deberta.encoder.layer.{i}.",
        "attention.self.query_proj",
        "attention.self.key_proj",
        "attention.self.value_proj",
        "output.dense",
        ("pooler.", "classifier."),
    ),
}
LORA = {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "targets": "query_value"}
IA3 = {"name": "ia3"}
PREFIX = {"name": "prefix", "num_virtual_tokens": 5, "projection": False}
BITFIT = {"name": "bitfit"}


def peft_cfg(**keys):
    return OmegaConf.create(keys)


def plain_name(name: str) -> str:
    """A parameter's name in the unwrapped classifier: without peft's wrapper prefix and with the
    trained copy of a modules_to_save module in the module's place."""
    name = re.sub(r"^base_model\.(model\.)?", "", name)
    return name.replace(".modules_to_save.default.", ".")


def trainable(model) -> set[str]:
    return {plain_name(n) for n, p in model.named_parameters() if p.requires_grad}


def head_names(family, model) -> set[str]:
    heads = NAMES[family][5]
    return {n for n, _ in model.named_parameters() if n.startswith(heads)}


def family_model(tiny_family_dirs, family):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_family_dirs[family]), num_labels=3)
    model.head_origin = "new classifier head (3 labels)"
    return model


def batch(model, labels=True):
    torch.manual_seed(1)
    ids = torch.randint(5, 90, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    out = {"input_ids": ids, "attention_mask": mask}
    if labels:
        out["labels"] = torch.tensor([0, 1, 2])
    return out


def numel(model, names: set[str]) -> int:
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in names)


@pytest.mark.parametrize("family", PEFT_FAMILIES)
def test_lora_trains_the_query_and_value_adapters_and_the_head(tiny_family_dirs, family):
    base = family_model(tiny_family_dirs, family)
    head = head_names(family, base)
    full, head_size = sum(p.numel() for p in base.parameters()), numel(base, head)
    model = apply_peft(base, peft_cfg(**LORA))
    block, query, _, value, _, _ = NAMES[family]
    layers = base.config.num_hidden_layers if family != "distilbert" else base.config.n_layers
    adapters = {
        f"{block.format(i=i)}{proj}.lora_{ab}.default.weight"
        for i in range(layers)
        for proj in (query, value)
        for ab in "AB"
    }
    assert trainable(model) == adapters | head
    hidden = base.config.hidden_size if family != "distilbert" else base.config.dim
    adapters = layers * 2 * 4 * (hidden + hidden)  # rank 4: A is 4 x in, B is out x 4
    # the total: the classifier's own parameters and the adapters, peft's frozen head copy not counted
    assert parameter_counts(model) == {"trainable": adapters + head_size, "total": full + adapters}
    model(**batch(model)).loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("family", PEFT_FAMILIES)
def test_ia3_scales_keys_values_and_the_feed_forward_output(tiny_family_dirs, family):
    base = family_model(tiny_family_dirs, family)
    head = head_names(family, base)
    head_size = numel(base, head)
    model = apply_peft(base, peft_cfg(**IA3))
    block, _, key, value, ffn, _ = NAMES[family]
    layers = base.config.num_hidden_layers if family != "distilbert" else base.config.n_layers
    vectors = {f"{block.format(i=i)}{proj}.ia3_l.default" for i in range(layers) for proj in (key, value, ffn)}
    assert trainable(model) == vectors | head
    hidden = base.config.hidden_size if family != "distilbert" else base.config.dim
    inner = base.config.intermediate_size if family != "distilbert" else base.config.hidden_dim
    # l_k, l_v: one scale per output channel; l_ff: one per intermediate channel (the FFN output's input)
    assert parameter_counts(model)["trainable"] == layers * (2 * hidden + inner) + head_size


@pytest.mark.parametrize("family", PEFT_FAMILIES)
def test_bitfit_trains_every_bias_and_the_head_only(tiny_family_dirs, family):
    base = family_model(tiny_family_dirs, family)
    head = head_names(family, base)
    biases = {n for n, _ in base.named_parameters() if n.endswith(".bias")}
    model = apply_peft(base, peft_cfg(**BITFIT))
    assert model is base  # frozen in place: nothing is added
    assert trainable(model) == biases | head
    assert parameter_counts(model) == {
        "trainable": numel(base, biases | head),
        "total": sum(p.numel() for p in base.parameters()),
    }


def test_the_total_counts_each_parameter_the_forward_uses_once(tiny_family_dirs):
    full = family_model(tiny_family_dirs, "bert")
    total = sum(p.numel() for p in full.parameters())
    model = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**LORA))
    adapters = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert parameter_counts(model)["total"] == total + adapters
    assert parameter_counts(full) == {"trainable": total, "total": total}


@pytest.mark.parametrize("family", ("bert", "roberta", "electra"))
def test_prefix_tuning_trains_the_prefix_and_the_head(tiny_family_dirs, family):
    base = family_model(tiny_family_dirs, family)
    head = head_names(family, base)
    head_size = numel(base, head)
    config = base.config
    model = apply_peft(base, peft_cfg(**PREFIX))
    assert trainable(model) == {"prompt_encoder.default.embedding.weight"} | head
    # 5 virtual tokens x (a key and a value per layer) x hidden
    prefix = 5 * 2 * config.num_hidden_layers * config.hidden_size
    assert parameter_counts(model)["trainable"] == prefix + head_size


@pytest.mark.parametrize("family", ("bert", "roberta", "electra"))
def test_the_prefix_reaches_the_family_head_and_padding_changes_nothing(tiny_family_dirs, family):
    model = apply_peft(family_model(tiny_family_dirs, family), peft_cfg(**PREFIX)).eval()
    inputs = batch(model, labels=False)
    with torch.no_grad():
        logits = model(**inputs).logits
        plain = model.base_model(**inputs).logits  # the same classifier without the prefix
        # padding one more column: the prefix's attention mask and positions must not see it
        padded = {k: torch.cat([v, torch.zeros_like(v[:, :2])], 1) for k, v in inputs.items()}
        assert torch.allclose(model(**padded).logits, logits, atol=1e-5)
        model.prompt_encoder.default.embedding.weight.mul_(3)
        scaled = model(**inputs).logits
    assert not torch.allclose(logits, plain, atol=1e-4)
    assert not torch.allclose(logits, scaled, atol=1e-4)


def test_a_lora_layer_is_w_x_plus_alpha_over_r_b_a_x(tiny_family_dirs):
    model = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**LORA)).eval()
    layer = model.get_submodule("base_model.model.bert.encoder.layer.1.attention.self.value")
    torch.manual_seed(2)
    with torch.no_grad():
        layer.lora_B.default.weight.normal_()  # B starts at zero: make the update visible
        x = torch.randn(4, 32)
        a, b = layer.lora_A.default.weight, layer.lora_B.default.weight
        w, bias = layer.base_layer.weight, layer.base_layer.bias
        assert torch.allclose(layer(x), x @ w.T + bias + (8 / 4) * (x @ a.T @ b.T), atol=1e-5)


def test_our_lora_on_bert_is_peft_own_default_lora(tiny_family_dirs):
    """peft's default LoRA targets for BERT are query and value: the same adapters, the same logits."""
    import peft

    ours = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**LORA)).eval()
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, modules_to_save=["classifier"])
    theirs = peft.get_peft_model(family_model(tiny_family_dirs, "bert"), config).eval()
    torch.manual_seed(3)
    with torch.no_grad():
        for n, p in ours.named_parameters():
            if "lora_B" in n:
                p.normal_()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and not [k for k in missing if "lora_" in k]
    inputs = batch(ours, labels=False)
    with torch.no_grad():
        assert torch.allclose(ours(**inputs).logits, theirs(**inputs).logits, atol=1e-6)
        with ours.disable_adapter():  # the same classifier without the update: the B we drew shows
            assert not torch.allclose(ours(**inputs).logits, theirs(**inputs).logits, atol=1e-4)


def test_an_ia3_layer_scales_the_output_or_the_feed_forward_input(tiny_family_dirs):
    model = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**IA3)).eval()
    key = model.get_submodule("base_model.model.bert.encoder.layer.0.attention.self.key")
    ffn = model.get_submodule("base_model.model.bert.encoder.layer.0.output.dense")
    torch.manual_seed(4)
    with torch.no_grad():
        for layer in (key, ffn):
            layer.ia3_l.default.uniform_(0.5, 1.5)
        x, h = torch.randn(4, 32), torch.randn(4, ffn.in_features)
        lk, lff = key.ia3_l.default.flatten(), ffn.ia3_l.default.flatten()
        # (IA)^3: l_k * (W_k x + b) for keys and values; W_2 (l_ff * h) + b for the feed-forward
        assert torch.allclose(key(x), lk * (x @ key.base_layer.weight.T + key.base_layer.bias), atol=1e-5)
        assert torch.allclose(ffn(h), (lff * h) @ ffn.base_layer.weight.T + ffn.base_layer.bias, atol=1e-5)


def test_lora_targets_attention_all_and_a_list(tiny_family_dirs):
    cases = {
        "attention": {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"},
        "all": {
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "intermediate.dense",
            "output.dense",
        },
        ("output.dense",): {"output.dense"},
    }
    for targets, expected in cases.items():
        cfg = {**LORA, "targets": list(targets) if isinstance(targets, tuple) else targets}
        model = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**cfg))
        adapted = {
            re.sub(r"^bert\.encoder\.layer\.\d+\.", "", plain_name(n)).rsplit(".lora_", 1)[0]
            for n in trainable(model)
            if "lora_" in n
        }
        assert adapted == expected, targets
        # never outside the blocks: the pooler's and the head's `dense` are not adapted
        assert not [n for n in trainable(model) if "lora_" in n and ".encoder.layer." not in n]


def test_a_redrawn_pooler_trains_with_the_head(tiny_family_dirs):
    model = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**BITFIT), pooler_redrawn=True)
    assert {"bert.pooler.dense.weight", "bert.pooler.dense.bias"} <= trainable(model)
    kept = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**BITFIT))
    assert "bert.pooler.dense.weight" not in trainable(kept)  # a pretrained pooler stays frozen


def test_llrd_gives_an_adapter_its_block_lr_and_head_lr_mult_the_head(tiny_family_dirs):
    model = apply_peft(family_model(tiny_family_dirs, "bert"), peft_cfg(**LORA))
    groups = param_groups(model, lr=1.0, weight_decay=0.01, llrd=0.5, head_lr_mult=10)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    # 2 blocks: layer_1 at 0.5, layer_0 at 0.25; the head at 10
    assert lr_of[id(named["base_model.model.bert.encoder.layer.1.attention.self.query.lora_A.default.weight"])] == 0.5
    assert lr_of[id(named["base_model.model.bert.encoder.layer.0.attention.self.value.lora_B.default.weight"])] == 0.25
    assert lr_of[id(named["base_model.model.classifier.modules_to_save.default.weight"])] == 10
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())


def test_head_lr_mult_without_llrd(tiny_family_dirs):
    model = family_model(tiny_family_dirs, "roberta")
    groups = {g["name"]: g for g in param_groups(model, lr=2e-5, weight_decay=0.01, head_lr_mult=10)}
    assert {g["lr"] for name, g in groups.items() if name.startswith("head/")} == {2e-4}
    assert {g["lr"] for name, g in groups.items() if name.startswith("all/")} == {2e-5}
    heads = {id(p) for name, g in groups.items() if name.startswith("head/") for p in g["params"]}
    assert heads == {id(p) for n, p in model.named_parameters() if n.startswith("classifier.")}
    plain = param_groups(model, lr=2e-5, weight_decay=0.01)
    assert [g["name"] for g in plain] == ["all/decay", "all/no_decay"]


def test_head_lr_mult_is_checked(compose_train):
    from bertlab.run.checks import check_config

    for bad in ("0", "-1", "true", "abc"):
        with pytest.raises(
            ConfigError, match=rf"(?i)optimizer.head_lr_mult='?{bad}'? is invalid; valid: a positive number"
        ):
            check_config(compose_train("model=tiny", f"optimizer.head_lr_mult={bad}"))
    check_config(compose_train("model=tiny", "optimizer.head_lr_mult=10"))


def test_gradient_checkpointing_gives_the_same_gradients(tiny_family_dirs):
    from bertlab.model.gradient_checkpointing import enable_gradient_checkpointing

    grads = []
    for checkpointing in (False, True):
        base = family_model(tiny_family_dirs, "bert")
        if checkpointing:
            enable_gradient_checkpointing(base)
        model = apply_peft(base, peft_cfg(**LORA))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.fill_(0.1)
        model.train()
        torch.manual_seed(5)  # the same dropout masks: torch restores the RNG state in the recomputation
        model(**batch(model)).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name
    assert any(g.abs().sum() > 0 for n, g in grads[1].items() if "lora_A" in n)


# ---- refusals: one message naming the key, the value and the fix ----


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["peft=lora", "reinit=1"], r"reinit=1 with peft=lora: .* would stay random\. Use reinit=0"),
        (["peft=bitfit", "mixout=0.1"], r"mixout=0.1 with peft=bitfit: .*Use mixout=0, or peft=none"),
        (["peft=ia3", "prior_wd=0.01"], r"prior_wd=0.01 with peft=ia3: .*it would do nothing"),
        (["peft=prefix", "llrd=0.9"], r"llrd=0.9 with peft=prefix: .*Use llrd=1.0"),
        (["peft=prefix", "head=mean"], r"head=mean with peft=prefix: .*use head=pooler"),
        (["peft=prefix", "task=conll2003"], r"peft=prefix with task.problem=token_classification"),
        (["peft=lora", "peft.r=0"], r"peft.r=0 is invalid: LoRA's rank must be an integer >= 1"),
        (["peft=lora", "peft.alpha=-1"], r"peft.alpha=-1 is invalid"),
        (["peft=lora", "peft.dropout=1.0"], r"peft.dropout=1.0 is invalid: it must be in \[0, 1\)"),
        (["peft=lora", "peft.targets=qv"], r"peft.targets=qv is invalid; valid: query_value, attention, all"),
        (["peft=prefix", "peft.num_virtual_tokens=0"], r"peft.num_virtual_tokens=0 is invalid"),
        (["peft=prefix", "peft.projection=yes"], r"peft.projection=yes is invalid; valid: true, false"),
        (["trainer.gradient_checkpointing=yes"], r"trainer.gradient_checkpointing=yes is invalid; valid: true, false"),
    ],
)
def test_what_cannot_apply_is_refused_before_anything_loads(compose_train, overrides, message):
    from bertlab.run.checks import check_config

    with pytest.raises(ConfigError, match=message):
        check_config(compose_train("model=tiny", *overrides))


def test_an_unknown_peft_option_is_refused():
    cfg = OmegaConf.create({"peft": {"name": "adapter"}})
    with pytest.raises(ConfigError, match=r"peft=adapter is unknown; valid: none, lora, ia3, prefix, bitfit"):
        check_peft(cfg)


def test_reinit_pooler_alone_is_allowed_with_peft(compose_train):
    from bertlab.run.checks import check_config

    check_config(compose_train("model=tiny", "peft=lora", "reinit_pooler=true"))


def structure(tiny_family_dirs, family):
    return skeleton(AutoConfig.from_pretrained(str(tiny_family_dirs[family]), num_labels=2))


def test_targets_that_are_no_linear_of_a_block_are_refused(tiny_family_dirs):
    p = peft_cfg(**{**LORA, "targets": ["attention.self.query", "attention.self.qkv"]})
    with pytest.raises(ConfigError, match=r"attention.self.qkv is not a Linear of a bert block; its Linears: .*query"):
        check_peft_model(p, structure(tiny_family_dirs, "bert"), 128)


@pytest.mark.parametrize("family", ("distilbert", "deberta-v2"))
def test_prefix_on_a_family_without_a_cache_is_refused(tiny_family_dirs, family):
    with pytest.raises(ModelError, match=rf"peft=prefix: a {family} encoder takes no cache .*use peft=lora"):
        check_peft_model(peft_cfg(**PREFIX), structure(tiny_family_dirs, family), 32)


def test_a_prefix_past_the_model_positions_is_refused(tiny_family_dirs):
    model = structure(tiny_family_dirs, "bert")
    positions = model.config.max_position_embeddings
    with pytest.raises(ConfigError, match=rf"peft.num_virtual_tokens=5 with task.max_length={positions}:"):
        check_peft_model(peft_cfg(**PREFIX), model, positions)
    check_peft_model(peft_cfg(**PREFIX), model, positions - 5)


def test_anatomy_sees_through_the_wrapper(tiny_family_dirs):
    base = family_model(tiny_family_dirs, "deberta-v2")
    before = anatomy(base)
    model = apply_peft(base, peft_cfg(**LORA))
    after = anatomy(model)
    assert after.blocks == tuple(f"base_model.model.{b}" for b in before.blocks)
    assert after.pooler == "base_model.model.pooler"
    assert after.block_of(
        "base_model.model.deberta.encoder.layer.1.attention.self.query_proj.lora_A.default.weight"
    ) == ("layer_1")


# ---- save_weights=true: the adapter and the head, loaded back by evaluate / predict ----


@pytest.mark.parametrize(
    "overrides",
    [
        ["peft=lora"],
        ["peft=ia3"],
        ["peft=prefix"],
        ["peft=bitfit"],
        ["peft=lora", "head=layers_cnn"],
        ["peft=bitfit", "reinit_pooler=true"],
    ],
    ids=lambda o: "+".join(o),
)
def test_save_and_reload_give_the_trained_model(compose_train, tiny_bert_dir, tmp_path, overrides):
    from omegaconf import open_dict

    from bertlab.run.fit import build_model, load_trained_model
    from bertlab.run.saved_run import load_saved_config, save_run_model

    cfg = compose_train(f"model.name_or_path={tiny_bert_dir}", "debug=fast", *overrides)
    with open_dict(cfg):
        cfg.task.labels = ["a", "b", "c", "d", "e"]
    tokenizer, model = build_model(cfg, pair=False, num_labels=5)
    torch.manual_seed(6)
    with torch.no_grad():  # as if trained: every trainable parameter moved (LoRA's B off zero)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    save_run_model(cfg, model, tokenizer, tmp_path, base=str(tiny_bert_dir))
    saved = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert "peft.json" in saved and "model.safetensors" not in saved  # no full copy of the weights
    _, loaded = load_trained_model(load_saved_config(tmp_path / "model"), tmp_path / "model")
    inputs = tokenizer(["a short text", "and a second, longer one"], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**inputs).logits, model(**inputs).logits, atol=1e-5)
