"""Grow the training split (conf/augment/): `augment=eda` / `eda_offline` (data/eda.py) or
`augment=backtranslation` (paraphrases written by `bertlab prepare --backtranslate`, data/backtranslate.py).

Only the training split is augmented, after the few-sample draw (so task.n_train counts original
examples); validation and test are returned as they came. The training split becomes the original
examples, in their order, followed by their augmented copies (labels copied). For pair tasks
`augment.sentences` says which sentence is edited: first (the default: the premise / sentence1,
the longer context of RTE and MRPC), second, or both.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from bertlab.core.errors import ConfigError
from bertlab.core.values import check_count, check_probability
from bertlab.data.eda import NEEDS_SYNONYMS, OPERATIONS, eda
from bertlab.data.readers import Example

METHODS = ("none", "eda", "eda_offline", "backtranslation")  # eda_offline: EDA, swap and deletion by default
SENTENCES = ("first", "second", "both")
ALPHAS = ("alpha_sr", "alpha_ri", "alpha_rs", "p_rd")


def _active(augment: DictConfig) -> list[str]:
    """The EDA operations that run: listed in augment.operations and with a rate > 0 (as eda.py)."""
    rates = dict(zip(OPERATIONS, (augment[a] for a in ALPHAS)))
    return [op for op in augment.operations if rates[op] > 0]


def check_augment(augment: DictConfig) -> None:
    """Every augment key's rule, before any data loads (run/checks.py calls it)."""
    from bertlab.data.synonyms import wordnet_help

    if augment.name not in METHODS:
        raise ConfigError(f"augment.name={augment.name} is unknown; valid: {', '.join(METHODS)} (augment=<name>).")
    if augment.name == "none":
        return
    if augment.sentences not in SENTENCES:
        raise ConfigError(
            f"augment.sentences={augment.sentences} is invalid; valid: {', '.join(SENTENCES)} "
            "(which sentence of a pair is augmented)."
        )
    if augment.name == "backtranslation":
        if not isinstance(augment.file, str):
            raise ConfigError(
                f"augment.file={augment.file} is invalid: it must be the path of a file written by "
                "`bertlab prepare --backtranslate --task <task> --out FILE`."
            )
        return
    ops = augment.operations
    if not isinstance(ops, (list, tuple, ListConfig)):
        raise ConfigError(f"augment.operations={ops} is invalid: it must be a list, e.g. [swap,deletion].")
    bad = [op for op in ops if op not in OPERATIONS]
    if bad or not ops or len(set(ops)) != len(ops):
        raise ConfigError(
            f"augment.operations={list(ops)} is invalid: a non-empty list of distinct names from "
            f"{', '.join(OPERATIONS)}, e.g. augment.operations=[swap,deletion]."
        )
    for key in ALPHAS:
        check_probability(
            augment[key], f"augment.{key}", "it must be a number in [0, 1] (0 turns the operation off)", high_open=False
        )
    if not _active(augment):
        raise ConfigError(
            f"augment.operations={list(ops)} with their rates all 0 leaves EDA nothing to do; set a rate > 0 "
            "(augment.alpha_sr, alpha_ri, alpha_rs, p_rd) or use augment=none."
        )
    check_count(augment.num_aug, "augment.num_aug", "augmented copies per example")
    for key in ("wordnet_dir", "synonyms_file"):
        if augment[key] is not None and not isinstance(augment[key], str):
            raise ConfigError(f"augment.{key}={augment[key]} is invalid: it must be a path or null.")
    needs = [op for op in _active(augment) if op in NEEDS_SYNONYMS]
    if needs and augment.wordnet_dir is None and augment.synonyms_file is None:
        raise ConfigError(wordnet_help(f"augment.operations has {', '.join(needs)} but no WordNet is set"))


def _sides(augment: DictConfig, pair: bool, task_name: str) -> tuple[bool, bool]:
    """(edit text_a, edit text_b)."""
    if not pair:
        if augment.sentences != "first":
            raise ConfigError(
                f"augment.sentences={augment.sentences}: task '{task_name}' has one sentence per example; "
                "use augment.sentences=first."
            )
        return True, False
    return augment.sentences in ("first", "both"), augment.sentences in ("second", "both")


def eda_copies(example: Example, augment: DictConfig, data_seed: int, synonyms, sides) -> list[Example]:
    """num_aug copies of one example; the same for the same example and data seed in any run."""
    # a str seed is hashed with SHA-512 by random.Random: the same in every process
    rng = random.Random(f"eda\0{data_seed}\0{example.text_a}\0{example.text_b}")

    def copies(text: str) -> list[str]:
        return eda(
            text,
            rng,
            augment.num_aug,
            *(augment[a] for a in ALPHAS),
            operations=tuple(augment.operations),
            synonyms=synonyms,
        )

    texts_a = copies(example.text_a) if sides[0] else [example.text_a] * augment.num_aug
    texts_b = copies(example.text_b) if sides[1] else [example.text_b] * augment.num_aug
    return [replace(example, text_a=a, text_b=b) for a, b in zip(texts_a, texts_b)]  # its features too


def augment_train(
    splits: dict[str, list[Example]], augment: DictConfig, task: DictConfig
) -> tuple[dict[str, list[Example]], dict]:
    """The splits with the training split augmented, and result.json's `augment` record."""
    train = splits["train"]
    record = {"name": augment.name, "n_train_before": len(train), "n_train_after": len(train)}
    if augment.name == "none":
        return splits, record
    sides = _sides(augment, train[0].text_b is not None, task.name)
    if augment.name in ("eda", "eda_offline"):
        synonyms = None
        if any(op in NEEDS_SYNONYMS for op in _active(augment)):
            from bertlab.data.synonyms import load_synonyms

            synonyms = load_synonyms(augment)
        added = [copy for e in train for copy in eda_copies(e, augment, task.data_seed, synonyms, sides)]
    else:
        from bertlab.data.backtranslate import matching_paraphrases

        added, matched = matching_paraphrases(Path(augment.file).expanduser(), train, task, sides)
        record["matched"] = matched  # training examples with at least one paraphrase in the file
    record.update(n_train_after=len(train) + len(added), sentences=augment.sentences)
    return {**splits, "train": train + added}, record
