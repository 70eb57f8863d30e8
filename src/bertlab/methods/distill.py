"""Self-distillation (`distill=self`): the loss on a teacher's soft labels, its config rule, the
teacher's logits, and the checks on a saved teacher (`distill.teacher=DIR`).

The loss is that of the transformers distillation research project (examples/research_projects/
distillation/distiller.py: `KLDivLoss(reduction="batchmean")` of the temperature-softened
distributions, times T^2, Hinton et al. 2015), mixed with the task loss:

    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * task loss

The T^2 keeps the soft term's gradient, T * (p_student - p_teacher) / batch for the logits, on the
scale of the task loss's whatever T. Regression has no distribution to soften: the soft term is
the MSE to the teacher's output, and T is not used. The run's composition (teacher, then student)
is run/distill.py.
"""

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bertlab.core.errors import ConfigError

DISTILL_OPTIONS = ("none", "self")
# what transformers' save_pretrained writes (one file, or an index of shards)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# the settings (core/record.py) that fix which examples are training, validation and test
DATA_SETTINGS = ("task", "n_train", "n_val", "data_seed", "sampling")


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    task_loss: torch.Tensor,
    alpha: float,
    temperature: float,
    regression: bool,
) -> torch.Tensor:
    """The student's training loss; `task_loss` is the model's own (cross-entropy or MSE)."""
    # at least float32: under bf16/fp16 autocast the logits are half precision, and the soft labels
    # (computed in float32) must not be rounded to it
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    student_logits, teacher_logits = student_logits.to(dtype), teacher_logits.to(dtype)
    if regression:
        soft = F.mse_loss(student_logits, teacher_logits)
    else:
        t = temperature
        # log_target: both sides as log-probabilities, so a teacher equal to the student gives
        # exactly 0 (softmax then log would leave rounding); the same KL as distiller.py's
        soft = F.kl_div(
            F.log_softmax(student_logits / t, dim=-1),
            F.log_softmax(teacher_logits / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        ) * (t * t)
    return alpha * soft + (1.0 - alpha) * task_loss


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_distill(distill) -> None:
    """The rule for the `distill` group, before any data or model loads."""
    name = distill.get("name")
    if name not in DISTILL_OPTIONS:
        raise ConfigError(f"distill={name} is unknown; valid: {', '.join(DISTILL_OPTIONS)}.")
    if name == "none":
        return
    alpha, t, teacher = distill.alpha, distill.temperature, distill.teacher
    if not _number(alpha) or not 0 <= alpha <= 1:
        raise ConfigError(
            f"distill.alpha={alpha} is invalid: it must be a number in [0, 1] (the soft labels' weight; "
            "0 = a standard run)."
        )
    if not _number(t) or t <= 0:
        raise ConfigError(f"distill.temperature={t} is invalid: it must be a number > 0 (1 = no softening).")
    if teacher is not None:
        teacher_model_dir(teacher)


def teacher_model_dir(teacher) -> Path:
    """DIR/model of a run folder saved with save_weights=true; one message when it is not one."""
    if not isinstance(teacher, str) or not teacher:
        raise ConfigError(
            f"distill.teacher={teacher} is invalid: it must be null (train the teacher in this job) "
            "or a run folder saved with save_weights=true."
        )
    run = Path(teacher).expanduser()
    model = run / "model"
    if not run.is_dir():
        problem = "there is no such folder"
    elif not (model / "config.json").is_file() or not any((model / f).is_file() for f in WEIGHT_FILES):
        problem = f"it has no saved weights ({model}/config.json and model.safetensors)"
    else:
        return model
    raise ConfigError(
        f"distill.teacher={teacher}: {problem}. Pass the run folder of a finished run of this task "
        "trained with save_weights=true, or distill.teacher=null to train the teacher in this job."
    )


def check_teacher_run(teacher: str, num_labels: int, settings: dict) -> dict:
    """A saved teacher fits this run: its label count, and the same training/validation/test
    examples (else it may have trained on this run's validation or test labels). Returns the
    teacher run's result.json."""
    run = Path(teacher).expanduser()
    model_config = json.loads((teacher_model_dir(teacher) / "config.json").read_text())
    labels = len(model_config.get("id2label") or {}) or 2  # transformers' default when absent
    if labels != num_labels:
        raise ConfigError(
            f"distill.teacher={teacher}: its model has {labels} label(s), this task has {num_labels}; "
            "use a teacher run of this task."
        )
    try:
        record = json.loads((run / "result.json").read_text())
    except (OSError, json.JSONDecodeError):
        record = None
    if not isinstance(record, dict) or record.get("status") != "ok":
        raise ConfigError(
            f"distill.teacher={teacher}: no result.json of a finished run (status ok) in it, so which "
            "examples the teacher trained on is unknown; use the folder of a run that ended ok."
        )
    theirs = record.get("settings") or {}
    differ = [
        f"{k}={theirs.get(k)} (here {settings.get(k)})" for k in DATA_SETTINGS if theirs.get(k) != settings.get(k)
    ]
    if differ:
        raise ConfigError(
            f"distill.teacher={teacher}: it was trained on other data ({', '.join(differ)}), so it may "
            "have seen this run's validation or test examples; train the teacher with the same "
            f"{', '.join(DATA_SETTINGS)}."
        )
    return record


@torch.no_grad()
def teacher_logits(model: torch.nn.Module, items: list[dict], collate, batch_size: int, device) -> torch.Tensor:
    """The model's logits for `items` in their order (eval mode: no dropout), float32 on the CPU."""
    was_training = model.training
    model.eval()
    model.to(device)
    out = []
    for batch in DataLoader(items, batch_size=batch_size, shuffle=False, collate_fn=collate):
        batch = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        out.append(model(**batch).logits.float().cpu())
    model.train(was_training)
    return torch.cat(out)


def saved_teacher_logits(
    teacher: str, examples: list, max_length: int, regression: bool, batch_size: int, device
) -> torch.Tensor:
    """A saved teacher's logits on `examples`, tokenised with its own tokenizer (saved beside its
    weights), so a teacher of another model family reads its own input ids."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from bertlab.data.datamodule import tokenize

    model_dir = teacher_model_dir(teacher)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    items = tokenize(examples, tokenizer, max_length, regression)
    return teacher_logits(model, items, DataCollatorWithPadding(tokenizer), batch_size, device)
