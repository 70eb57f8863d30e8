"""The shared rule primitives (core/values.py): each raises its exact message, a bool is never an
integer or a number, nan and inf are refused where the rules refuse them; the trainer keys' one table
(run/checks.py TRAINER_RULES) matches conf/trainer/default.yaml and is what build_trainer passes."""

import math

import pytest
from omegaconf import OmegaConf

from bertlab.core import devices
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from bertlab.core.values import (
    MAX_SEED,
    check_choice,
    check_count,
    check_flag,
    check_number,
    check_positive,
    check_probability,
    check_seed,
    full_key,
    is_count,
    is_integer,
    is_number,
    keys_under,
)
from bertlab.run import checks


def message(call) -> str:
    with pytest.raises(ConfigError) as err:
        call()
    return str(err.value)


def test_bools_are_neither_integers_nor_numbers():
    for test in (is_integer, is_number, is_count):
        assert not test(True) and not test(False)
    assert is_integer(3) and is_count(1) and not is_count(0) and is_count(0, minimum=0)
    assert is_number(1.5) and is_number(math.inf) and not is_number(math.inf, finite=True)
    assert not is_number(math.nan, finite=True) and not is_number("1")


@pytest.mark.parametrize("value", [0, -1, 1.0, "2", True, None])
def test_check_count_message(value):
    assert (
        message(lambda: check_count(value, "trainer.num_evals", "validations during training"))
        == f"trainer.num_evals={value} is invalid: it must be an integer >= 1 (validations during training)."
    )


def test_check_count_minimum_allow_and_own_wording():
    assert check_count(0, "data.num_workers", minimum=0) == 0
    assert message(lambda: check_count(-1, "k", minimum=0)) == "k=-1 is invalid: it must be an integer >= 0."
    assert check_count(None, "k", allow=(None, -1)) is None and check_count(-1, "k", allow=(None, -1)) == -1
    # a bool is not let through by an allowed value it equals (True == 1, False == 0)
    assert "k=True is invalid" in message(lambda: check_count(True, "k", allow=(1,)))
    assert message(lambda: check_count(0, "k", why="a positive integer (BERT used 10)")) == (
        "k=0 is invalid: a positive integer (BERT used 10)."
    )


@pytest.mark.parametrize("value", ["no", 1, 0, None])
def test_check_flag_message(value):
    assert message(lambda: check_flag(value, "resume")) == f"resume={value} is invalid; valid: true, false."


def test_check_flag_also():
    assert check_flag("warn", "trainer.deterministic", also=("warn",)) == "warn"
    assert check_flag(False, "trainer.deterministic", also=("warn",)) is False
    assert message(lambda: check_flag("yes", "trainer.deterministic", also=("warn",))) == (
        "trainer.deterministic=yes is invalid; valid: true, false, warn."
    )


def test_check_choice_message():
    check_choice("train", "pretrain.corpus", ("train", "train_pool"))
    assert message(lambda: check_choice("test", "pretrain.corpus", ("train", "train_pool"))) == (
        "pretrain.corpus=test is invalid; valid: train, train_pool."
    )


@pytest.mark.parametrize("value", [0, -1e-5, math.nan, math.inf, True, "1e-3", None])
def test_check_positive_refuses_nan_and_inf_by_default(value):
    assert message(lambda: check_positive(value, "pretrain.lr")) == (
        f"pretrain.lr={value} is invalid: it must be a positive number."
    )


def test_check_positive_not_finite_lets_inf_through_but_never_nan():
    assert check_positive(math.inf, "approach.head_learning_rate", "it must be a number > 0", finite=False) == math.inf
    assert message(lambda: check_positive(math.nan, "a.lr", "it must be a number > 0", finite=False)) == (
        "a.lr=nan is invalid: it must be a number > 0."
    )


@pytest.mark.parametrize(
    "value, high_open, ok",
    [(0, True, True), (0.5, True, True), (1, True, False), (1, False, True), (-0.1, False, False)]
    + [(math.nan, False, False), (math.inf, False, False), (True, False, False)],
)
def test_check_probability_bounds(value, high_open, ok):
    def call():
        return check_probability(value, "aux.mlm_probability", "it must be a number from 0 to 1", high_open=high_open)

    if ok:
        assert call() == value
    else:
        assert message(call) == f"aux.mlm_probability={value} is invalid: it must be a number from 0 to 1."


def test_check_number_open_bounds_and_allow():
    def fraction(v):
        return check_number(
            v, "pretrain.held_out", "strictly between 0 and 1", low=0, high=1, low_open=True, high_open=True
        )

    assert fraction(0.1) == 0.1
    for bad in (0, 1, math.nan):
        assert (
            message(lambda bad=bad: fraction(bad)) == f"pretrain.held_out={bad} is invalid: strictly between 0 and 1."
        )
    assert check_number(None, "trainer.gradient_clip_val", "a number >= 0", low=0, allow=(None,)) is None
    assert "=inf is invalid" in message(lambda: check_number(math.inf, "k", "a number >= 0", low=0))


def test_check_seed_range():
    assert check_seed(0, "pretrain.seed") == 0 and check_seed(MAX_SEED, "pretrain.seed") == MAX_SEED
    for bad in (-3, MAX_SEED + 1, 1.0, True):
        assert message(lambda bad=bad: check_seed(bad, "pretrain.seed")) == (
            f"pretrain.seed={bad} is invalid: it must be an integer from 0 to 2**32 - 1."
        )


def test_keys_under_names_the_full_key_only_within():
    assert full_key("optimizer.lr") == "optimizer.lr"
    with keys_under("pretrain"):
        assert full_key("optimizer.lr") == "pretrain.optimizer.lr"
        with pytest.raises(ConfigError, match=r"^pretrain\.optimizer\.lr=0 is invalid"):
            from bertlab.optim.optimizer import check_optimizer

            check_optimizer({"name": "adamw", "lr": 0})
    assert full_key("schedule") == "schedule"


def test_every_trainer_key_has_exactly_one_rule_and_every_rule_a_key():
    yaml_keys = list(OmegaConf.load(CONF_DIR / "trainer" / "default.yaml"))
    assert len(yaml_keys) == len(set(yaml_keys))
    assert set(yaml_keys) == set(checks.TRAINER_RULES)
    for key, row in checks.TRAINER_RULES.items():
        # a key that is not the Trainer's own argument says which code reads it
        assert row.to_trainer is not None or row.read_by, key


def test_build_trainer_passes_what_the_table_says():
    t = OmegaConf.load(CONF_DIR / "trainer" / "default.yaml")
    t.max_steps = 7
    kwargs = checks.trainer_arguments(t)
    assert kwargs["max_steps"] == 7 and kwargs["max_epochs"] == -1  # a step budget is not cut by max_epochs
    assert kwargs["accelerator"] == devices.resolve_accelerator("auto")
    assert kwargs["precision"] == devices.resolve_precision("auto")
    for key in ("num_evals", "compile", "gradient_checkpointing", "diagnostics_every_n_steps"):
        assert key not in kwargs
    for key in ("accumulate_grad_batches", "gradient_clip_val", "limit_val_batches", "deterministic"):
        assert kwargs[key] == t[key]
    t.max_steps = None
    assert checks.trainer_arguments(t)["max_steps"] == -1 and checks.trainer_arguments(t)["max_epochs"] == 3


def test_the_trainer_and_the_record_resolve_the_accelerator_as_the_check_does():
    from bertlab.run import distill, job

    # the record (job.py), the saved teacher's device (distill.py) and the check use the one resolver
    assert job.resolve_accelerator is distill.resolve_accelerator is devices.resolve_accelerator
    assert checks.devices is devices
    assert devices.resolve_precision("16-mixed") == "16-mixed"
