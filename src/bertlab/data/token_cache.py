"""A disk cache of tokenised splits, shared by the jobs of a sweep (`data.token_cache`).

A sweep runs the same data through the same tokenizer hundreds of times (seeds x settings); each
split is tokenised once and later jobs load it. The key is a content hash of everything the
encodings depend on, so a stale entry can never be read:

- the tokenizer: its class, its full serialised state (fast tokenizers: `backend_tokenizer.to_str()`,
  i.e. vocabulary, normaliser such as lower-casing, pre-tokeniser, special tokens), its special
  tokens and the input names it emits;
- the examples themselves (texts and labels, in order), so a changed data file, another data_seed
  or another task gives another key (content, not file names or mtimes: cheap at few-sample sizes
  and immune to copies and touched files);
- max_length and the label type, and what else the labels depend on (`extra`: token
  classification's tag alignment, task.label_all_pieces on the training split).

Entries are written atomically (atomic.py), so concurrent jobs writing the same entry never
leave a torn file; a torn or unreadable entry is ignored and re-tokenised. The `datasets`
library has a fingerprint cache of its own, but it keys on the transform's code and needs the data as an Arrow table; these splits are small Python lists,
so a hash + `torch.save` is simpler and loads in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from bertlab.core.atomic import save_torch_atomic
from bertlab.data.readers import Example

log = logging.getLogger("bertlab")
FORMAT_VERSION = 1  # bump when the stored layout of an entry changes


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what determines the tokenizer's output (not its name: a retrained vocab under the
    same name must miss the cache)."""
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(_state_without_call_settings(backend).encode())
    else:  # slow (pure Python) tokenizers: the vocabulary and the init options
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
        h.update(repr(sorted((k, repr(v)) for k, v in tokenizer.init_kwargs.items())).encode())
    h.update(repr(sorted(map(str, tokenizer.all_special_tokens))).encode())
    h.update(repr(list(tokenizer.model_input_names)).encode())
    h.update(tokenizer.padding_side.encode() + tokenizer.truncation_side.encode())
    return h.hexdigest()


def _state_without_call_settings(backend) -> str:
    """The fast tokenizer's serialised state without truncation/padding: per-call settings that
    the last call leaves behind (transformers sets them again at every call), not identity.
    Cleared around `to_str` and put back, instead of parsing the JSON and writing it again sorted:
    that took 0.1-0.25 s of every run's start-up for a 30k-word vocabulary (docs/speed.md)."""
    truncation, padding = backend.truncation, backend.padding
    backend.no_truncation()
    backend.no_padding()
    try:
        return backend.to_str()  # serde's field order and the vocabulary by id: deterministic
    finally:
        if truncation is not None:
            backend.enable_truncation(**truncation)
        if padding is not None:
            backend.enable_padding(**padding)


def examples_fingerprint(examples: list[Example]) -> str:
    """Also of tagged sentences (problems/token_classification/reader.py), whose text_a and label are tuples (their repr)."""
    h = hashlib.sha256()
    for e in examples:
        # \x00 / \x01 separate fields and examples, so ("ab", None) and ("a", "b") differ
        h.update(f"{e.text_a}\x00{e.text_b}\x00{e.label!r}\x01".encode())
    return h.hexdigest()


def cache_key(tokenizer_fp: str, examples: list[Example], max_length: int, regression: bool, extra: str = "") -> str:
    """`extra`: what else changes the encodings (token classification: how tags are aligned);
    empty for sequence tasks, whose keys are then those of earlier versions."""
    parts = [f"v{FORMAT_VERSION}", tokenizer_fp, examples_fingerprint(examples), str(max_length), str(regression)]
    parts += [extra] if extra else []
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def cached(cache_dir: str | Path | None, key: str, compute: Callable[[], list[dict]]) -> tuple[list[dict], bool]:
    """The entry `key` from `cache_dir`, or `compute()` stored there. Returns (value, was_hit).
    `cache_dir=None` turns the cache off."""
    if cache_dir is None:
        return compute(), False
    folder = Path(cache_dir).expanduser()
    path = folder / f"{key}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True), True
        except Exception as err:  # torn by a crash or another version: recompute and overwrite
            log.warning("token cache entry %s unreadable (%s): tokenising again", path, err)
    value = compute()
    try:
        save_torch_atomic(path, value)  # readers see no entry or the whole entry; a full disk is an OSError
    except OSError as err:  # a read-only or full disk must not fail the run
        log.warning("token cache not written to %s: %s", folder, err)
    return value, False
