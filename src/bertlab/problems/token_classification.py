"""Token classification (NER, chunking, POS): one tag per word (task=conll2003, task=tokens).

Reader data/tagged.py, sub-word labels and batches data/tag_alignment.py, metrics (seqeval)
training/tag_metrics.py; the head is AutoModelForTokenClassification (BertForTokenClassification:
a dropout and a Linear on every token, no pooler), which model/anatomy.py sees as the
`classifier` block like a sequence head: re-init, LLRD, mixout and prior WD treat it as the head.
"""

from omegaconf import DictConfig, ListConfig
from transformers import AutoModelForTokenClassification

from bertlab.core.errors import ConfigError
from bertlab.data.tag_alignment import TagEncoder
from bertlab.data.tagged import SCHEMES, read_tagged
from bertlab.problems.problem import Problem
from bertlab.training.tag_metrics import build_tag_metrics, tag_baseline

KEYS = ("tag_column", "tag_scheme", "label_all_pieces", "test_file", "encoding")


def check(cfg: DictConfig) -> None:
    task = cfg.task
    lacking = [f"task.{key}" for key in KEYS if key not in task]
    if lacking:
        raise ConfigError(
            f"task.problem=token_classification needs {', '.join(lacking)}, which task={task.name} does not set; "
            "start from task=tokens (your own files) or task=conll2003."
        )
    # what reads or rewrites one example as one sequence does not fit tags word by word
    for group in ("augment", "distill"):
        if group in cfg and cfg[group].name != "none":
            raise ConfigError(
                f"{group}={cfg[group].name} is for sequence tasks (classification, regression); "
                f"task.problem=token_classification does not support it: drop {group}= (the default, {group}=none)."
            )
    if task.tag_scheme is not None and task.tag_scheme not in SCHEMES:
        raise ConfigError(
            f"task.tag_scheme={task.tag_scheme} is invalid; valid: {', '.join(SCHEMES)} (scored strictly by that "
            "scheme) or null (conlleval's lenient rule)."
        )
    if not isinstance(task.label_all_pieces, bool):
        raise ConfigError(f"task.label_all_pieces={task.label_all_pieces} is invalid; valid: true, false.")
    column = task.tag_column
    if isinstance(column, bool) or not isinstance(column, int) or column < 1:
        raise ConfigError(
            f"task.tag_column={column} is invalid: the 0-based column of the tag, >= 1 (column 0 is the word; "
            "CoNLL-2003: 1 POS, 2 chunk, 3 NER)."
        )
    if task.labels is not None and (not isinstance(task.labels, ListConfig) or len(task.labels) < 2):
        raise ConfigError(
            f"task.labels={task.labels} is invalid: a list of at least two tags, or null to infer them from the "
            "training file."
        )
    if task.sampling == "paper":
        raise ConfigError(
            "task.sampling=paper reproduces the official code's GLUE draws; token classification samples "
            "sentences at random by task.data_seed: use task.sampling=balanced."
        )
    if cfg.reinit_pooler:
        raise ConfigError(
            "reinit_pooler=true does not apply to token classification: its head reads every token's hidden "
            "state, and the model has no pooler; use reinit_pooler=false (reinit=L re-draws the top blocks)."
        )


TOKEN_CLASSIFICATION = Problem(
    name="token_classification",
    auto_class=AutoModelForTokenClassification,
    read=read_tagged,
    encoder=lambda task, tokenizer: TagEncoder(tokenizer, task.max_length, list(task.labels), task.label_all_pieces),
    metrics=lambda task, num_labels: (
        lambda prefix: build_tag_metrics(list(task.metrics), list(task.labels), task.tag_scheme, prefix)
    ),
    baseline=lambda task, num_labels, train, test: tag_baseline(
        list(task.metrics), list(task.labels), task.tag_scheme, train, test
    ),
    check=check,
    num_labels=lambda task: len(task.labels),
)
