"""Train / val / test splits from the labelled pools, made the way the paper makes them.

Every draw comes from `random.Random(data_seed)`: the sample depends on the pools and
task.data_seed only, never on the training seed, so runs that differ only in `seed` see the same
data. Draws are class-balanced per label (regression: one group, i.e. plain random).

- n_val null: val and test are the two halves of the dev pool, split per label (paper, full data).
  This holds with n_train set too.
- n_val set: val is drawn from the training pool, disjoint from train, and the whole dev pool is
  the test set (paper, 1k setting: n_train=1000, n_val=1000).
- n_train null: train is the whole training pool (less val); set: a class-balanced sample of it,
  drawn before val, so changing n_val leaves the training sample as it is.
- n_test set (optional key): a class-balanced subset of the test split, for quick runs.
- a task with its own labelled test set (pools {"train", "dev", "test"}: CoNLL-2003's train.txt,
  valid.txt, test.txt) keeps its three splits: train from the training pool (n_train), val from
  the dev pool (n_val: a sample of it, not of the training pool, which stays the training sample's
  alone), test = the test pool (n_test: a sample of it).

Token classification has no class per sentence: its draws are plain random, as regression's.

`task.k_shot: K` draws LM-BFF's K-shot split instead (data/k_shot.py): K train and K val per class
from the training pool, the whole dev pool as test; n_train / n_val are then not read.

`task.sampling: paper` (the experiment=paper_* presets) makes the same splits with the official
code's own draws (asappresearch/revisit-bert-finetuning, run_glue.py), so that a paper preset
trains, selects and tests on the very examples the paper's code does (see `paper_splits`).
"""

from __future__ import annotations

import random

from omegaconf import DictConfig

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.values import check_count
from bertlab.data.k_shot import k_shot_splits
from bertlab.data.readers import Example, label_kind

SAMPLING = ("balanced", "paper")


def make_splits(
    pools: dict[str, list[Example]], task: DictConfig, data_seed: int, kind: str | None = None
) -> dict[str, list[Example]]:
    """train/val/test drawn from the pools. `kind`: the labels' kind as the task's Problem says (its
    `kind`: "classification" draws balanced over the classes, "regression" by its own rule, anything
    else at random); None: task.problem's (data/readers.py label_kind)."""
    kind = label_kind(task, kind)
    if task.get("k_shot") is not None:  # LM-BFF's protocol (data/k_shot.py); n_test still applies
        # its test set is the same for every data split, and so is an n_test subset of it (a fixed
        # RNG, not data_seed's): the split-vs-seed variance must not mix in a test set per split
        return _checked(k_shot_splits(pools, task, data_seed, kind), task, pools, None, None, random.Random(0), kind)
    n_train = check_count(
        task.n_train,
        "task.n_train",
        allow=(None,),
        why="it must be a positive integer or null (null = the whole training pool)",
    )
    n_val = check_count(
        task.n_val,
        "task.n_val",
        allow=(None,),
        why="it must be a positive integer or null (null = val/test are the halves of the dev set)",
    )
    sampling = task.sampling
    if sampling not in SAMPLING:
        raise ConfigError(f"task.sampling={sampling!r} is invalid; valid: {', '.join(SAMPLING)}.")
    rng = random.Random(data_seed)
    train_pool, dev_pool = pools["train"], pools["dev"]
    groups = _groups(train_pool, kind)
    available = len(train_pool)
    if "test" in pools:
        return _checked(
            _own_test_splits(pools, task, n_train, n_val, rng, kind), task, pools, n_train, n_val, rng, kind
        )

    if n_train is not None:
        if n_train > available:
            raise ConfigError(
                f"task.n_train={n_train} is more than the {available} examples in the training pool of "
                f"'{task.name}'; valid: 1 to {available}, or null for all of them."
            )
        if n_train < len(groups):
            raise ConfigError(
                f"task.n_train={n_train} is less than the {len(groups)} classes of '{task.name}': "
                "a class-balanced sample needs at least one example per class."
            )
        if n_val is not None and n_train + n_val > available:
            raise ConfigError(
                f"task.n_train + task.n_val = {n_train} + {n_val} is more than the {available} examples "
                f"in the training pool of '{task.name}'; both are drawn from it, disjoint."
            )
        if sampling == "paper":
            train, val = paper_draw(train_pool, task, n_train, n_val, data_seed, kind)
        else:
            train, groups = _draw(groups, n_train, rng)
            val = _draw(groups, n_val, rng)[0] if n_val is not None else None
    elif n_val is not None and sampling == "paper":
        train, val = paper_draw(train_pool, task, None, n_val, data_seed, kind)
    elif n_val is not None:
        if n_val >= available:
            raise ConfigError(
                f"task.n_val={n_val} leaves no training examples: the training pool of '{task.name}' has "
                f"{available}; valid: 1 to {available - 1}."
            )
        val, groups = _draw(groups, n_val, rng)
        train = sorted(i for group in groups for i in group)
    else:
        train, val = list(range(available)), None

    if val is None:
        if sampling == "paper":
            val_dev, test_dev = paper_halves(dev_pool, data_seed)
        else:
            val_dev, test_dev = _halves(_groups(dev_pool, kind), rng)
        splits = {"train": _pick(train_pool, train), "val": _pick(dev_pool, val_dev), "test": _pick(dev_pool, test_dev)}
    else:
        splits = {"train": _pick(train_pool, train), "val": _pick(train_pool, val), "test": list(dev_pool)}
    return _checked(splits, task, pools, n_train, n_val, rng, kind)


def _own_test_splits(pools: dict, task: DictConfig, n_train: int | None, n_val: int | None, rng, kind: str) -> dict:
    if task.sampling == "paper":
        raise ConfigError(
            f"task.sampling=paper reproduces the official code's GLUE draws; '{task.name}' has its own test set: "
            "use task.sampling=balanced."
        )
    splits = {}
    for name, pool, n, key in (("train", "train", n_train, "n_train"), ("val", "dev", n_val, "n_val")):
        examples = pools[pool]
        if n is not None and n > len(examples):
            raise ConfigError(
                f"task.{key}={n} is more than the {len(examples)} examples in the {pool} pool of '{task.name}'; "
                f"valid: 1 to {len(examples)}, or null for all of them."
            )
        splits[name] = list(examples) if n is None else _pick(examples, _draw(_groups(examples, kind), n, rng)[0])
    splits["test"] = list(pools["test"])
    return splits


def _checked(splits: dict, task: DictConfig, pools: dict, n_train, n_val, rng, kind: str) -> dict[str, list[Example]]:
    """The n_test subset, and no split empty."""
    available, dev_pool = len(pools["train"]), pools["dev"]
    n_test = check_count(
        task.n_test,
        "task.n_test",
        allow=(None,),
        why="it must be a positive integer or null (null = the whole test split)",
    )
    if n_test is not None and n_test < len(splits["test"]):
        # a class-balanced subset, for quick runs (debug=fast): the baseline stays comparable
        test = splits["test"]
        splits["test"] = _pick(test, _draw(_groups(test, kind), n_test, rng)[0])
    for name, examples in splits.items():
        if not examples:
            raise DataError(
                f"The {name} split of '{task.name}' is empty (training pool {available}, dev pool "
                f"{len(dev_pool)}, task.n_train={n_train}, task.n_val={n_val})."
            )
    return splits


def _groups(pool: list[Example], kind: str) -> list[list[int]]:
    """Indices into the pool, one ascending list per label present (regression, token
    classification: one list)."""
    if kind != "classification":
        return [list(range(len(pool)))] if pool else []
    by_label: dict[int, list[int]] = {}
    for i, example in enumerate(pool):
        by_label.setdefault(example.label, []).append(i)
    return [by_label[label] for label in sorted(by_label)]


def balanced_counts(sizes: list[int], n: int) -> list[int]:
    """How many to take from each group: n split evenly, the remainder one each to the first
    groups (label order); a group too small gives all it has and the others share its shortfall."""
    counts = [0] * len(sizes)
    open_groups = [g for g, size in enumerate(sizes) if size > 0]
    left = min(n, sum(sizes))
    while left > 0:
        share, extra = divmod(left, len(open_groups))
        for rank, g in enumerate(open_groups):
            take = min(share + (rank < extra), sizes[g] - counts[g])
            counts[g] += take
            left -= take
        open_groups = [g for g in open_groups if counts[g] < sizes[g]]
    return counts


def _draw(groups: list[list[int]], n: int, rng: random.Random) -> tuple[list[int], list[list[int]]]:
    """A class-balanced sample of n indices (sorted) and the groups of those left."""
    picked, rest = [], []
    for group, count in zip(groups, balanced_counts([len(g) for g in groups], n)):
        chosen = set(rng.sample(group, count))
        picked.extend(chosen)
        rest.append([i for i in group if i not in chosen])
    return sorted(picked), rest


def _halves(groups: list[list[int]], rng: random.Random) -> tuple[list[int], list[int]]:
    """Each group shuffled and cut in half: the first (smaller, for odd sizes) half is val."""
    val, test = [], []
    for group in groups:
        shuffled = rng.sample(group, len(group))
        val += shuffled[: len(group) // 2]
        test += shuffled[len(group) // 2 :]
    return sorted(val), sorted(test)


def _pick(pool: list[Example], indices: list[int]) -> list[Example]:
    return [pool[i] for i in indices]


# ---------------------------------------------------------------- the official code's draws


def _first_seen_groups(pool: list[Example]) -> list[list[int]]:
    """Indices per label value, labels in order of first appearance (the official code's
    `defaultdict(list)` filled in file order). Regression scores group by value, as there."""
    groups: dict = {}
    for i, example in enumerate(pool):
        groups.setdefault(example.label, []).append(i)
    return list(groups.values())


def paper_halves(dev_pool: list[Example], data_seed: int) -> tuple[list[int], list[int]]:
    """`--test_val_split`: per label, the dev indices shuffled by a fresh
    `np.random.RandomState(1)`; the first half (floor) is validation, the rest test. Seeded with
    data_seed + 1, so the default data_seed 0 gives the official split."""
    import numpy as np

    val, test = [], []
    for indices in _first_seen_groups(dev_pool):
        np.random.RandomState(data_seed + 1).shuffle(indices)
        val += indices[: len(indices) // 2]
        test += indices[len(indices) // 2 :]
    return sorted(val), sorted(test)


def paper_draw(
    train_pool: list[Example],
    task: DictConfig,
    n_train: int | None,
    n_val: int | None,
    data_seed: int,
    kind: str | None = None,
) -> tuple[list[int], list[int] | None]:
    """`--downsample_trainset n_train --resplit_val n_val`: numpy's global RNG seeded with 0 (here
    data_seed), each label's indices shuffled in turn (labels in order of first appearance);
    training takes the first n_train // C of each, validation the last n_val // C (C labels, so
    1000 over 3 labels gives 999). With n_train null, training is the rest of each label.
    Regression: `torch.randperm` under seed 0, the first n_train (the official code has no
    regression validation draw; ours takes the last n_val of the same permutation)."""
    import numpy as np
    import torch

    if label_kind(task, kind) == "regression":
        order = torch.randperm(len(train_pool), generator=torch.Generator().manual_seed(data_seed)).tolist()
        groups, per_train, per_val = [order], n_train, n_val
    else:
        groups = _first_seen_groups(train_pool)
        per_train = None if n_train is None else n_train // len(groups)
        per_val = None if n_val is None else n_val // len(groups)
        rng = np.random.RandomState(data_seed)  # = np.random.seed(data_seed) + np.random.shuffle
        groups = [rng.permutation(g).tolist() for g in groups]
    train, val = [], []
    for group in groups:
        n_v = per_val or 0
        n_t = len(group) - n_v if per_train is None else per_train
        if n_t + n_v > len(group) or n_t < 1:
            # the official code only checks the total, and would overlap train and val here
            raise ConfigError(
                f"task.sampling=paper draws task.n_train // classes = {n_t} training and task.n_val // classes "
                f"= {n_v} validation examples per label of '{task.name}', but a label has only {len(group)}; "
                "lower task.n_train / task.n_val."
            )
        train += group[:n_t]
        val += group[len(group) - n_v :] if n_v else []
    return sorted(train), (sorted(val) if n_val is not None else None)
