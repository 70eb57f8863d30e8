"""The model card (`README.md`) of a run's saved weights (`<run_dir>/model/`), from its result.json.

The Hugging Face hub shows a model folder's README.md as its page, and `bertlab push` uploads the
folder as it is: the card says what the weights are (task, data, settings), how well they did
(every metric, with the training and data seeds that produced them) and how to make them again.
Its front matter is huggingface_hub's ModelCardData, so the hub reads the library and base model.
"""

from pathlib import Path

from omegaconf import OmegaConf

from bertlab.core.atomic import write_text_atomic

CARD_FILE = "README.md"


def _base_model(name_or_path) -> str | None:
    """The hub id the run started from; None for a local folder or bertlab's packaged models
    (`packaged:minilm`): nothing the hub can link to."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(name_or_path, str) or Path(name_or_path).expanduser().exists():
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


def _table(rows: list[tuple], header: tuple) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join('' if v is None else str(v) for v in row)} |" for row in rows]
    return "\n".join(lines)


def _shown(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(record: dict, saved_config=None) -> str:
    """The card's text for a finished run's record; `saved_config`: the run's resolved config
    (model/bertlab.yaml), for the model and data it came from."""
    from huggingface_hub import ModelCardData

    s = record.get("settings") or {}
    cfg = saved_config if saved_config is not None else OmegaConf.create({})
    name_or_path = OmegaConf.select(cfg, "model.name_or_path", default=None)
    problem = OmegaConf.select(cfg, "task.problem", default=None)
    pipeline = _pipeline_tag(problem)
    data = ModelCardData(
        library_name="transformers",
        base_model=_base_model(name_or_path),
        pipeline_tag=pipeline,
        tags=["bertlab", "few-sample-fine-tuning", str(record.get("task"))],
    )
    seeds = f"training seed {s.get('seed')}, data seed {s.get('data_seed')}"
    select = record.get("select_metric")
    sizes = record.get("split_sizes") or {}
    metrics = sorted((record.get("metrics") or {}).items())
    data_dir = OmegaConf.select(cfg, "task.data_dir", default=None)
    overrides = " ".join(record.get("overrides") or [])
    loads = (
        "`bertlab.heads.build.load_head_model(folder)` (a head of bertlab's own: `head.safetensors`)"
        if s.get("head") not in (None, "pooler")
        else "`AutoModelFor...from_pretrained(folder)` and `AutoTokenizer.from_pretrained(folder)`"
    )
    if record.get("best_step") is None:  # validation never ran: the last weights were saved
        which = f"The last weights (step {record.get('global_steps')})"
    else:
        which = f"The best weights (by validation `{select}`, at step {record['best_step']} of {record.get('global_steps')})"
    data_table = _table(
        [
            ("task", record.get("task")),
            ("data", data_dir or "the task's default source (hub or packaged corpus)"),
            ("sampling", s.get("sampling")),
            ("n_train / n_val (drawn)", f"{s.get('n_train')} / {s.get('n_val')}"),
            ("data seed", s.get("data_seed")),
            ("examples: train / val / test", " / ".join(str(sizes.get(k)) for k in ("train", "val", "test"))),
            ("augmentation", s.get("augment")),
        ],
        ("", "value"),
    )
    body = f"""
# {record.get("task")}: {s.get("model")} fine-tuned with bertlab

{which} of a run fine-tuning `{name_or_path or s.get("model")}` on the task `{record.get("task")}` ({seeds}).
Loads with {loads}; the run's resolved config is `bertlab.yaml`.

## Data

{data_table}

## Settings

{_table([(key, value) for key, value in s.items()], ("setting", "value"))}

## Metrics

`val/` is the best validation; `test_best/` the test score of these weights, `test_last/` that of the last
weights (not saved); {seeds}.

{_table([(key, _shown(value)) for key, value in metrics], ("metric", "value"))}

## Reproduce

    python train.py {overrides}
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"


def write_model_card(model_dir: Path, record: dict) -> Path:
    """`<model_dir>/README.md` for the record of the run that saved the weights there."""
    model_dir = Path(model_dir)
    config_path = model_dir / "bertlab.yaml"
    saved = OmegaConf.load(config_path) if config_path.is_file() else None
    path = model_dir / CARD_FILE
    write_text_atomic(path, model_card(record, saved))
    return path


def _pipeline_tag(problem: str | None) -> str | None:
    """The Hugging Face pipeline of a task.problem's models (its Problem's pipeline_tag); None where
    none fits, or the saved config names no problem this install knows."""
    from bertlab.core.errors import ConfigError
    from bertlab.problems.registry import problem_named

    if problem is None:
        return None
    try:
        return problem_named(problem).pipeline_tag
    except ConfigError:
        return None
