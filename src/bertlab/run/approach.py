"""`approach` -> how a run turns the encoder into predictions: the one place that lists them.

- finetune (the default): the family's classifier (or a head of heads/) on the encoder, the
  task problem's encoding (problems/): the paper's setting.
- prompt: PET / LM-BFF prompt-based fine-tuning, the masked-LM head's logits of the label words
  at a template's mask (prompt/).
- setfit: SetFit's contrastive stage and a head on the embeddings, with the setfit library
  (setfit/); it trains outside Lightning, so run/fit.py and run/predict.py hand it its run.

Each approach gives a fresh model (`load`), rebuilds a saved one (`load_trained`), may encode the
examples its own way (`encoder`, None: the problem's) and add a term to the loss (`extra_loss`,
None: the model's loss alone), and checks its own keys (`check`). Everything else of a run
(splits, re-init, mixout, optimizer, LLRD, prior WD, callbacks, result.json, the report) is shared.
A new approach is one entry in APPROACHES and its conf/approach/<name>.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.data.features import FeatureScaler
from bertlab.heads.build import load_classifier, load_head_model
from bertlab.heads.fusion import attach_fusion, load_fusion
from bertlab.methods.auxiliary import attach_aux
from bertlab.methods.mixout import apply_mixout
from bertlab.methods.model_checks import check_before_weights
from bertlab.methods.peft_tuning import apply_peft, load_adapter, peft_method, saved_method
from bertlab.methods.reinit import reinit_top_layers
from bertlab.model.gradient_checkpointing import enable_gradient_checkpointing
from bertlab.model.load import load_config, load_tokenizer
from bertlab.problems.registry import problem_of
from bertlab.prompt import approach as prompt
from bertlab.run.saved_run import frozen_weights
from bertlab.setfit.train import check_setfit


def _classifier(cfg: DictConfig, pair: bool, num_labels: int, name_or_path: str):
    task = cfg.task
    problem = problem_of(task)
    auto_class = problem.auto_class  # the head: sequence or token classifier
    model_config = load_config(name_or_path, num_labels, problem.kind, cfg.model.dropout)
    tokenizer = load_tokenizer(name_or_path)
    check_before_weights(
        name_or_path, model_config, tokenizer, task.max_length, pair, cfg.reinit, auto_class, peft=peft_method(cfg)
    )
    # init_seed (Dodge et al. 2020): the new head, the re-initialised blocks and mixout's start;
    # train_and_test re-seeds with order_seed before training (batch order, dropout)
    L.seed_everything(cfg.init_seed, workers=True, verbose=False)
    return load_classifier(cfg.head, name_or_path, model_config, tokenizer=tokenizer, auto_class=auto_class)


def _saved_classifier(cfg: DictConfig, model_dir):
    # the family's HF classifier (head=pooler) or a HeadModel with the run's head (heads/model.py);
    # the label count is the saved config's, which the run wrote from cfg.task.labels
    auto_class = problem_of(cfg.task).auto_class
    tokenizer = load_tokenizer(str(model_dir))
    saved = saved_method(model_dir)
    if saved is None:  # every weight was saved
        model = load_head_model(model_dir, auto_class)
    else:
        # peft=: the frozen weights from where the run took them, with a head of the run's shape (the
        # saved config: labels, head), then the saved adapter and head on top (methods/peft_tuning.py)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir)
        _, base = load_classifier(cfg.head, frozen_weights(saved, model_dir), config, tokenizer, auto_class)
        model = load_adapter(base, model_dir, saved["method"])
    load_fusion(model, model_dir)  # the side features' fusion and scaling, where the run had them
    return tokenizer, model


def _own_training(*_):
    # approach=setfit is not a Lightning fit: run/fit.py hands the whole run to setfit/train.py and
    # run/predict.py loads setfit's own model folder; nothing asks it for a model here
    raise RuntimeError("approach=setfit builds its model in setfit/train.py, not through run/approach.py")


def _prompt_model(cfg: DictConfig, pair: bool, num_labels: int, name_or_path: str):
    L.seed_everything(cfg.init_seed, workers=True, verbose=False)  # a fresh masked-LM head's draw
    return prompt.load_model(cfg, pair, num_labels, name_or_path)


@dataclass(frozen=True)
class Approach:
    name: str
    load: Callable  # (cfg, pair, num_labels, name_or_path) -> (tokenizer, model), float32, training mode
    load_trained: Callable  # (cfg, model_dir) -> (tokenizer, model) of a run saved with save_weights=true
    encoder: Callable = lambda cfg, tokenizer, train: None  # -> FewSampleDataModule's encoder; None: the problem's
    extra_loss: Callable = lambda cfg, tokenizer, data, encoder: None  # -> (model, loss, step) -> loss; or None
    check: Callable = lambda cfg: None  # the approach's own rules, before any data or model (run/checks.py)


APPROACHES = {
    a.name: a
    for a in (
        Approach("finetune", _classifier, _saved_classifier),
        Approach(
            "prompt",
            _prompt_model,
            prompt.load_trained,
            encoder=prompt.encoder,
            extra_loss=prompt.extra_loss,
            check=prompt.check_prompt,
        ),
        # setfit's two stages (bertlab/setfit/): its own keys and refusals here, its run in run/fit.py
        Approach("setfit", _own_training, _own_training, check=check_setfit),
    )
}


def approach_of(cfg: DictConfig) -> Approach:
    """The run's approach (a config without the group, e.g. a saved run of an older bertlab: finetune)."""
    name = cfg.approach.name if "approach" in cfg else "finetune"
    if name not in APPROACHES:
        raise ConfigError(f"approach={name} is invalid; valid: {', '.join(APPROACHES)}.")
    return APPROACHES[name]


# Options that change the classifier of approach=finetune; another approach refuses them (one message)
FINETUNE_ONLY = {
    "peft": "peft.name",  # adapters beside the classifier head (methods/peft_tuning.py)
    "aux": "aux.name",  # an auxiliary loss beside the head's (methods/auxiliary.py)
    "features": "features.fusion",  # side features fused with the head's input (heads/fusion.py)
}


def check_approach(cfg: DictConfig) -> None:
    """The approach's own rules, and the finetune-only options refused for the others (check_config)."""
    approach = approach_of(cfg)
    if approach.name != "finetune":
        for group, key in FINETUNE_ONLY.items():
            value = OmegaConf.select(cfg, key, default="none")
            if value not in (None, "none"):
                raise ConfigError(
                    f"{group}={value} with approach={approach.name}: it changes the classifier head of "
                    f"approach=finetune, which approach={approach.name} does not have; use approach=finetune, "
                    f"or {group}=none."
                )
    approach.check(cfg)


def build_model(
    cfg: DictConfig, pair: bool, num_labels: int, name_or_path: str | None = None, scaler: FeatureScaler | None = None
):
    """Tokenizer and model of the run's approach, checked before any weights are read, then
    re-initialised, mixed out, given its side-feature fusion (`scaler`: the training split's feature
    statistics; None: no features), adapters and auxiliary objective, and compiled as the config
    says. `name_or_path`: where the weights come from, when not model.name_or_path (a further
    pre-trained model)."""
    name_or_path = name_or_path or cfg.model.name_or_path
    tokenizer, model = approach_of(cfg).load(cfg, pair, num_labels, name_or_path)
    pooler_redrawn = cfg.reinit > 0 or cfg.reinit_pooler
    reinit_top_layers(model, cfg.reinit, reinit_pooler=pooler_redrawn)
    apply_mixout(model, cfg.mixout)  # after re-init: Linears mix toward the re-initialised weights
    if cfg.trainer.get("gradient_checkpointing"):
        enable_gradient_checkpointing(model)
    # peft=: freeze, add the adapter (a new module drawn after the head, from the same seed), and
    # keep the head training; a re-drawn pooler trains with it (methods/peft_tuning.py). approach=
    # finetune only (check_peft refuses the others)
    model = apply_peft(model, peft_method(cfg), pooler_redrawn)
    # after mixout: the fusion and the auxiliary head are new head parts, never mixed out
    if scaler is not None:
        attach_fusion(model, scaler, cfg.features.fusion, cfg.features.dim)
    model.aux_record = attach_aux(cfg, model, tokenizer, name_or_path, cfg.task.get("labels"))
    compile_backend = cfg.trainer.compile
    if compile_backend:
        # in place (nn.Module.compile): parameter names, best-weight copies and checkpoints are
        # unchanged; dynamic shapes, since every batch is padded to its own length
        model.compile(dynamic=True, backend="inductor" if compile_backend is True else str(compile_backend))
    return tokenizer, model
