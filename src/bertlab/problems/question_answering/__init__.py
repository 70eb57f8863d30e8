"""Extractive question answering (SQuAD v1.1): the answer is a span of the context (task=squad, task=qa).

Here: the reader (reader.py), windows and batches (encoder.py), post-processing and exact match /
F1 (metrics.py); the head is AutoModelForQuestionAnswering (BertForQuestionAnswering: a Linear
giving a start and an end logit per token, no pooler), which model/anatomy.py sees as the
`classifier` block like a sequence head: re-init, LLRD, mixout and prior WD treat it as the head.
"""

from omegaconf import DictConfig
from transformers import AutoModelForQuestionAnswering

from bertlab.core.errors import ConfigError
from bertlab.core.values import check_count
from bertlab.problems.metric_names import QUESTION_ANSWERING_METRICS
from bertlab.problems.problem import Problem, check_task_beyond_sequences
from bertlab.problems.question_answering.encoder import QAEncoder, doc_stride
from bertlab.problems.question_answering.metrics import build_qa_metrics, evaluate_batch, qa_baseline
from bertlab.problems.question_answering.reader import read_squad

KEYS = ("doc_stride", "max_answer_length", "n_best_size", "encoding")


def _task_count(value, key: str, minimum: int, means: str) -> None:
    """task.<key>, with the QA rules' wording (core/values.py check_count)."""
    check_count(value, f"task.{key}", minimum=minimum, why=f"an integer >= {minimum} ({means})")


def check(cfg: DictConfig) -> None:
    task = cfg.task
    check_task_beyond_sequences(cfg, KEYS, "task=qa (your own files) or task=squad", "questions", pooler=False)
    if task.doc_stride is not None:
        _task_count(
            task.doc_stride,
            "doc_stride",
            0,
            "the tokens consecutive windows of a long context share; null: a third of task.max_length",
        )
        if isinstance(task.max_length, int) and task.doc_stride >= task.max_length // 2:
            raise ConfigError(
                f"task.doc_stride={task.doc_stride} is invalid with task.max_length={task.max_length}: windows overlap "
                f"by doc_stride tokens and must still move on; use less than {task.max_length // 2}, or null "
                f"(a third of max_length, {doc_stride(task.max_length, None)})."
            )
    _task_count(task.max_answer_length, "max_answer_length", 1, "the longest answer predicted, in tokens; SQuAD: 30")
    _task_count(task.n_best_size, "n_best_size", 1, "start and end tokens paired per window; SQuAD: 20")


QUESTION_ANSWERING = Problem(
    name="question_answering",
    auto_class=AutoModelForQuestionAnswering,
    read=read_squad,
    encoder=lambda task, tokenizer: QAEncoder(tokenizer, task.max_length, task.doc_stride),
    metrics=lambda task, num_labels, encoder: (
        lambda prefix: build_qa_metrics(list(task.metrics), encoder, task.n_best_size, task.max_answer_length, prefix)
    ),
    baseline=lambda task, num_labels, train, test: qa_baseline(list(task.metrics), train, test),
    check=check,
    num_labels=lambda task: 2,  # a start and an end logit per token (transformers' QA config)
    evaluate=evaluate_batch,
    metric_names=QUESTION_ANSWERING_METRICS,
    outputs="a start and an end score per token",
    pipeline_tag="question-answering",
)
