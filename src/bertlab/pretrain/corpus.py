"""The text a further pre-training stage reads: the task's own (TAPT) or a domain corpus (DAPT).

One rule above all: no validation or test text ever reaches the masked-language-model corpus, or
the fine-tuned model would have seen the evaluation text (its words, not its labels) before it is
evaluated on it. Every corpus is a list of documents (strings), stripped, without blanks and
without exact duplicates (first kept; a duplicate would weigh twice and could straddle the
held-out slice of mlm_data.py).

TAPT documents are whole examples: a sentence pair is one document, its two texts joined by a
space, so the held-out slice never separates a hypothesis from its premise (the hypothesis copies
phrases of it, which would make the held-out loss look better than it is).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError, DataError
from bertlab.data import fields
from bertlab.data.readers import Example, read_task

log = logging.getLogger("bertlab")

CORPORA = ("train", "train_pool")


def example_text(example: Example) -> str:
    """One document: a pair's two texts joined by a space; a tagged sentence's words (token tasks)
    joined by spaces; a multiple-choice context and its endings (text_b: one per ending) likewise."""
    text_a = example.text_a if isinstance(example.text_a, str) else " ".join(example.text_a)
    text_b = example.text_b if example.text_b is None or isinstance(example.text_b, str) else " ".join(example.text_b)
    return text_a if text_b is None else f"{text_a} {text_b}"


def task_corpus(task_cfg: DictConfig, splits: dict, which: str, pools: dict | None = None) -> list[str]:
    """TAPT text. which='train': the run's drawn training split; 'train_pool': the whole training
    pool the draw came from (its labels unused). Either way, every example whose text is that of a
    validation or test example is left out: validation drawn from the training pool, or a duplicate
    row of an evaluation example (in 'train' only a duplicate can be one; it goes too, so the rule
    holds without exceptions). `pools`: read_task's result where the caller has it (else the task
    is read again)."""
    if which not in CORPORA:
        raise ConfigError(f"pretrain.corpus={which} is invalid; valid: {', '.join(CORPORA)}.")
    source = splits["train"] if which == "train" else (pools if pools is not None else read_task(task_cfg))["train"]
    held = _evaluation_keys(splits)
    examples = [e for e in source if (e.text_a, e.text_b) not in held]
    if len(examples) < len(source):
        log.info(
            "pretrain.corpus=%s: %d of %d examples left out (the text of a validation or test example)",
            which,
            len(source) - len(examples),
            len(source),
        )
    texts = documents(example_text(e) for e in examples)
    if not texts:
        raise ConfigError(
            f"pretrain.corpus={which} gives no text for task '{task_cfg.name}' (its training split is empty); "
            "raise task.n_train, or use pretrain.corpus=train_pool."
        )
    return texts


def domain_corpus(path: str | None, task_cfg: DictConfig, splits: dict, pools: dict | None = None) -> list[str]:
    """DAPT text: a text file (one document per line) or a folder (one document per *.txt file,
    recursively, in sorted path order), UTF-8. path None: the task's own domain corpus where it has
    one; bbcnews: the training-pool articles outside every split (neither drawn for train nor for
    val; the test articles are never in the training pool). Documents identical to a validation or
    test text are dropped in every case (a folder may well hold the task's own files)."""
    if path is None:
        texts = _task_domain_corpus(task_cfg, splits, pools)
        where = (
            f"the articles of '{task_cfg.name}' outside its train/val/test splits (lower task.n_train / "
            "task.n_val, or set pretrain.domain_corpus=PATH)"
        )
    else:
        texts = read_documents(path)
        held = {text for key in _evaluation_keys(splits) for text in key if text is not None}
        held |= {example_text(e) for name in ("val", "test") for e in splits.get(name, [])}
        kept = [t for t in texts if t not in held]
        if len(kept) < len(texts):
            log.info(
                "pretrain.domain_corpus: %d documents of %s left out (validation or test text)",
                len(texts) - len(kept),
                path,
            )
        texts, where = kept, f"pretrain.domain_corpus={path}"
    if not texts:
        raise ConfigError(f"{where}: no documents (after blank lines and validation/test text are left out).")
    return texts


def _task_domain_corpus(task_cfg: DictConfig, splits: dict, pools: dict | None) -> list[str]:
    if task_cfg.source != "bbcnews":
        raise ConfigError(
            f"task '{task_cfg.name}' has no domain corpus of its own (only bbcnews has): set "
            "pretrain.domain_corpus=PATH, a text file (one document per line) or a folder of .txt files."
        )
    pool = (pools if pools is not None else read_task(task_cfg))["train"]
    used = {(e.text_a, e.text_b) for name in ("train", "val", "test") for e in splits.get(name, [])}
    return documents(example_text(e) for e in pool if (e.text_a, e.text_b) not in used)


def _evaluation_keys(splits: dict) -> set[tuple[str, str | None]]:
    return {(e.text_a, e.text_b) for name in ("val", "test") for e in splits.get(name, [])}


def documents(texts) -> list[str]:
    """Stripped, non-empty, each once (first occurrence kept, order kept)."""
    seen: dict[str, None] = {}
    for text in texts:
        text = text.strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def read_documents(path: str) -> list[str]:
    """A file: one document per line, blank lines skipped. A folder: one document per *.txt file
    below it (recursively, sorted by path), empty files skipped."""
    root = Path(str(path)).expanduser()
    if root.is_dir():
        files = sorted(p for p in root.rglob("*.txt") if p.is_file())
        if not files:
            raise ConfigError(
                f"pretrain.domain_corpus={path} is a folder without .txt files; put one document per .txt file in it."
            )
        return documents(_read_text(f, path) for f in files)
    if root.is_file():
        return documents(_read_text(root, path).splitlines())
    raise ConfigError(
        f"pretrain.domain_corpus={path} does not exist; give a text file (one document per line) or a folder of .txt files."
    )


def _read_text(file: Path, key_value: str) -> str:
    try:
        return fields.read_text(file, "utf-8-sig", key=None)
    except DataError as err:
        raise DataError(f"{err} (pretrain.domain_corpus={key_value})") from None


def corpus_fingerprint(texts: list[str]) -> str:
    """sha256 of the documents in order; each is length-prefixed, so ["ab"] and ["a", "b"] differ."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()
