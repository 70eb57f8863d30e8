"""Multiple choice (SWAG, the user's own files): pick the right one of N endings (task=swag, task=choices).

Here: the reader (reader.py), pairs and batches (encoder.py: transformers'
DataCollatorForMultipleChoice); the head is AutoModelForMultipleChoice (BertForMultipleChoice: the
pooled vector of each (context, ending) pair through a dropout and a Linear to one score, the N
scores softmaxed), which model/anatomy.py sees as the `classifier` block after the pooler: re-init,
LLRD, mixout and prior WD treat it as the head. Accuracy over the N scores is torchmetrics'
multiclass accuracy with N classes (problems/metrics.py), the baseline always the most common
training answer index.

Sampling: plain random by task.data_seed, not stratified by the answer's index: that index is the
position of the right ending, not a class of the example (SWAG's are near uniform), so a draw
balanced over it would change nothing that matters.
"""

from omegaconf import DictConfig, ListConfig
from transformers import AutoModelForMultipleChoice

from bertlab.core.errors import ConfigError
from bertlab.problems.metric_names import MULTIPLE_CHOICE_METRICS
from bertlab.problems.metrics import baseline_scores, build_metrics
from bertlab.problems.multiple_choice.encoder import ChoiceEncoder
from bertlab.problems.multiple_choice.reader import read_choices
from bertlab.problems.problem import Problem, check_task_beyond_sequences

KEYS = ("ending_fields", "num_choices", "test_file", "encoding")


def _names(value) -> bool:
    return isinstance(value, ListConfig) and len(value) > 0 and all(isinstance(v, str) and v for v in value)


def check(cfg: DictConfig) -> None:
    task = cfg.task
    check_task_beyond_sequences(cfg, KEYS, "task=choices (your own files) or task=swag", "examples", pooler=True)
    n = task.num_choices
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError(f"task.num_choices={n} is invalid: the number of endings per example, an integer >= 2.")
    if not _names(task.text_fields) or len(task.text_fields) > 2:
        raise ConfigError(
            f"task.text_fields={task.text_fields} is invalid: [context] or [context, second text] (the question, "
            "or the start every ending continues: SWAG's [sent1, sent2])."
        )
    endings = task.ending_fields
    if not _names(endings) or len(endings) not in (1, n):
        raise ConfigError(
            f"task.ending_fields={endings} is invalid: the {n} fields of the endings (task.num_choices={n}), "
            "or one field that holds the list of them."
        )
    if not isinstance(task.label_field, str) or not task.label_field:
        raise ConfigError(f"task.label_field={task.label_field} is invalid: the field of the right ending's index.")
    if task.labels is not None:
        raise ConfigError(
            f"task.labels={task.labels} is not used by multiple choice: the label is the 0-based index of the "
            "right ending (task.label_field), not a class name; set task.labels=null."
        )


MULTIPLE_CHOICE = Problem(
    name="multiple_choice",
    auto_class=AutoModelForMultipleChoice,
    read=read_choices,
    encoder=lambda task, tokenizer: ChoiceEncoder(tokenizer, task.max_length, task.num_choices),
    # the classes of the accuracy are the N choices (the model's config.num_labels is not used by its head)
    metrics=lambda task, num_labels, encoder: (
        lambda prefix: build_metrics(list(task.metrics), task.num_choices, prefix)
    ),
    evaluate=None,  # the argmax of the N scores against the answer's index
    baseline=lambda task, num_labels, train, test: baseline_scores(
        list(task.metrics), task.num_choices, "classification", train, test
    ),
    check=check,
    num_labels=lambda task: task.num_choices,
    metric_names=MULTIPLE_CHOICE_METRICS,
    outputs="one score per choice",
    pipeline_tag=None,  # transformers has no multiple-choice pipeline
)
