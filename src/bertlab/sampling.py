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
"""

from __future__ import annotations

import random

from omegaconf import DictConfig

from bertlab.errors import ConfigError, DataError
from bertlab.readers import Example


def make_splits(pools: dict[str, list[Example]], task: DictConfig, data_seed: int) -> dict[str, list[Example]]:
    n_train = _count(task.n_train, "task.n_train", "null = the whole training pool")
    n_val = _count(task.n_val, "task.n_val", "null = val/test are the halves of the dev set")
    rng = random.Random(data_seed)
    train_pool, dev_pool = pools["train"], pools["dev"]
    groups = _groups(train_pool, task)
    available = len(train_pool)

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
        train, groups = _draw(groups, n_train, rng)
        val = _draw(groups, n_val, rng)[0] if n_val is not None else None
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
        val_dev, test_dev = _halves(_groups(dev_pool, task), rng)
        splits = {"train": _pick(train_pool, train), "val": _pick(dev_pool, val_dev),
                  "test": _pick(dev_pool, test_dev)}
    else:
        splits = {"train": _pick(train_pool, train), "val": _pick(train_pool, val), "test": list(dev_pool)}
    n_test = _count(task.get("n_test"), "task.n_test", "null = the whole test split")
    if n_test is not None and n_test < len(splits["test"]):
        # a class-balanced subset, for quick runs (debug=fast): the baseline stays comparable
        test = splits["test"]
        splits["test"] = _pick(test, _draw(_groups(test, task), n_test, rng)[0])
    for name, examples in splits.items():
        if not examples:
            raise DataError(
                f"The {name} split of '{task.name}' is empty (training pool {available}, dev pool "
                f"{len(dev_pool)}, task.n_train={n_train}, task.n_val={n_val})."
            )
    return splits


def _count(value, key: str, null_means: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value} is invalid: it must be a positive integer or null ({null_means}).")
    return value


def _groups(pool: list[Example], task: DictConfig) -> list[list[int]]:
    """Indices into the pool, one ascending list per label present (regression: one list)."""
    if task.problem == "regression":
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
