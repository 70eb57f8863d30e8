"""task.k_shot (data/k_shot.py): LM-BFF's K-shot draw, against LM-BFF's own script's steps; its
rules (K per class, dev set untouched, data seed alone decides); regression bins; the refusals;
the protocol=lmbff preset."""

from collections import Counter

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.paths import CONF_DIR
from bertlab.data.k_shot import LMBFF_SEEDS, check_k_shot, k_shot_indices, regression_threshold
from bertlab.data.readers import Example, read_task
from bertlab.data.sampling import make_splits
from tests.conftest import SHARED_GLUE

GLUE = SHARED_GLUE


def task(k=4, problem="classification", labels=("a", "b", "c"), **extra):
    return OmegaConf.create(
        {
            "name": "toy",
            "problem": problem,
            "labels": list(labels) if labels else None,
            "n_train": None,
            "n_val": None,
            "n_test": None,
            "k_shot": k,
            "sampling": "balanced",
            **extra,
        }
    )


def pools(train_per_class=(40, 30, 20), dev_per_class=(11, 10, 9)):
    def pool(sizes, tag):
        return [Example(f"{tag} {label} {i}", None, label) for label, n in enumerate(sizes) for i in range(n)]

    return {"train": pool(train_per_class, "train"), "dev": pool(dev_per_class, "dev")}


def labels(examples):
    return Counter(e.label for e in examples)


def test_k_per_class_in_train_and_val_disjoint_and_the_dev_pool_is_the_whole_test_set():
    data = pools()
    splits = make_splits(data, task(k=4), data_seed=13)
    assert labels(splits["train"]) == {0: 4, 1: 4, 2: 4}
    assert labels(splits["val"]) == {0: 4, 1: 4, 2: 4}
    train_ids, val_ids = {id(e) for e in splits["train"]}, {id(e) for e in splits["val"]}
    assert not train_ids & val_ids
    pool_ids = {id(e) for e in data["train"]}
    assert train_ids <= pool_ids and val_ids <= pool_ids  # never a dev example
    assert [id(e) for e in splits["test"]] == [id(e) for e in data["dev"]]


def test_the_data_seed_alone_decides_the_draw():
    data = pools()
    first = make_splits(data, task(k=4), data_seed=21)
    again = make_splits(data, task(k=4, sampling="balanced"), data_seed=21)
    other = make_splits(data, task(k=4), data_seed=42)
    assert first == again
    assert first["train"] != other["train"]


def test_a_larger_k_keeps_lmbffs_order_so_the_smaller_draw_is_its_prefix_per_class():
    """LM-BFF's rule: one shuffle of the whole file, the first K of each label: K=4's training
    examples are the first 4 of K=8's, class by class."""
    data = pools()
    small, large = (make_splits(data, task(k=k), data_seed=87)["train"] for k in (4, 8))
    for label in range(3):
        assert [e for e in small if e.label == label] == [e for e in large if e.label == label][:4]


def lmbff_reference(lines: list[str], label_of, k: int, seed: int) -> tuple[list[str], list[str]]:
    """LM-BFF's tools/generate_k_shot_data.py, its steps for a GLUE file (header removed)."""
    np.random.seed(seed)
    np.random.shuffle(lines)
    label_list = {}
    for line in lines:
        label_list.setdefault(label_of(line), []).append(line)
    train = [line for label in label_list for line in label_list[label][:k]]
    dev = [line for label in label_list for line in label_list[label][k : k * 2]]
    return train, dev


@pytest.mark.parametrize("name,folder", [("rte", "RTE"), ("mrpc", "MRPC")])
def test_the_draw_is_the_very_lines_lmbffs_script_writes(name, folder):
    if not (GLUE / folder / "train.tsv").is_file():
        pytest.skip(f"the GLUE {folder} files are not in {GLUE}")
    cfg = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
    with open_dict(cfg):
        cfg.data_dir = str(GLUE / folder)
    pool = read_task(cfg)["train"]
    lines = (GLUE / folder / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[1:]
    assert len(lines) == len(pool)
    # MRPC's label is its first column, RTE's its last (get_label in the script)
    label_of = (lambda line: line.split("\t")[0]) if name == "mrpc" else (lambda line: line.strip().split("\t")[-1])
    for seed in LMBFF_SEEDS:
        train, val = k_shot_indices(pool, cfg, 16, seed)
        ref_train, ref_dev = lmbff_reference(list(lines), label_of, 16, seed)
        assert [lines[i] for i in train] == ref_train, seed
        assert [lines[i] for i in val] == ref_dev, seed


def test_regression_bins_at_the_midpoint_of_the_score_range_as_lmbff_bins_stsb_at_2_5():
    scores = [0.0, 0.4, 1.2, 2.4, 2.5, 3.0, 4.2, 5.0] * 5
    pool = [Example(f"s{i}", f"t{i}", s) for i, s in enumerate(scores)]
    assert regression_threshold(scores) == 2.5
    train, val = k_shot_indices(pool, task(k=3, problem="regression", labels=None), 3, 13)
    assert len(train) == len(val) == 6
    low = lambda idx: sum(pool[i].label < 2.5 for i in idx)  # noqa: E731
    assert low(train) == 3 and low(val) == 3  # K per bin, 2.5 itself in the upper bin ("< 2.5")


def test_a_class_with_fewer_than_2k_examples_is_one_message_naming_it():
    with pytest.raises(DataError) as err:
        make_splits(pools(train_per_class=(40, 30, 7)), task(k=4), data_seed=13)
    message = str(err.value)
    assert "task.k_shot=4 needs 8 training examples of every class" in message
    assert "'c': 7" in message and "lower task.k_shot to 3 or less" in message


def test_a_label_absent_from_the_training_file_is_named():
    data = pools(train_per_class=(40, 30))
    with pytest.raises(DataError, match=r"'c': 0.*every class needs examples in the training file"):
        make_splits(data, task(k=4), data_seed=13)


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"k_shot": 0}, r"task.k_shot=0 is invalid: it must be a positive integer"),
        ({"k_shot": True}, r"task.k_shot=True is invalid"),
        ({"k_shot": "16"}, r"task.k_shot=16 is invalid"),
        ({"problem": "token_classification"}, r"task.problem=token_classification \('toy'\) has no class per"),
        ({"problem": "multiple_choice"}, r"multiple_choice .* use task.n_train and task.n_val"),
        ({"problem": "question_answering"}, r"question_answering"),
        ({"sampling": "paper"}, r"task.sampling=paper is the revisit-bert code's 1k draw"),
    ],
)
def test_bad_settings_are_refused_with_one_message(changes, match):
    cfg = task(k=16)
    cfg.update(changes)
    with pytest.raises(ConfigError, match=match):
        check_k_shot(cfg)


def test_n_train_and_n_val_are_said_to_be_unused(said):
    make_splits(pools(), task(k=2, n_train=200, n_val=100), data_seed=0)
    assert "task.n_train=200 and task.n_val=100 not used" in said()


def test_n_test_still_takes_a_subset_of_the_test_set_the_same_for_every_data_seed():
    splits = make_splits(pools(), task(k=2, n_test=6), data_seed=0)
    assert labels(splits["test"]) == {0: 2, 1: 2, 2: 2}
    assert all(make_splits(pools(), task(k=2, n_test=6), data_seed=s)["test"] == splits["test"] for s in (13, 21))


def test_a_task_with_its_own_test_pool_tests_on_it():
    data = pools()
    data["test"] = [Example("own test", None, 0)]
    assert make_splits(data, task(k=2), data_seed=0)["test"] == data["test"]


def test_every_task_config_has_the_key_and_check_config_refuses_it_where_no_class_exists():
    for path in sorted((CONF_DIR / "task").glob("*.yaml")):
        cfg = OmegaConf.load(path)
        assert "k_shot" in cfg and cfg.k_shot is None, path.name
        with open_dict(cfg):
            cfg.k_shot = 16
        if cfg.problem in ("classification", "regression"):
            check_k_shot(cfg)
        else:
            with pytest.raises(ConfigError, match="has no class per example"):
                check_k_shot(cfg)


def test_the_lmbff_preset_sets_k16_the_first_seed_and_sweeps_the_five():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["protocol=lmbff", "task=rte"], return_hydra_config=True)
    assert cfg.task.k_shot == 16 and cfg.task.data_seed == 13
    assert cfg.hydra.sweeper.params["task.data_seed"] == ",".join(map(str, LMBFF_SEEDS))
