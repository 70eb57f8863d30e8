"""Token classification (NER, chunking, POS): one tag per word (task=conll2003, task=tokens).

Here: the reader (reader.py), sub-word labels and batches (encoder.py), metrics (metrics.py:
seqeval); the head is AutoModelForTokenClassification (BertForTokenClassification: a dropout and a
Linear on every token, no pooler), which model/anatomy.py sees as the
`classifier` block like a sequence head: re-init, LLRD, mixout and prior WD treat it as the head.
"""

from omegaconf import DictConfig, ListConfig
from transformers import AutoModelForTokenClassification

from bertlab.core.errors import ConfigError
from bertlab.problems.metric_names import TOKEN_CLASSIFICATION_METRICS
from bertlab.problems.problem import Problem, check_task_beyond_sequences
from bertlab.problems.token_classification.encoder import TagEncoder
from bertlab.problems.token_classification.metrics import build_tag_metrics, tag_baseline
from bertlab.problems.token_classification.reader import SCHEMES, read_tagged

KEYS = ("tag_column", "tag_scheme", "label_all_pieces", "test_file", "encoding")


def check(cfg: DictConfig) -> None:
    task = cfg.task
    check_task_beyond_sequences(cfg, KEYS, "task=tokens (your own files) or task=conll2003", "sentences", pooler=False)
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


TOKEN_CLASSIFICATION = Problem(
    name="token_classification",
    auto_class=AutoModelForTokenClassification,
    read=read_tagged,
    encoder=lambda task, tokenizer: TagEncoder(tokenizer, task.max_length, list(task.labels), task.label_all_pieces),
    metrics=lambda task, num_labels, encoder: (
        lambda prefix: build_tag_metrics(list(task.metrics), list(task.labels), task.tag_scheme, prefix)
    ),
    baseline=lambda task, num_labels, train, test: tag_baseline(
        list(task.metrics), list(task.labels), task.tag_scheme, train, test
    ),
    evaluate=None,  # the argmax per token against its tag (the metrics skip the ignored positions)
    check=check,
    num_labels=lambda task: len(task.labels),
    metric_names=TOKEN_CLASSIFICATION_METRICS,
    outputs="one prediction per token",
    pipeline_tag="token-classification",
)
