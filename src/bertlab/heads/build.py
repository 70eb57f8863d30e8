"""The `head` config group -> the run's classifier: the family's own HF head (`head=pooler`,
`_target_: null`) or the encoder + a head class named by `_target_` (heads/modules.py, or a
fork's own), checked with core/target.py's rules, so every mistake is one message naming the key."""

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig

from bertlab.core.errors import ConfigError
from bertlab.core.lines import say
from bertlab.core.target import INSTANTIATE_KEYS, call, locate, target_kwargs, with_target
from bertlab.heads.model import HEAD_WEIGHTS, HeadModel, drop_head_key
from bertlab.model.load import load_encoder, load_model, load_tokenizer

WHAT = "a head class taking the encoder's HF config first, e.g. bertlab.heads.modules.MeanHead"
# the model for check_head, before any model is known: deep enough for any head.layers
STAND_IN = dict(hidden_size=8, num_hidden_layers=1000, num_labels=2, initializer_range=0.02)


def head_config(head: Mapping) -> dict:
    """The head config as a plain dict with a `name` and a `_target_` (null: the family's own head)."""
    return with_target("head", head, builder_keys={"name"}, example="mean")


def is_family_head(cfg: dict) -> bool:
    return cfg.get("_target_") is None


def make_head(head: Mapping, config):
    """The head `head` describes, for the encoder whose HF config is `config`."""
    cfg = head_config(head)
    target = locate("head", cfg, WHAT)
    kwargs = target_kwargs("head", cfg, target, supplied={})
    return call("head", cfg, kwargs, config)


def check_head(head: Mapping, problem=None) -> None:
    """Every check of the head config that needs no model (the head built for a stand-in encoder).
    `problem`: the task's Problem (problems/problem.py); None: a sequence task's. The heads here read
    one vector per example, so they need a problem whose `sequence` is true."""
    cfg = head_config(head)
    if not is_family_head(cfg) and problem is not None and not problem.sequence:
        raise ConfigError(
            f"head={cfg['name']} reads one vector per example, for sequence tasks; task.problem={problem.name} "
            f"has its own head ({problem.outputs}): drop head= (the default, head=pooler)"
        )
    if is_family_head(cfg):
        extra = sorted(k for k in cfg if k not in (*INSTANTIATE_KEYS, "name"))
        if extra:
            raise ConfigError(
                f"head has key(s) {extra} that nothing reads: head.{cfg['name']} is the model's own HF head "
                "(head._target_ is null), which takes no keys; drop them or pick a head with a _target_"
            )
        return
    make_head(cfg, PretrainedConfig(**STAND_IN))


def load_classifier(
    head: Mapping, name_or_path: str, config, tokenizer=None, auto_class=AutoModelForSequenceClassification
):
    """Tokenizer and classifier in float32 and training mode, as `model.load.load_model`; with
    `head=pooler` exactly that (the family's AutoModelForSequenceClassification)."""
    cfg = head_config(head)
    drop_head_key(config)  # a saved head run used as the starting checkpoint names its old head
    if is_family_head(cfg):
        return load_model(name_or_path, config, tokenizer=tokenizer, auto_class=auto_class)
    module = make_head(cfg, config)  # before the weights: a bad head.layers fails in seconds
    encoder = load_encoder(name_or_path, config)
    model = HeadModel(encoder, module, cfg)
    model.head_origin = (
        f"new {cfg['name']} head ({config.num_labels} labels) on the encoder's hidden states; "
        "a pooler or classifier in the checkpoint is not used"
    )
    say(f"model: {model.head_origin}")
    model.train()
    return tokenizer if tokenizer is not None else load_tokenizer(name_or_path), model


def load_head_model(directory, auto_class=AutoModelForSequenceClassification) -> nn.Module:
    """A saved run's model (`<run_dir>/model`, `save_weights=true`), in eval mode: a HeadModel
    for a run with a head of bertlab.heads, else (head=pooler) the family's HF classifier.
    Its logits are those of the run's best weights (mixout's layers come back as plain Linears,
    which is what they are in eval mode)."""
    directory = Path(directory)
    config = AutoConfig.from_pretrained(directory)
    head_cfg = drop_head_key(config)
    if head_cfg is None:
        model = auto_class.from_pretrained(directory, dtype=torch.float32)
    else:
        encoder = load_encoder(str(directory), config)
        head = make_head(head_cfg, config)
        head.load_state_dict(load_file(directory / HEAD_WEIGHTS))
        model = HeadModel(encoder, head, head_cfg)
    return model.eval()
