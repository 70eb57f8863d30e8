"""make_splits: class balance, determinism, disjointness, the paper's two settings, and errors."""

import random
from collections import Counter

import numpy as np
import pytest
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.paths import CONF_DIR
from bertlab.data.readers import Example, read_task
from bertlab.data.sampling import balanced_counts, make_splits


def task(n_train=None, n_val=None, problem="classification", labels=("a", "b", "c")):
    return OmegaConf.create(
        {
            "name": "toy",
            "problem": problem,
            "labels": list(labels) if labels else None,
            "n_train": n_train,
            "n_val": n_val,
            "n_test": None,
            "sampling": "balanced",
        }
    )


def pools(train_per_class=(40, 30, 20), dev_per_class=(11, 10, 9)):
    """Texts repeat across examples on purpose: disjointness must hold by identity, not text."""

    def pool(sizes):
        return [Example(f"text {i % 5}", None, label) for label, n in enumerate(sizes) for i in range(n)]

    return {"train": pool(train_per_class), "dev": pool(dev_per_class)}


def ids(examples):
    return {id(e) for e in examples}


def labels(examples):
    return Counter(e.label for e in examples)


def test_full_data_keeps_train_and_halves_dev_per_label():
    data = pools()
    splits = make_splits(data, task(), data_seed=0)
    assert [id(e) for e in splits["train"]] == [id(e) for e in data["train"]]
    assert labels(splits["val"]) == {0: 5, 1: 5, 2: 4}  # odd label counts: the extra one goes to test
    assert labels(splits["test"]) == {0: 6, 1: 5, 2: 5}
    assert not ids(splits["val"]) & ids(splits["test"])
    assert ids(splits["val"]) | ids(splits["test"]) == ids(data["dev"])


def test_few_sample_is_class_balanced_and_disjoint():
    data = pools()
    splits = make_splits(data, task(n_train=30, n_val=13), data_seed=0)
    assert labels(splits["train"]) == {0: 10, 1: 10, 2: 10}
    assert labels(splits["val"]) == {0: 5, 1: 4, 2: 4}  # the remainder goes to the first labels
    assert not ids(splits["train"]) & ids(splits["val"])
    assert ids(splits["train"]) | ids(splits["val"]) <= ids(data["train"])
    assert [id(e) for e in splits["test"]] == [id(e) for e in data["dev"]]  # test = the whole dev pool


def test_small_class_gives_all_it_has_and_the_others_fill_in():
    data = pools(train_per_class=(40, 3, 20))
    splits = make_splits(data, task(n_train=30, n_val=12), data_seed=0)
    assert labels(splits["train"]) == {0: 14, 1: 3, 2: 13}
    assert labels(splits["val"]) == {0: 6, 2: 6}  # class 1 is used up by the training sample


@pytest.mark.parametrize(
    "sizes, n, expected",
    [
        ([10, 10, 10], 10, [4, 3, 3]),
        ([10, 1, 10], 10, [5, 1, 4]),
        ([2, 0, 50], 9, [2, 0, 7]),
        ([3, 3], 6, [3, 3]),
        ([5], 4, [4]),
    ],
)
def test_balanced_counts(sizes, n, expected):
    assert balanced_counts(sizes, n) == expected


def test_deterministic_and_independent_of_the_training_seed():
    data = pools()
    cfg = task(n_train=12, n_val=9)
    first = make_splits(data, cfg, data_seed=3)
    # What a different training seed changes: the global RNGs (Lightning's seed_everything seeds these).
    random.seed(1234)
    np.random.seed(1234)
    again = make_splits(data, cfg, data_seed=3)
    assert {k: [id(e) for e in v] for k, v in first.items()} == {k: [id(e) for e in v] for k, v in again.items()}
    full = make_splits(data, task(), data_seed=3)
    random.seed(99)
    assert [id(e) for e in make_splits(data, task(), data_seed=3)["val"]] == [id(e) for e in full["val"]]


def test_another_data_seed_draws_another_sample():
    data = pools()
    cfg = task(n_train=12, n_val=9)
    samples = {seed: ids(make_splits(data, cfg, data_seed=seed)["train"]) for seed in range(3)}
    assert samples[0] != samples[1] != samples[2] != samples[0]
    halves = [ids(make_splits(data, task(), data_seed=seed)["val"]) for seed in range(2)]
    assert halves[0] != halves[1]


def test_changing_n_val_keeps_the_training_sample():
    data = pools()
    a = make_splits(data, task(n_train=12, n_val=3), data_seed=0)
    b = make_splits(data, task(n_train=12, n_val=30), data_seed=0)
    assert ids(a["train"]) == ids(b["train"])


def test_n_train_without_n_val_uses_the_dev_halves():
    data = pools()
    splits = make_splits(data, task(n_train=9), data_seed=0)
    assert labels(splits["train"]) == {0: 3, 1: 3, 2: 3}
    assert ids(splits["val"]) | ids(splits["test"]) == ids(data["dev"])
    assert len(splits["val"]) == 14


def test_n_val_without_n_train_holds_out_val_from_the_whole_train():
    data = pools()
    splits = make_splits(data, task(n_val=6), data_seed=0)
    assert labels(splits["val"]) == {0: 2, 1: 2, 2: 2}
    assert ids(splits["train"]) == ids(data["train"]) - ids(splits["val"])
    assert len(splits["train"]) == 84 and ids(splits["test"]) == ids(data["dev"])


def test_regression_draws_plain_random():
    data = {
        "train": [Example(f"t{i}", f"u{i}", i / 10) for i in range(50)],
        "dev": [Example(f"d{i}", f"e{i}", i / 10) for i in range(9)],
    }
    cfg = task(n_train=20, n_val=10, problem="regression", labels=None)
    splits = make_splits(data, cfg, data_seed=0)
    assert len(splits["train"]) == 20 and len(splits["val"]) == 10
    assert not ids(splits["train"]) & ids(splits["val"])
    full = make_splits(data, task(problem="regression", labels=None), data_seed=0)
    assert len(full["val"]) == 4 and len(full["test"]) == 5
    assert full["val"] != make_splits(data, task(problem="regression", labels=None), data_seed=1)["val"]


@pytest.mark.parametrize(
    "n_train, n_val, message",
    [
        (91, None, r"task\.n_train=91 is more than the 90 examples in the training pool of 'toy'; valid: 1 to 90"),
        (2, None, r"task\.n_train=2 is less than the 3 classes"),
        (60, 31, r"task\.n_train \+ task\.n_val = 60 \+ 31 is more than the 90 examples"),
        (None, 90, r"task\.n_val=90 leaves no training examples.*valid: 1 to 89"),
        (30, 0, r"task\.n_val=0 is invalid: it must be a positive integer or null"),
        (0, 10, r"task\.n_train=0 is invalid"),
        (True, None, r"task\.n_train=True is invalid"),
        (12.5, None, r"task\.n_train=12\.5 is invalid"),
    ],
)
def test_config_errors(n_train, n_val, message):
    with pytest.raises(ConfigError, match=message):
        make_splits(pools(), task(n_train=n_train, n_val=n_val), data_seed=0)


def test_an_empty_split_is_an_error():
    with pytest.raises(DataError, match=r"The val split of 'toy' is empty \(training pool 90, dev pool 1"):
        make_splits(pools(dev_per_class=(1, 0, 0)), task(), data_seed=0)


def test_real_rte_paper_settings(shared_glue):
    cfg = OmegaConf.load(CONF_DIR / "task" / "rte.yaml")
    cfg.data_dir = str(shared_glue / "RTE")
    data = read_task(cfg)
    full = make_splits(data, cfg, cfg.data_seed)
    assert len(full["train"]) == 2490
    assert labels(full["val"]) == {0: 73, 1: 65} and labels(full["test"]) == {0: 73, 1: 66}
    cfg.n_train, cfg.n_val = 1000, 1000
    few = make_splits(data, cfg, cfg.data_seed)
    assert labels(few["train"]) == {0: 500, 1: 500} and labels(few["val"]) == {0: 500, 1: 500}
    assert not ids(few["train"]) & ids(few["val"]) and len(few["test"]) == 277


def test_bbcnews_defaults():
    cfg = OmegaConf.load(CONF_DIR / "task" / "bbcnews.yaml")
    splits = make_splits(read_task(cfg), cfg, cfg.data_seed)
    assert labels(splits["train"]) == {c: 40 for c in range(5)}
    assert labels(splits["val"]) == {c: 20 for c in range(5)}
    assert len(splits["test"]) == 426
    texts = [e.text_a for split in splits.values() for e in split]
    assert len(texts) == len(set(texts))  # after de-duplication no article is in two splits


def test_n_test_takes_a_balanced_subset_of_the_test_split():
    data = pools()
    full = make_splits(data, task(n_train=30, n_val=13), data_seed=0)
    cfg = task(n_train=30, n_val=13)
    cfg.n_test = 9
    small = make_splits(data, cfg, data_seed=0)
    assert labels(small["test"]) == {0: 3, 1: 3, 2: 3}
    assert ids(small["test"]) <= ids(full["test"])
    # the train and val samples do not change when the test set is capped
    assert [id(e) for e in small["train"]] == [id(e) for e in full["train"]]
    assert [id(e) for e in small["val"]] == [id(e) for e in full["val"]]
