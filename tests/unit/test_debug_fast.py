"""`debug=fast` keeps every stage of every option to a handful of steps (bertlab/core/limits.py):
every option of every config group composed under debug=fast, each stage's real Trainer built
from it; one pre-training run in-process on the tiny model; the rule's arithmetic."""

import ast
import math

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.limits import capped_trainer_kwargs, capped_trials, check_limits
from bertlab.core.paths import CONF_DIR
from tests.helpers.e2e import REPO

HANDFUL = 8  # more optimizer steps (or search trials) than this in any stage of a debug=fast job fails
LIMITS = {"max_steps": 4, "max_val_batches": 2, "max_trials": 3}


def _calls_trainer(node) -> bool:
    f = node.func
    return (f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)) == "Trainer"


def test_every_trainer_of_the_package_is_built_where_the_limits_apply():
    """A stage added later is capped without edits only if it builds its Trainer through
    core/limits.lightning_trainer: any other Lightning Trainer in src/ fails here."""
    others = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sorted((REPO / "src").rglob("*.py"))
        if path != REPO / "src" / "bertlab" / "core" / "limits.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and _calls_trainer(node)
    ]
    assert not others, f"build these with bertlab.core.limits.lightning_trainer: {others}"


def _options() -> list[tuple[str, str]]:
    """(group, option) for every option of every group of conf/ (hydra/'s are Hydra's own)."""
    return [
        (group.name, path.stem)
        for group in sorted(CONF_DIR.iterdir())
        if group.is_dir() and group.name != "hydra"
        for path in sorted(group.glob("*.yaml"))
    ]


def _stage_trainers(cfg, folder) -> dict:
    """Every stage's real Trainer, as the run builds it (run/fit.py, pretrain/stage.py; the
    distill=self teacher is a fine-tuning run: the same Trainer)."""
    from bertlab.pretrain.settings import stage_settings
    from bertlab.pretrain.stage import stage_trainer
    from bertlab.run.trainer import build_trainer

    # the fine-tuning Trainer's length does not depend on the training set's size here: a large one
    trainers = {"fine-tuning": build_trainer(cfg, folder, 10**6, [], [])}
    for kind in cfg.pretrain.stages:  # each stage with its own settings (pretrain.per_stage)
        trainers[f"pretrain ({kind})"] = stage_trainer(
            stage_settings(cfg.pretrain, kind), cfg.trainer, "32-true", folder, [], [], cfg.get("limits")
        )
    return trainers


def test_every_option_of_every_group_runs_a_handful_of_steps_under_debug_fast(tmp_path):
    options = _options()
    assert {"pretrain", "distill", "augment", "hparams_search", "task", "model"} <= {g for g, _ in options}
    too_long = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for group, option in options:
            cfg = compose("train", overrides=["debug=fast", f"{group}={option}"], return_hydra_config=True)
            where = f"debug=fast {group}={option}"
            assert OmegaConf.to_container(cfg.limits) == LIMITS, where  # no option loosens them
            check_limits(cfg.limits)
            for stage, trainer in _stage_trainers(cfg, tmp_path).items():
                steps, val = trainer.max_steps, trainer.limit_val_batches
                if not 1 <= steps <= HANDFUL:
                    too_long.append(f"{where}: {stage} trains {steps} steps (-1: an epoch of its data)")
                if stage != "fine-tuning" and not (isinstance(val, int) and val <= LIMITS["max_val_batches"]):
                    too_long.append(f"{where}: {stage} validates on {val} of its held-out batches")
            if "n_trials" in cfg.hydra.sweeper:  # a search: its trials, each a run as above
                trials = capped_trials(cfg.limits, cfg.hydra.sweeper.n_trials)
                if trials > HANDFUL:
                    too_long.append(f"{where}: the search runs {trials} trials")
            if group == "task":  # fine-tuning's own data stays small (its validation is not capped)
                assert cfg.task.n_train <= 16 and cfg.task.n_val <= 8 and cfg.task.n_test <= 32, where
    assert not too_long, "\n".join(too_long)


def _pretrain(compose_train, tiny_bert_dir, tmp_path, *extra):
    from bertlab.pretrain.stage import further_pretrain
    from bertlab.run.fit import task_splits

    cfg = compose_train(
        f"model.name_or_path={tiny_bert_dir}",
        "debug=fast",
        "trainer.enable_progress_bar=false",
        f"pretrain.cache_dir={tmp_path / 'cache'}",
        *extra,
    )
    data = task_splits(cfg)
    return further_pretrain(cfg, data.drawn, tmp_path, pools=data.pools)[1]["stages"]


@pytest.mark.slow  # a pre-training run in-process over 1,677 documents
def test_dapt_trains_four_steps(compose_train, tiny_bert_dir, tmp_path):
    """In-process on the tiny model, over the default task's domain corpus: 1,677 BBC articles, of
    which a full epoch ran for more than 15 minutes with MiniLM (`debug=fast pretrain=dapt`)."""
    (dapt,) = _pretrain(compose_train, tiny_bert_dir, tmp_path, "pretrain=dapt")
    assert dapt["corpus"]["documents"] > 1000 and dapt["corpus"]["train_blocks"] > 1000
    assert dapt["steps"] == 4
    assert [v["step"] for v in dapt["validations"]] == [0, 4]  # before training, and at the end


@pytest.mark.slow  # three pre-training runs in-process
def test_a_capped_stage_is_never_reused_by_an_uncapped_run(compose_train, tiny_bert_dir, tmp_path):
    """The limits are part of the stage's cache key (pretrain/stage.py): the same limits reuse a
    stage, an uncapped run trains its own (a full epoch of the 16 drawn articles' blocks)."""
    (capped,) = _pretrain(compose_train, tiny_bert_dir, tmp_path, "pretrain=tapt")
    assert capped["steps"] == 4 and not capped["reused"]
    assert _pretrain(compose_train, tiny_bert_dir, tmp_path, "pretrain=tapt")[0]["reused"]
    (uncapped,) = _pretrain(compose_train, tiny_bert_dir, tmp_path, "pretrain=tapt", "limits=null")
    assert not uncapped["reused"] and uncapped["steps"] > 4


@pytest.mark.parametrize(
    ("asked", "capped"),
    [
        ({"max_steps": -1}, {"max_steps": 4, "limit_val_batches": 2}),  # by epochs: capped
        ({"max_steps": None, "limit_val_batches": 1}, {"max_steps": 4, "limit_val_batches": 1}),
        ({"max_steps": -1, "limit_val_batches": 0.25}, {"max_steps": 4, "limit_val_batches": 2}),
        ({"max_steps": 40, "limit_val_batches": 1.0}, {"max_steps": 40, "limit_val_batches": 1.0}),  # asked
    ],
)
def test_a_trainer_by_epochs_is_capped_and_a_step_count_of_its_own_is_kept(asked, capped):
    assert capped_trainer_kwargs(LIMITS, **asked) == capped
    assert capped_trainer_kwargs(None, **asked) == asked


def test_trials_are_capped():
    assert capped_trials(LIMITS, 40) == 3 and capped_trials(LIMITS, 2) == 2 and capped_trials(None, 40) == 40
    assert math.isfinite(capped_trials(LIMITS, 10**9))


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"max_step": 4}, "limits.max_step is not a key of limits; valid: max_steps, max_val_batches, max_trials"),
        ({"max_steps": 0}, r"limits.max_steps=0 is invalid: an integer >= 1 \(optimizer steps"),
        ({"max_trials": 2.5}, r"limits.max_trials=2.5 is invalid"),
        ({"max_val_batches": True}, r"limits.max_val_batches=True is invalid"),
    ],
)
def test_bad_limits_are_one_message(limits, message):
    with pytest.raises(ConfigError, match=message):
        check_limits(limits)


def test_a_step_count_of_the_runs_own_validates_across_it_under_debug_fast():
    """The validation interval follows the step count that runs: a run's own trainer.max_steps is
    kept by the limits (40 steps, 4 validations: every 10), a run by epochs is capped (4 steps)."""
    from bertlab.run.trainer import validation_interval

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        own = compose("train", overrides=["debug=fast", "trainer.max_steps=40", "trainer.num_evals=4"])
        by_epochs = compose("train", overrides=["debug=fast", "trainer.max_steps=-1", "trainer.num_evals=2"])
    assert validation_interval(32, own) == 10
    assert validation_interval(32, by_epochs) == 2  # min(epochs x 4 batches, 4 capped steps) // 2
