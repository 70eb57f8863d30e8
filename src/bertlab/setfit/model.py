"""The SetFit model of a run: built from model.name_or_path, fed the run's examples as texts, its
class probabilities in the task's label order, saved beside the run's config and loaded back.

Text pairs (RTE, MRPC, QNLI, ...): setfit embeds one text per example (its sampler, trainer and
`predict_proba` take strings), so a pair is one text, `text_a <sep> text_b`, with the tokenizer's
own separator token (`[SEP]` for BERT, `</s>` for RoBERTa): the encoder sees the pair boundary it
saw in pre-training, as a cross-encoder would. A pair longer than task.max_length is cut as the
tokenizer cuts a pair for fine-tuning (`longest_first`: the longer text loses the most), before
joining: cutting the joined text from the end would drop the second text of a long pair (an RTE
hypothesis after a long premise). For BERT the joined text then tokenises to exactly the
ids of the tokenizer's own pair encoding (tests/test_setfit.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bertlab.data.readers import Example

HEADS = ("logistic", "differentiable")


def pair_separator(tokenizer) -> str:
    """What joins the two texts of a pair: the tokenizer's separator token, spaced."""
    sep = tokenizer.sep_token or tokenizer.eos_token
    return f" {sep} " if sep else " "


def join_pair(tokenizer, text_a: str, text_b: str, max_length: int) -> str:
    """`text_a <sep> text_b`, each cut `longest_first` so the joined text fits max_length tokens."""
    separator = pair_separator(tokenizer)
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False) - len(tokenizer.tokenize(separator))
    a, b = tokenizer.tokenize(text_a), tokenizer.tokenize(text_b)
    if len(a) + len(b) <= room:
        return f"{text_a}{separator}{text_b}"  # the texts as written
    # the tokenizers library's longest_first for a pair (what a fine-tuning run's tokenizer does): the
    # shorter text (the first on a tie) keeps its length up to half the room, the other gets the rest
    first_shorter = len(a) <= len(b)
    short, long = (a, b) if first_shorter else (b, a)
    keep = min(len(short), max(room // 2, room - len(long)))
    short, long = short[:keep], long[: room - keep]
    a, b = (short, long) if first_shorter else (long, short)
    return f"{tokenizer.convert_tokens_to_string(a)}{separator}{tokenizer.convert_tokens_to_string(b)}"


def texts_of(examples: list[Example], tokenizer, max_length: int) -> list[str]:
    return [e.text_a if e.text_b is None else join_pair(tokenizer, e.text_a, e.text_b, max_length) for e in examples]


def model_texts(model, examples: list[Example]) -> list[str]:
    """The texts `model` embeds for `examples` (pairs joined with its own tokenizer's separator)."""
    return texts_of(examples, model.model_body.tokenizer, model.model_body.max_seq_length)


def build_setfit_model(name_or_path: str, labels: list, head: str, max_length: int, seed: int):
    """A SetFitModel on the encoder at `name_or_path` (a Sentence Transformers folder keeps its own
    pooling, e.g. MiniLM's mean pooling and normalisation; a plain Hugging Face encoder gets mean
    pooling, Sentence Transformers' default) with a fresh head of `head` (HEADS)."""
    from setfit import SetFitModel
    from transformers import set_seed

    from bertlab.model.load import resolve_model_path

    set_seed(seed)  # the differentiable head's initial weights (setfit's Trainer seeds only later)
    differentiable = head == "differentiable"
    model = SetFitModel.from_pretrained(
        resolve_model_path(name_or_path),
        labels=[str(label) for label in labels],
        use_differentiable_head=differentiable,
        # one output per class (setfit's own default is 2, i.e. binary)
        head_params={"out_features": len(labels)} if differentiable else {},
    )
    model.model_body.max_seq_length = max_length  # the task's max_length, as a fine-tuning run cuts
    return model


def probabilities(model, examples: list[Example], batch_size: int) -> np.ndarray:
    """[n_examples, n_labels] class probabilities, columns in the task's label order. scikit-learn
    orders its columns by the classes it saw in training (`classes_`): a class absent from a tiny
    training split gets no column there, so the columns are put at their class indices here, the
    absent ones at probability 0, rather than shifting every later class by one."""
    if not examples:
        return np.zeros((0, len(model.labels)))
    probs = np.asarray(
        model.predict_proba(model_texts(model, examples), batch_size=batch_size, as_numpy=True, show_progress_bar=False)
    )
    classes = getattr(model.model_head, "classes_", None)
    if classes is None:  # SetFitHead: one output per label already
        return probs
    full = np.zeros((probs.shape[0], len(model.labels)))
    full[:, np.asarray(classes, dtype=int)] = probs
    return full


def save_setfit_model(model, folder: Path) -> None:
    """setfit's own format (the Sentence Transformers body, config_setfit.json, model_head.pkl)."""
    model.save_pretrained(str(folder))


def load_setfit_model(folder: Path):
    from setfit import SetFitModel

    return SetFitModel.from_pretrained(str(folder))
