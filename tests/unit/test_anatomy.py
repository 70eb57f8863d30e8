"""One anatomy for every encoder family: the blocks re-init, LLRD, pre-trained WD, mixout and the
diagnostics find in tiny random BERT, RoBERTa, DistilBERT, ELECTRA, ALBERT and DeBERTa-v2 models.

The expectations are written from each family's parameter names, independently of anatomy.py.
"""

import re

import pytest
import torch
from transformers import AutoConfig

from bertlab.core.errors import ConfigError, ModelError
from bertlab.methods.mixout import MixLinear, apply_mixout
from bertlab.methods.reinit import reinit_top_layers
from bertlab.model.anatomy import anatomy, blocks_by_param, check_family, skeleton
from bertlab.optim.param_groups import param_groups

# family -> (regex of a block parameter, with the block index as group 1; pooler prefix or None;
#            prefix of the pretrained base; number of blocks in the tiny model)
FAMILY_NAMES = {
    "bert": (r"^bert\.encoder\.layer\.(\d+)\.", "bert.pooler.", "bert.", 2),
    "roberta": (r"^roberta\.encoder\.layer\.(\d+)\.", None, "roberta.", 2),
    "distilbert": (r"^distilbert\.transformer\.layer\.(\d+)\.", None, "distilbert.", 2),
    "electra": (r"^electra\.encoder\.layer\.(\d+)\.", None, "electra.", 2),
    # one layer group shared by both layers: one block
    "albert": (r"^albert\.encoder\.albert_layer_groups\.(\d+)\.", "albert.pooler.", "albert.", 1),
    # DeBERTa's pooler sits beside the base model
    "deberta-v2": (r"^deberta\.encoder\.layer\.(\d+)\.", "pooler.", "deberta.", 2),
}


def expected_block(family: str, name: str) -> str:
    block, pooler, base, _ = FAMILY_NAMES[family]
    if match := re.match(block, name):
        return f"layer_{match.group(1)}"
    if pooler and name.startswith(pooler):
        return "pooler"
    return "embeddings" if name.startswith(base) else "classifier"


def test_block_of_every_parameter(tiny_family):
    family, model = tiny_family
    block_of = blocks_by_param(model)
    assert block_of == {n: expected_block(family, n) for n, _ in model.named_parameters()}
    depth = FAMILY_NAMES[family][3]
    assert {b for b in block_of.values() if b.startswith("layer_")} == {f"layer_{i}" for i in range(depth)}
    assert {"embeddings", "classifier"} <= set(block_of.values())


def test_the_skeleton_has_the_loaded_models_anatomy(tiny_family, tiny_family_dirs):
    family, model = tiny_family
    config = AutoConfig.from_pretrained(str(tiny_family_dirs[family]), num_labels=2)
    assert anatomy(skeleton(config)) == anatomy(model)


def changed(model, reference):
    return {n for n, p in model.named_parameters() if not torch.equal(p, reference[n])}


@pytest.mark.parametrize("depth", [0, 1])
def test_reinit_touches_exactly_the_top_blocks_and_the_pooler(tiny_family, depth):
    family, model = tiny_family
    num_blocks = FAMILY_NAMES[family][3]
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    reinit_top_layers(model, depth, reinit_pooler=True)
    top = {f"layer_{i}" for i in range(num_blocks - depth, num_blocks)} | {"pooler"}
    should = {n for n in reference if expected_block(family, n) in top}
    # LayerNorm 1/0 and zero biases may equal the saved values: every weight matrix must be redrawn
    redrawn = {n for n in should if n.endswith("weight") and reference[n].dim() == 2}
    assert redrawn <= changed(model, reference) <= should, family
    if family in ("bert", "albert", "deberta-v2"):
        assert any(expected_block(family, n) == "pooler" for n in redrawn)


def test_reinit_depth_is_the_number_of_blocks(tiny_family):
    family, model = tiny_family
    too_deep = FAMILY_NAMES[family][3] + 1
    with pytest.raises(ConfigError, match=rf"reinit={too_deep} is invalid.*{too_deep - 1} for this model"):
        reinit_top_layers(model, too_deep)


def test_llrd_gives_each_block_its_lr(tiny_family):
    family, model = tiny_family
    lr, d = 1e-3, 0.5
    num_blocks = FAMILY_NAMES[family][3]
    owner = {id(p): g for g in param_groups(model, lr, 0.01, llrd=d) for p in g["params"]}
    for name, p in model.named_parameters():
        block = expected_block(family, name)
        power = {"pooler": 0, "classifier": 0, "embeddings": num_blocks + 1}.get(block)
        if power is None:
            power = num_blocks - int(block.split("_")[1])
        assert owner[id(p)]["lr"] == pytest.approx(lr * d**power, rel=1e-12), (family, name)
        assert owner[id(p)]["name"].split("/")[0] == ("head" if block in ("pooler", "classifier") else block)


def test_mixout_wraps_every_linear_of_the_base_and_none_of_the_head(tiny_family):
    family, model = tiny_family
    base = FAMILY_NAMES[family][2]
    linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    wrapped = set(apply_mixout(model, 0.1))
    assert wrapped == {n for n in linears if n.startswith(base)} and wrapped
    for name, module in model.named_modules():
        if name in linears:
            assert isinstance(module, MixLinear) == (name in wrapped), name


def test_decoders_and_encoder_decoders_are_refused(tiny_family_dirs):
    config = AutoConfig.from_pretrained(str(tiny_family_dirs["gpt2"]))
    with pytest.raises(ModelError, match=r"is a gpt2 model, not a bidirectional encoder.*bert, roberta"):
        check_family(config, "gpt2")
    t5 = AutoConfig.for_model("t5")
    with pytest.raises(ModelError, match=r"is a t5 model, an encoder-decoder"):
        check_family(t5, "t5")


def test_an_encoder_without_one_list_of_blocks_is_refused():
    # XLM keeps its attention and feed-forward layers in parallel lists: no guessing
    config = AutoConfig.for_model("xlm", vocab_size=50, emb_dim=16, n_layers=2, n_heads=2)
    with pytest.raises(ModelError, match=r"one list of modules, but it has 4 .*not supported"):
        anatomy(skeleton(config))
