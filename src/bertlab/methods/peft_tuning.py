"""Parameter-efficient fine-tuning (`peft=`): LoRA, IA3 and prefix tuning from huggingface/peft, and
BitFit (methods/bitfit.py, ours); what they let train, how they compose with the rest, and how a
run's adapter is saved and loaded back.

What trains: the method's own parameters and, always, the task head (peft's `modules_to_save`):
every module of the classifier outside the pretrained base (BERT's `classifier`, RoBERTa's
dense + out_proj, DistilBERT's pre_classifier + classifier, a head of bertlab.heads), and the
pooler where it is new (DeBERTa's, beside the base) or re-drawn (`reinit_pooler=true`). A
pretrained pooler (BERT's) stays frozen, as peft's own sequence classifier leaves it.

The model: peft's wrapper (`get_peft_model`), which holds the transformers classifier at
`base_model.model` with the adapters inside it; model/anatomy.py sees through it, so LLRD gives
an adapter of block i block i's lr, and the diagnostics report it by block. The task types: prefix
tuning needs peft's sequence classifier (it feeds the prefix in as past keys and values); LoRA
and IA3 use peft's plain wrapper, which calls the model as it is, whatever the task problem
(its own AutoModelFor* head) or the head (heads/).

Composition (check_peft): `reinit>0` is refused (the re-drawn blocks would stay frozen at random
values), `mixout` and `prior_wd` too (both act on the pretrained weights, which are frozen);
prefix tuning needs the family's own head on a sequence task and takes no LLRD (its prefix is
one tensor for every layer). `pretrain=` pre-trains the full model, then the adapter trains on
it; `distill=self` trains the teacher and the student each with the same method.
"""

import inspect
import json
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file, save_file
from torch import nn

from bertlab.core.errors import ConfigError, ModelError
from bertlab.core.values import check_count, check_flag, check_positive, check_probability
from bertlab.methods.bitfit import apply_bitfit
from bertlab.model.anatomy import anatomy
from bertlab.model.targets import TARGET_SETS, blocks_regex, ia3_targets, target_names
from bertlab.problems.registry import problem_of

PEFT_OPTIONS = ("none", "lora", "ia3", "prefix", "bitfit")
FROM_PEFT = ("lora", "ia3", "prefix")  # the peft package's; bitfit is ours
METHOD_FILE = "peft.json"  # in a saved run's model/: the method and where its frozen weights come from
BITFIT_WEIGHTS = "bitfit.safetensors"  # BitFit's trained parameters (the biases and the head)
# peft's copy of each modules_to_save module as it was loaded: frozen, and unused by the forward
PEFT_FROZEN_COPY = ".original_module."


NONE = OmegaConf.create({"name": "none"})


def peft_method(cfg: DictConfig):
    """The run's `peft` config (a saved run of an older bertlab has none: full fine-tuning)."""
    return cfg.get("peft") or NONE


def _check_keys(p) -> None:
    name = p.name
    if name == "lora":
        check_count(p.r, "peft.r", why="LoRA's rank must be an integer >= 1 (e.g. 8)")
        check_positive(p.alpha, "peft.alpha", "LoRA's alpha must be a number > 0 (scale alpha/r)", finite=False)
        check_probability(p.dropout, "peft.dropout", "it must be in [0, 1) (LoRA's input dropout)")
        targets = p.targets
        is_list = not isinstance(targets, str) and hasattr(targets, "__iter__")
        if not (targets in TARGET_SETS or is_list and list(targets) and all(isinstance(t, str) for t in targets)):
            raise ConfigError(
                f"peft.targets={targets} is invalid; valid: {', '.join(TARGET_SETS)}, or a list of Linears "
                "named relative to a block, e.g. peft.targets=[attention.self.query,attention.self.value]."
            )
    if name == "prefix":
        check_count(p.num_virtual_tokens, "peft.num_virtual_tokens", why="an integer >= 1 (prefix length, e.g. 20)")
        check_flag(p.projection, "peft.projection")


def check_peft(cfg: DictConfig) -> None:
    """The `peft` group's keys and what it cannot compose with: one message, before anything loads."""
    p = cfg.peft
    name = p.get("name")
    if name not in PEFT_OPTIONS:
        raise ConfigError(f"peft={name} is unknown; valid: {', '.join(PEFT_OPTIONS)} (conf/peft/).")
    if name == "none":
        return
    _check_keys(p)
    frozen = "which peft=" + name + " freezes"
    if cfg.reinit:
        raise ConfigError(
            f"reinit={cfg.reinit} with peft={name}: re-init re-draws the top blocks' weights, {frozen}: they would "
            "stay random. Use reinit=0 (reinit_pooler=true re-draws the pooler, which then trains with the head), "
            "or peft=none."
        )
    if cfg.mixout:
        raise ConfigError(
            f"mixout={cfg.mixout} with peft={name}: mixout mixes the pretrained Linears' weights, {frozen}. "
            "Use mixout=0, or peft=none."
        )
    if cfg.prior_wd:
        raise ConfigError(
            f"prior_wd={cfg.prior_wd} with peft={name}: pre-trained weight decay pulls the pretrained weights "
            f"toward their start, {frozen} (BitFit's biases are never pulled): it would do nothing. Use prior_wd=0, "
            "or peft=none."
        )
    if name == "prefix":
        if cfg.llrd != 1:
            raise ConfigError(
                f"llrd={cfg.llrd} with peft=prefix: the prefix is one tensor for every layer, so it has no layer "
                "to take an lr from. Use llrd=1.0 (optimizer.head_lr_mult still sets the head's lr)."
            )
        head = cfg.head.get("name")
        if head != "pooler":
            raise ConfigError(
                f"head={head} with peft=prefix: peft's prefix tuning feeds the prefix through the family's own "
                "classifier (head=pooler); use head=pooler, or peft=lora / ia3 / bitfit with this head."
            )
        if not problem_of(cfg.task).sequence:
            raise ConfigError(
                f"peft=prefix with task.problem={cfg.task.problem}: bertlab runs peft's prefix tuning for sequence "
                "classification and regression; use peft=lora, ia3 or bitfit for this task."
            )


def check_peft_model(p, structure: nn.Module, max_length: int) -> None:
    """What the model's structure (a skeleton, no weights) can refuse of the `peft` config: LoRA's
    targets (a list naming no Linear of a block), a family prefix tuning cannot feed, and a prefix
    that pushes the positions past the model's (the prefix takes the first positions)."""
    if p.name == "lora" and not isinstance(p.targets, str):
        target_names(structure, list(p.targets))
    if p.name == "ia3":
        ia3_targets(structure)
    if p.name == "prefix":
        peft_wrapper("prefix", structure)
        positions = getattr(structure.config, "max_position_embeddings", None)
        if positions is not None and max_length + p.num_virtual_tokens > positions:
            raise ConfigError(
                f"peft.num_virtual_tokens={p.num_virtual_tokens} with task.max_length={max_length}: the prefix takes "
                f"the first positions, and the model has {positions}; lower one of them (their sum <= {positions})."
            )


def head_modules(model: nn.Module, pooler_redrawn: bool = False) -> list[str]:
    """The task head's modules (names in `model`), which always train: see the module's docstring."""
    parts = anatomy(model)
    head = [
        name
        for name, child in model.named_children()
        if name not in (parts.base, parts.pooler) and any(True for _ in child.parameters())
    ]
    if parts.pooler is not None and (pooler_redrawn or not parts.in_base(parts.pooler)):
        head.append(parts.pooler)
    return head


def peft_config(model: nn.Module, p, head: list[str]):
    """peft's config for LoRA, IA3 or prefix tuning on `model` (the unwrapped classifier)."""
    import peft

    if p.name == "lora":
        targets = p.targets if isinstance(p.targets, str) else list(p.targets)
        return peft.LoraConfig(
            r=p.r,
            lora_alpha=p.alpha,
            lora_dropout=float(p.dropout),
            target_modules=blocks_regex(model, target_names(model, targets)),
            modules_to_save=head,
        )
    if p.name == "ia3":
        targets, feed_forward = ia3_targets(model)
        return peft.IA3Config(
            target_modules=blocks_regex(model, targets),
            feedforward_modules=blocks_regex(model, feed_forward),
            modules_to_save=head,
        )
    # prefix: token_dim, num_layers and num_attention_heads come from the model's config (get_peft_model)
    config = peft.PrefixTuningConfig(
        task_type="SEQ_CLS",
        num_virtual_tokens=p.num_virtual_tokens,
        prefix_projection=p.projection,
        encoder_hidden_size=model.config.hidden_size,
    )
    config.modules_to_save = list(head)
    return config


def apply_peft(model: nn.Module, p, pooler_redrawn: bool = False) -> nn.Module:
    """The model that trains under `p` (the `peft` config): `model` itself (none, bitfit: frozen in
    place) or peft's wrapper around it (lora, ia3, prefix)."""
    if p.name == "none":
        return model
    head = head_modules(model, pooler_redrawn)
    if p.name == "bitfit":
        apply_bitfit(model, head)
        return model
    with _quiet_peft():
        wrapped = peft_wrapper(p.name, model)(model, peft_config(model, p, head))
    if hasattr(model, "head_origin"):  # the load line's words, for result.json (model/load.py)
        wrapped.head_origin = model.head_origin
    return wrapped


def peft_wrapper(method: str, model: nn.Module):
    """peft's wrapper class for `method`: its plain PeftModel for LoRA and IA3 (what get_peft_model
    returns for a config without a task type), ours for prefix tuning (below)."""
    if method != "prefix":
        from peft import PeftModel

        return PeftModel
    base = getattr(model, model.base_model_prefix)
    if "cache" not in inspect.signature(base.forward).parameters:
        raise ModelError(
            f"peft=prefix: a {model.config.model_type} encoder takes no cache of past keys and values, which is how "
            "peft feeds the prefix to every layer; use peft=lora, ia3 or bitfit with this model."
        )
    return _prefix_classifier()


@cache
def _prefix_classifier():
    from peft import PeftModelForSequenceClassification

    class PrefixSequenceClassifier(PeftModelForSequenceClassification):
        """peft's sequence classifier with prefix tuning, less one mismatch with transformers 5.
        peft (0.21) calls the classifier with the prefix only when its forward names a
        `past_key_values` argument; transformers 5 renamed it `cache` (passed on through the
        classifier's **kwargs), so peft takes its fallback, which runs the encoder and a head of
        its own (`outputs[1]` -> dropout -> classifier): RoBERTa's and ELECTRA's heads read the
        [CLS] state, not a pooled output, so that would be silently wrong. Here the prefix goes
        to the family's own classifier, as peft's first branch does, by its new name."""

        def _prefix_tuning_forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kw):
            prefix = self.get_prompt((input_ids if input_ids is not None else inputs_embeds).shape[0])
            return self.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                inputs_embeds=inputs_embeds,
                labels=labels,
                cache=prefix,
                **kw,
            )

    return PrefixSequenceClassifier


@contextmanager
def _quiet_peft():
    # peft 0.21 asks transformers 5 `is_gradient_checkpointing`, which warns that it is deprecated
    # on every wrap: a line per run about peft's code, not the user's
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """result.json's `parameters`: those that train, and all that the forward uses (peft's frozen
    copy of the head, kept to switch the adapter off, is not counted: it computes nothing)."""
    trainable = total = 0
    for name, p in model.named_parameters():
        if PEFT_FROZEN_COPY in name:
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable": trainable, "total": total}


def save_adapter(model: nn.Module, method: str, base: str, folder: Path) -> None:
    """What a run saves of a peft method (save_weights=true): the adapter and the head, not a copy
    of the frozen weights, plus `peft.json` naming the method and `base`, where those weights come
    from. lora, ia3, prefix: peft's own files (adapter_config.json, adapter_model.safetensors),
    which `PeftModel.from_pretrained` reads; bitfit: the trained parameters by name."""
    folder.mkdir(parents=True, exist_ok=True)
    if method == "bitfit":
        trained = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, folder / BITFIT_WEIGHTS)
    else:
        model.save_pretrained(folder)
    (folder / METHOD_FILE).write_text(json.dumps({"method": method, "base": base}, indent=2) + "\n")


def saved_method(folder: Path) -> dict | None:
    """`peft.json` of a saved run's model folder; None for a full-weights save."""
    path = Path(folder) / METHOD_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def load_adapter(base_model: nn.Module, folder: Path, method: str) -> nn.Module:
    """`base_model` (rebuilt from the frozen weights, with a head of the run's shape) with the saved
    adapter and head, in eval mode."""
    if method == "bitfit":
        trained = load_file(Path(folder) / BITFIT_WEIGHTS)
        missing = set(trained) - {n for n, _ in base_model.named_parameters()}
        if missing:
            raise ModelError(f"{folder}/{BITFIT_WEIGHTS} has weights the model lacks: {', '.join(sorted(missing)[:3])}")
        base_model.load_state_dict(trained, strict=False)
        return base_model.eval()
    # peft's own reading (PeftModel.from_pretrained's: the config, then its weights set by
    # set_peft_model_state_dict), into the wrapper class that trained it (ours for prefix tuning)
    from peft import PeftConfig, load_peft_weights, set_peft_model_state_dict

    config = PeftConfig.from_pretrained(str(folder))
    config.inference_mode = True
    with _quiet_peft():
        model = peft_wrapper(method, base_model)(base_model, config)
    result = set_peft_model_state_dict(model, load_peft_weights(str(folder), device="cpu"))
    # peft loads a prefix's `prompt_embeddings` into the prompt encoder itself, and still lists it
    unexpected = [k for k in result.unexpected_keys if k != "prompt_embeddings"]
    if unexpected:
        raise ModelError(f"{folder}: the saved adapter has weights the model lacks: {unexpected[:3]}")
    return model.eval()
