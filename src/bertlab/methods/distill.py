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

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bertlab.core.errors import ConfigError
from bertlab.core.values import check_positive, check_probability
from bertlab.data.fingerprint import FINGERPRINT_KEY, SPLITS
from bertlab.problems.registry import problem_of

DISTILL_OPTIONS = ("none", "self")
# what transformers' save_pretrained writes (one file, or an index of shards)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# the task keys that say where a run's examples come from and how they are drawn (the data check's message)
DATA_KEYS = (
    "data_dir",
    "train_file",
    "dev_file",
    "test_file",
    "n_train",
    "n_val",
    "n_test",
    "k_shot",
    "data_seed",
    "sampling",
)


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


def check_distill(distill) -> None:
    """The rule for the `distill` group, before any data or model loads."""
    name = distill.get("name")
    if name not in DISTILL_OPTIONS:
        raise ConfigError(f"distill={name} is unknown; valid: {', '.join(DISTILL_OPTIONS)}.")
    if name == "none":
        return
    alpha, t, teacher = distill.alpha, distill.temperature, distill.teacher
    check_probability(
        alpha,
        "distill.alpha",
        "it must be a number in [0, 1] (the soft labels' weight; 0 = a standard run)",
        high_open=False,
    )
    check_positive(t, "distill.temperature", "it must be a number > 0 (1 = no softening)")
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


def check_teacher_run(teacher: str, record: dict | None, teacher_task, task, fingerprint: dict) -> None:
    """A saved teacher fits this run, else one ConfigError naming both sides: a finished run of the
    same problem and labels (names in index order: a permuted list would make every soft label a
    wrong class's), trained on the same examples (data/fingerprint.py: every split's content, so
    it never saw this run's validation or test examples). `record`: the teacher's result.json
    (None when unreadable); `teacher_task`: its saved task config (bertlab.yaml); `task`: this
    run's, its labels filled by the reader; `fingerprint`: this run's data_fingerprint."""
    if not isinstance(record, dict) or record.get("status") != "ok":
        raise ConfigError(
            f"distill.teacher={teacher}: no result.json of a finished run (status ok) in it, so which "
            "examples the teacher trained on is unknown; use the folder of a run that ended ok."
        )
    if teacher_task.problem != task.problem:
        raise ConfigError(
            f"distill.teacher={teacher}: it is a task.problem={teacher_task.problem} run, this run is "
            f"task.problem={task.problem}; use a teacher run of this task."
        )
    if not problem_of(task).regression:
        theirs, ours = [str(x) for x in teacher_task.labels], [str(x) for x in task.labels]
        if len(theirs) != len(ours):
            raise ConfigError(
                f"distill.teacher={teacher}: its model has {len(theirs)} label(s), this task has {len(ours)}; "
                "use a teacher run of this task."
            )
        if theirs != ours:
            raise ConfigError(
                f"distill.teacher={teacher}: its labels are {theirs} (in index order), this run's are {ours}; "
                "its outputs would be read as the wrong classes. Set task.labels to the teacher's order "
                f"(task.labels=[{','.join(theirs)}]) or use a teacher run with this run's labels."
            )
    saved = record.get(FINGERPRINT_KEY)
    if not isinstance(saved, dict):
        raise ConfigError(
            f"distill.teacher={teacher}: its result.json has no {FINGERPRINT_KEY} (a run of an older bertlab), "
            "so whether it trained on this run's examples cannot be checked; train the teacher again with "
            "this version (its command with save_weights=true), or drop distill.teacher to train it in this job."
        )
    differ = [name for name in SPLITS if saved.get(name) != fingerprint.get(name)]
    if differ:
        raise ConfigError(
            f"distill.teacher={teacher}: it was trained on other data than this run: its {'/'.join(differ)} "
            f"examples differ.\n  teacher:  {describe_data(teacher_task)}, {_short(saved, differ)}\n"
            f"  this run: {describe_data(task)}, {_short(fingerprint, differ)}\n"
            "A teacher must have trained on this run's training examples and never seen its validation or "
            "test examples: train it on the same files with the same task.n_train, task.n_val, task.k_shot, "
            "task.data_seed and task.sampling, or drop distill.teacher to train the teacher in this job."
        )


def describe_data(task) -> str:
    """`task=csv task.data_dir=/a task.train_file=train.csv ... task.data_seed=0`: where a run's data
    came from, as the keys that set it (a null data_dir: the hub's or the packaged copy)."""
    keys = [f"task.{key}={'null' if task[key] is None else task[key]}" for key in DATA_KEYS if key in task]
    return " ".join([f"task={task.name}", *keys])


def _short(fingerprint: dict, splits: list[str]) -> str:
    return ", ".join(f"{name} {str(fingerprint.get(name))[:12]}" for name in splits)


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
