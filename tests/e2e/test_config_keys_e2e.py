"""Config keys nothing reads are refused, in every group, before anything loads or is written;
every key the configs define, under every group option and preset, is accepted."""

import pytest
from omegaconf import OmegaConf

from bertlab.config.keys import check_overrides
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message, csv_task
from tests.helpers.e2e import TINY, results_under, run_train

UNKNOWN_KEYS = {
    # group: (override, fragments of the one message)
    "root_added": ("+reinitt=3", ["'reinitt'", "nothing reads it", "Did you mean reinit? Use reinit=3."]),
    # Hydra's own message here was "To append to your config use +reinitt=3": the wrong fix
    "root_set": ("reinitt=3", ["reinitt=3: unknown config key 'reinitt'", "Use reinit=3."]),
    "root_no_near_key": (
        "+foo=1",
        [
            "'foo'",
            "nothing reads it",
            "Valid keys at the top level: approach, augment, aux, callbacks, data, distill, features",
        ],
    ),
    "trainer": ("+trainer.max_epoch=5", ["Use trainer.max_epochs=5."]),
    "data": ("+data.batchsize=8", ["Use data.batch_size=8."]),
    "model": ("+model.dropuot=0.2", ["Use model.dropout=0.2."]),
    "task": ("+task.n_trian=100", ["Use task.n_train=100."]),
    "optimizer": ("++optimizer.beta=[0.9,0.98]", ["Use optimizer.betas=[0.9,0.98]."]),
    # a key of another option of the group: say which option has it
    "schedule": (
        "schedule.power=2",
        ["'schedule.power'", "It is a key of schedule=polynomial, not of schedule=linear"],
    ),
    "logger": ("logger.wandb.project=x", ["It is a key of logger=wandb, not of logger=csv"]),  # debug=fast: csv
    "removed": (
        "~trainer.gradient_clip_val",
        ["removing a config key is not supported", "trainer.gradient_clip_val=<value>"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(UNKNOWN_KEYS))
def test_unknown_key_is_refused_before_anything_is_written(tmp_path, case):
    override, fragments = UNKNOWN_KEYS[case]
    proc = run_train(*TINY, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, *fragments)
    assert "To append to your config" not in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before Hydra made the run folder
    assert_nothing_half_written(tmp_path / "run")


@pytest.mark.slow
def test_unknown_key_in_a_multirun_refuses_the_whole_sweep(tmp_path):
    proc = run_train("-m", *TINY, "seed=0,1", "+reinitt=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_one_clear_message(proc, "+reinitt=1,2: unknown config key 'reinitt'", "Did you mean reinit?")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_keys_an_option_adds_are_valid_with_that_option(tmp_path):
    # task=csv's own keys, and schedule=polynomial's, on the real entry point
    overrides = csv_task(tmp_path / "data") + [
        "task.n_train=null",
        "task.n_val=2",
        "task.columns=null",
        "schedule=polynomial",
        "schedule.power=2.0",
    ]
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_key_must_exist_under_every_option_of_a_swept_group():
    with pytest.raises(ConfigError, match=r"'schedule.power' with schedule=linear;"):
        check_overrides(["schedule=polynomial,linear", "schedule.power=2"], CONF_DIR)
    check_overrides(["schedule=polynomial,cosine", "schedule.warmup_steps=3"], CONF_DIR)


def leaf_keys(node, prefix=""):
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        yield from leaf_keys(value, path) if isinstance(value, dict) and value else [path]


def group_options():
    for group in sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"):
        for option in sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")):
            yield f"{group}={option}"


@pytest.mark.parametrize("choice", list(group_options()))
def test_every_key_of_every_config_option_is_accepted(choice):
    """Each group option and preset (experiment, method, debug) composes, and setting any key it
    defines is accepted (the check compares keys only; the values here are placeholders)."""
    group, option = choice.split("=")
    own = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{option}.yaml"), resolve=False)
    own.pop("defaults", None)
    if "# @package _global_" not in (CONF_DIR / group / f"{option}.yaml").read_text():  # those hold full paths
        own = {group: own} if own else {}  # logger=many / none: entries from its defaults, or none
    keys = list(leaf_keys(own)) + list(leaf_keys(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "train.yaml"))))
    keys = [k for k in keys if not k.startswith(("hydra", "defaults"))]
    check_overrides([choice] + [f"{key}=null" for key in keys], CONF_DIR)


def forked_optimizer(conf_dir):
    """A fork's own optimizer option, in its own config dir (added to Hydra's search path)."""
    (conf_dir / "optimizer").mkdir(parents=True)
    (conf_dir / "optimizer" / "sgd.yaml").write_text(
        "_target_: torch.optim.SGD\n_partial_: true\nname: sgd\nlr: 0.05\nmomentum: 0.9\nweight_decay: 0.0\n"
    )
    return f"hydra.searchpath=[file://{conf_dir}]"


@pytest.mark.slow
def test_a_forked_optimizer_yaml_trains_and_its_keys_are_accepted(tmp_path):
    """Forking the optimizer is a yaml file: its `_target_` and kwargs are valid keys, and it trains."""
    searchpath = forked_optimizer(tmp_path / "conf")
    check_overrides(
        ["optimizer=sgd", "optimizer.momentum=0.5", "optimizer._target_=torch.optim.SGD", searchpath], CONF_DIR
    )
    with pytest.raises(ConfigError, match="optimizer.momentum"):  # not a key of the Adam family's options
        check_overrides(["optimizer=adamw", "optimizer.momentum=0.5", searchpath], CONF_DIR)
    proc = run_train(*TINY, searchpath, "optimizer=sgd", "optimizer.momentum=0.5", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = results_under(tmp_path / "run")["."]
    assert result["status"] == "ok" and result["settings"]["optimizer"] == "sgd"


@pytest.mark.slow
def test_a_bad_target_is_one_message_before_anything_loads(tmp_path):
    proc = run_train(*TINY, "optimizer._target_=torch.optim.Nope", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, "optimizer._target_='torch.optim.Nope' cannot be imported", "valid")


@pytest.mark.parametrize("group, key", [("task", "select_metric"), ("task", "sampling"), ("trainer", "compile")])
def test_an_own_config_that_leaves_out_a_key_is_one_message(compose_train, group, key):
    """Defaults live only in conf/: a fork's own task or trainer YAML without a key every packaged
    option sets is refused up front, naming the key and the file to copy (not an OmegaConf traceback
    later, when the code first reads it)."""
    from omegaconf import open_dict

    from bertlab.run.checks import check_config

    cfg = compose_train("task=rte", "task.data_dir=/nowhere")
    with open_dict(cfg):
        del cfg[group][key]
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    assert f"{group}.{key} not set" in str(err.value) and f"conf/{group}/" in str(err.value)


@pytest.mark.slow
def test_an_own_task_yaml_without_a_key_fails_with_one_message(tmp_path):
    conf = tmp_path / "conf" / "task"
    conf.mkdir(parents=True)
    own = OmegaConf.load(CONF_DIR / "task" / "csv.yaml")
    del own["select_metric"]
    OmegaConf.save(own, conf / "mine.yaml")
    proc = run_train(
        *TINY, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "task=mine", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert_one_clear_message(proc, "task.select_metric not set", "conf/task/")
