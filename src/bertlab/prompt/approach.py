"""approach=prompt's parts for a run (run/approach.py dispatches to them): its config checks, its
model (the masked-LM model with the prompt forward), its encoder (template, label words,
demonstrations) and its extra loss (PET's auxiliary masked-LM term)."""

from __future__ import annotations

from omegaconf import DictConfig
from transformers import AutoModelForMaskedLM

from bertlab.core.errors import ConfigError
from bertlab.core.values import check_count, check_probability
from bertlab.methods.model_checks import check_before_weights
from bertlab.model.load import load_config, load_tokenizer
from bertlab.problems.registry import problem_of
from bertlab.prompt.aux_mlm import AuxiliaryMLM, unlabeled_pool
from bertlab.prompt.demonstrations import DEMONSTRATIONS, sentence_embedder
from bertlab.prompt.encoder import PromptEncoder
from bertlab.prompt.model import load_prompt_model, load_saved_prompt_model
from bertlab.prompt.template import PromptFormat, label_word_ids, label_word_list, parse_template

# methods that replace the model's head or its training objective: one message each
REFUSED = {
    "head": ("pooler", "the class scores come from the masked-LM head at the mask, not from a classifier head"),
    "distill": ("none", "self-distillation trains a classifier on a teacher's logits; not built for prompts"),
}


def _pair(task: DictConfig) -> bool:
    return len(task.text_fields) > 1


def check_prompt(cfg: DictConfig) -> None:
    """Every rule of approach=prompt that needs no model (run/checks.py calls it)."""
    task, approach = cfg.task, cfg.approach
    problem = problem_of(task)
    if not problem.sequence:
        raise ConfigError(
            f"approach=prompt scores one mask per example: it is for sequence classification and regression; "
            f"task.problem={task.problem} is not one: use approach=finetune."
        )
    for group, (allowed, why) in REFUSED.items():
        if cfg[group].name != allowed:
            raise ConfigError(f"{group}={cfg[group].name} does not apply to approach=prompt ({why}): drop {group}=.")
    parse_template(task.get("template"), _pair(task))
    labels = task.get("labels")
    if problem.classifies_texts and labels is not None:
        label_word_list(task.get("label_words"), labels, problem.kind)
    elif problem.regression:
        label_word_list(task.get("label_words"), None, problem.kind)
        bounds(task)
    if approach.demonstrations not in DEMONSTRATIONS:
        raise ConfigError(
            f"approach.demonstrations={approach.demonstrations} is invalid; valid: {', '.join(DEMONSTRATIONS)}."
        )
    check_probability(
        approach.aux_mlm_weight,
        "approach.aux_mlm_weight",
        "a number in [0, 1), the share of PET's auxiliary masked-LM loss (PET: 1e-4; 0 = off)",
    )
    check_count(approach.aux_pool_size, "approach.aux_pool_size", why="a positive integer (unlabeled examples)")


def bounds(task: DictConfig) -> tuple[float, float] | None:
    """A regression task's score range (task.score_range, e.g. STS-B's [0, 5]): the two poles' values."""
    if not problem_of(task).regression:
        return None
    value = task.get("score_range")
    ok = value is not None and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
    if not ok or not value[0] < value[1]:
        raise ConfigError(
            f"task.score_range={value} is invalid: approach=prompt scores a regression between two poles, so it "
            "needs the task's [lowest, highest] score, e.g. task.score_range=[0,5] for STS-B."
        )
    return float(value[0]), float(value[1])


def prompt_format(cfg: DictConfig, tokenizer) -> PromptFormat:
    task = cfg.task
    parts = parse_template(task.template, _pair(task))
    words = label_word_list(task.label_words, task.get("labels"), problem_of(task).kind)
    return PromptFormat(parts, label_word_ids(words, tokenizer), tokenizer, task.max_length)


def load_model(cfg: DictConfig, pair: bool, num_labels: int, name_or_path: str):
    """(tokenizer, model), checked before the weights load as a classifier is (model/load.py)."""
    task = cfg.task
    tokenizer = load_tokenizer(name_or_path)
    word_ids = prompt_format(cfg, tokenizer).word_ids  # a label word of several pieces: refused here
    kind = problem_of(task).kind
    config = load_config(name_or_path, num_labels, kind, cfg.model.dropout)
    # the rendered input is one sequence, whatever the task's number of texts
    check_before_weights(name_or_path, config, tokenizer, task.max_length, False, cfg.reinit, AutoModelForMaskedLM)
    model = load_prompt_model(name_or_path, num_labels, kind, cfg.model.dropout, word_ids, bounds(task), tokenizer)
    return tokenizer, model


def load_trained(cfg: DictConfig, model_dir):
    return load_tokenizer(str(model_dir)), load_saved_prompt_model(model_dir)


def encoder(cfg: DictConfig, tokenizer, train: list | None) -> PromptEncoder:
    """`train`: the examples demonstrations come from; None (`bertlab predict`): the run's own
    training split, drawn again from its task (only when demonstrations are on)."""
    approach = cfg.approach
    if train is None and approach.demonstrations != "none":
        from bertlab.data.sampling import make_splits

        problem = problem_of(cfg.task)
        train = make_splits(problem.read(cfg.task), cfg.task, cfg.task.data_seed, problem.kind)["train"]
    embed = sentence_embedder(approach.similarity_model) if approach.demonstrations == "similar" else None
    return PromptEncoder(
        prompt_format(cfg, tokenizer),
        train or [],
        problem_of(cfg.task).kind,
        approach.demonstrations,
        cfg.seed,
        embed,
        bounds(cfg.task),
    )


def extra_loss(cfg: DictConfig, tokenizer, data, encoder: PromptEncoder):
    """PET's auxiliary masked-LM term, or None when approach.aux_mlm_weight is 0."""
    approach = cfg.approach
    if not approach.aux_mlm_weight:
        return None
    pool = unlabeled_pool(data.pools, data.drawn, approach.aux_pool_size, cfg.task.data_seed)
    return AuxiliaryMLM(approach.aux_mlm_weight, pool, encoder.prompt, tokenizer, cfg.data.batch_size, cfg.seed)
