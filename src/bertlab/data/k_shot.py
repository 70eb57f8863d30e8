"""The K-shot protocol of LM-BFF (Gao et al., ACL 2021): `task.k_shot=K`.

K training and K validation examples per class, drawn from the training pool by task.data_seed;
the test set is the task's whole dev pool (its own test pool where it has one, as LM-BFF uses the
original test sets of its non-GLUE tasks). The draw follows princeton-nlp/LM-BFF
`tools/generate_k_shot_data.py` line by line:

    np.random.seed(seed); np.random.shuffle(train_lines)      # the whole file, header left out
    label_list = {label: [lines in shuffled order]}           # labels in order of first appearance
    train = label_list[label][:k] for each label; dev = label_list[label][k:2k]

Here the training pool's examples stand for the file's lines (readers.read_local yields one
Example per row, in file order), and `np.random.RandomState(seed).permutation(n)` orders them:
numpy's legacy shuffle of a list and of `arange(n)` make the same swaps, so the K-shot split of
a GLUE file is the very lines LM-BFF's script writes for that seed (tests/test_k_shot.py checks
it against the script's own steps on the real RTE and MRPC files). Where it cannot be identical:
- a file with blank lines: LM-BFF shuffles them too (as lines of no label), we skip them, so the
  permutation differs (GLUE's train.tsv files have none);
- a task read from the hub (`task.data_dir=null`) or a CSV with quoted multi-line fields: the
  pool's order is not the file's lines; BBC News is de-duplicated before the draw;
- the split order inside train/val: LM-BFF writes label by label, as here; our batch order is
  then our own loader's (data/resumable_loader.py), not theirs.

Regression (STS-B): LM-BFF bins the score, `0 if score < 2.5 else 1`, and draws K per bin, so
2K training examples in all. We keep that rule and state its threshold in general as the
midpoint of the training scores' range, (min + max) / 2: 2.5 on STS-B (scores 0 to 5), and a
task with another scale gets the same halving of its range rather than a constant that means
nothing there.

Where LM-BFF takes fewer than K silently (a class with fewer than 2K examples), we refuse: a
"16-shot" split with 9 examples of one class is not the protocol.

Token classification, multiple choice and question answering have no class per example to
draw K of: `task.k_shot` is refused for them (check_k_shot).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.lines import say
from bertlab.core.values import check_count
from bertlab.data.readers import Example, label_kind

# the five data seeds of LM-BFF's published splits (generate_k_shot_data.py --seed; conf/protocol/lmbff.yaml)
LMBFF_SEEDS = (13, 21, 42, 87, 100)
LMBFF_K = 16
KINDS = ("classification", "regression")  # the label kinds a K-shot draw balances over


def check_k_shot(task: DictConfig, kind: str | None = None) -> None:
    """task.k_shot: null, or K >= 1 on a classification or regression task (run/checks.py).
    `kind`: the task's Problem's (data/readers.py label_kind); None: task.problem's."""
    k = task.get("k_shot")
    if k is None:
        return
    check_count(
        k, "task.k_shot", why=f"it must be a positive integer (examples per class; LM-BFF uses {LMBFF_K}) or null (off)"
    )
    if label_kind(task, kind) not in KINDS:
        raise ConfigError(
            f"task.k_shot={k} draws K examples per class, and task.problem={task.problem} ('{task.name}') has no "
            "class per example; use task.n_train and task.n_val for a few-sample draw, or task.k_shot=null."
        )
    if task.sampling == "paper":
        raise ConfigError(
            f"task.k_shot={k} draws LM-BFF's split (numpy shuffle by task.data_seed); task.sampling=paper is the "
            "revisit-bert code's 1k draw and cannot apply with it: use task.sampling=balanced, or task.k_shot=null."
        )


def regression_threshold(scores: list[float]) -> float:
    """The bin edge of a regression task: the midpoint of the training scores' range (STS-B: 2.5)."""
    return (min(scores) + max(scores)) / 2


def _class_of(task: DictConfig, pool: list[Example], kind: str):
    """example -> the class LM-BFF balances on, and how a class is named in a message."""
    if kind == "regression":
        edge = regression_threshold([e.label for e in pool])
        return (lambda e: 0 if e.label < edge else 1), (lambda c: f"scores {'below' if c == 0 else 'from'} {edge:g}")
    labels = list(task.labels) if task.get("labels") else None
    return (lambda e: e.label), (lambda c: repr(labels[c]) if labels and c < len(labels) else repr(c))


def k_shot_indices(
    pool: list[Example], task: DictConfig, k: int, data_seed: int, kind: str | None = None
) -> tuple[list[int], list[int]]:
    """LM-BFF's draw: (train, val) indices into the training pool, label by label in order of
    first appearance in the shuffled pool, each label's in shuffled order."""
    kind = label_kind(task, kind)
    class_of, name = _class_of(task, pool, kind)
    # = np.random.seed(data_seed); np.random.shuffle(lines): the same swaps (module docstring)
    order = np.random.RandomState(data_seed).permutation(len(pool)).tolist()
    by_class: dict = {}
    for i in order:
        by_class.setdefault(class_of(pool[i]), []).append(i)
    expected = range(len(task.labels)) if kind == "classification" else range(2)
    short = {c: len(by_class.get(c, [])) for c in expected if len(by_class.get(c, [])) < 2 * k}
    if short:
        counts = ", ".join(f"{name(c)}: {n}" for c, n in short.items())
        fits = min(short.values()) // 2
        raise DataError(
            f"task.k_shot={k} needs {2 * k} training examples of every class ({k} to train on, {k} to validate "
            f"on), and the training pool of '{task.name}' has fewer ({counts}); "
            + (f"lower task.k_shot to {fits} or less." if fits else "every class needs examples in the training file.")
        )
    train = [i for c in by_class for i in by_class[c][:k]]
    val = [i for c in by_class for i in by_class[c][k : 2 * k]]
    return train, val


def k_shot_splits(
    pools: dict[str, list[Example]], task: DictConfig, data_seed: int, kind: str | None = None
) -> dict[str, list[Example]]:
    """train and val: K per class from the training pool (k_shot_indices); test: the whole dev
    pool, or the task's own test pool where it has one. task.n_train / n_val are not read."""
    check_k_shot(task, kind)
    k = task.k_shot
    unused = [f"task.{key}={task.get(key)}" for key in ("n_train", "n_val") if task.get(key) is not None]
    if unused:  # the default task and debug=fast set them; said, never silently dropped
        say(f"task.k_shot={k}: {k} training and {k} validation examples per class; {' and '.join(unused)} not used")
    train_pool = pools["train"]
    train, val = k_shot_indices(train_pool, task, k, data_seed, kind)
    test = pools["test"] if "test" in pools else pools["dev"]
    return {"train": [train_pool[i] for i in train], "val": [train_pool[i] for i in val], "test": list(test)}
