"""Callbacks and loggers as named `_target_` entries (conf/callbacks/, conf/logger/, core/entries.py):
a fork adds one with one YAML in its own config folder, or on the command line, without touching
src/ or conf/; a bad entry is one message before anything loads; keep_best cannot be dropped and
resume is built last."""

import subprocess

import pytest

from bertlab.config.keys import check_overrides
from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR
from tests.helpers.bad_input import assert_nothing_half_written, assert_one_clear_message
from tests.helpers.e2e import REPO, TINY
from tests.helpers.inprocess import run_train

# 20 steps, a validation every 2: an early stop shows as fewer steps and validations
LONGER = ["limits=null", "trainer.max_steps=20", "trainer.num_evals=10", "logger=csv"]

EARLY_STOP_YAML = """\
# a fork's recipe: the paper's callbacks, and EarlyStopping after them (before the resume checkpoint)
defaults:
  - default
early_stop:
  _target_: lightning.pytorch.callbacks.EarlyStopping
  monitor: val/accuracy
  mode: max
  patience: 0
  min_delta: 2.0            # no accuracy improves by 2: stops at the second validation
  check_on_train_epoch_end: false
"""

FORK_LOGGER_YAML = """\
# a fork's recipe: metrics.csv and Lightning's own CSVLogger, built with its own keys
defaults:
  - csv
fork_csv:
  _target_: lightning.pytorch.loggers.CSVLogger
  save_dir: ???
  name: fork
"""


def tracked_state() -> str:
    """git's view of src/ and conf/: what a recipe must leave as it was."""
    return subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "conf"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def recipe(tmp_path, relative: str, text: str) -> str:
    """Write a fork's config folder holding one file; its hydra.searchpath override."""
    conf = tmp_path / "fork_conf"
    (conf / relative).parent.mkdir(parents=True)
    (conf / relative).write_text(text)
    assert [p for p in conf.rglob("*") if p.is_file()] == [conf / relative]  # the recipe is one YAML
    return f"hydra.searchpath=[file://{conf}]"


@pytest.mark.slow
def test_a_callback_recipe_is_one_yaml_and_acts(tmp_path):
    before = tracked_state()
    searchpath = recipe(tmp_path, "callbacks/early_stop.yaml", EARLY_STOP_YAML)
    proc = run_train(*TINY, *LONGER, searchpath, "callbacks=early_stop", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = proc.record
    assert record["status"] == "ok"
    # EarlyStopping stopped the run at its second validation (step 4 of 20)
    assert record["global_steps"] == 4 and record["validations"] == 2, record
    # the paper's callbacks still ran: keep-best, throughput, diagnostics
    assert record["best_step"] in (2, 4) and record["train_samples_per_s"] and record["diagnostics"]
    assert tracked_state() == before


@pytest.mark.slow
def test_a_callback_on_the_command_line_acts(tmp_path):
    proc = run_train(
        *TINY,
        *LONGER,
        "+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStopping",
        "+callbacks.early_stop.monitor=val/accuracy",
        "+callbacks.early_stop.mode=max",
        "+callbacks.early_stop.patience=0",
        "+callbacks.early_stop.min_delta=2.0",
        "+callbacks.early_stop.check_on_train_epoch_end=false",
        "~callbacks.throughput",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = proc.record
    assert record["global_steps"] == 4 and record["validations"] == 2, record
    # ~callbacks.throughput: its fields are null, the schema the same
    assert "train_samples_per_s" in record and record["train_samples_per_s"] is None


@pytest.mark.slow
def test_a_logger_recipe_is_one_yaml_and_logs(tmp_path):
    before = tracked_state()
    searchpath = recipe(tmp_path, "logger/fork.yaml", FORK_LOGGER_YAML)
    logs = tmp_path / "fork_logs"
    proc = run_train(
        *TINY, searchpath, "logger=fork", f"logger.fork_csv.save_dir={logs}", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (written,) = logs.glob("fork/version_*/metrics.csv")
    assert "val/accuracy" in written.read_text().splitlines()[0]
    assert (tmp_path / "run" / "metrics.csv").is_file()  # the report's, beside any logger
    assert tracked_state() == before


BAD_ENTRIES = {
    # case: (overrides, fragments of the one message)
    "no_import": (
        ["+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStoping"],
        ["callbacks.early_stop._target_='lightning.pytorch.callbacks.EarlyStoping' cannot be imported", "valid"],
    ),
    "unknown_key": (
        ["+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.early_stop.monitr=x"],
        ["callbacks.early_stop has unknown key(s) ['monitr']", "did you mean callbacks.early_stop.monitor?"],
    ),
    "no_target": (["+callbacks.early_stop.monitor=x"], ["callbacks.early_stop=", "has no _target_"]),
    "keep_best_dropped": (["~callbacks.keep_best"], ["callbacks.keep_best cannot be dropped"]),
    "logger_no_import": (
        ["+logger.aim._target_=aim_missing.AimLogger"],
        ["logger.aim._target_='aim_missing.AimLogger' cannot be imported"],
    ),
    "own_key_typo": (["+callbacks.diagnostics.every_n_step=3"], ["callbacks.diagnostics has unknown key(s)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_a_bad_entry_is_one_message_before_anything_loads(tmp_path, case):
    overrides, fragments = BAD_ENTRIES[case]
    proc = run_train(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_clear_message(proc, *fragments)
    assert_nothing_half_written(tmp_path / "run")
    assert "val/" not in proc.stdout  # refused before training


def test_fork_callbacks_come_after_ours_and_before_resume(compose_train):
    from bertlab.callbacks.entries import callback_entries

    cfg = compose_train("+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStopping")
    order = list(callback_entries(cfg))
    assert order == [
        "keep_best",
        "throughput",
        "diagnostics",
        "console",
        "prior_wd",
        "lr_monitor",
        "early_stop",
        "resume",
    ]
    assert list(callback_entries(compose_train("callbacks.resume=null")))[-1] == "lr_monitor"


@pytest.mark.parametrize(
    "arguments",
    [
        ["+callbacks.early_stop._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.early_stop.mode=max"],
        ["++callbacks.early_stop._target_=x.Y"],
        ["~callbacks.throughput", "callbacks.resume=null"],
        ["+callbacks.diagnostics.extra=1"],  # checked against the target before the run
        ["logger=none", "+logger.aim._target_=aim.pytorch_lightning.AimLogger", "+logger.aim.repo=x"],
        ["logger=many", "~logger.wandb", "logger.mlflow.experiment=x"],
    ],
)
def test_the_key_check_lets_entries_be_added_and_dropped(arguments):
    check_overrides(arguments, CONF_DIR)


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["callbacks.early_stop._target_=x.Y"], "A new entry is added with +: +callbacks.early_stop._target_=x.Y"),
        (["callbacks.throughpt=null"], "Did you mean callbacks.throughput?"),
        (["callbacks.diagnostics.every_n_step=3"], "callbacks.diagnostics's keys: _partial_, _target_, every_n_steps"),
        (["~callbacks.diagnostics.every_n_steps"], "removing a config key is not supported"),
        (["+trainer.max_epoch=5"], "Use trainer.max_epochs=5."),  # typos elsewhere as before
        (["logger=csv", "logger.wandb.mode=offline"], "It is a key of logger=wandb, not of logger=csv"),
    ],
)
def test_the_key_check_still_refuses_typos(arguments, fragment):
    with pytest.raises(ConfigError) as err:
        check_overrides(arguments, CONF_DIR)
    assert fragment in str(err.value)


def test_a_saved_run_of_the_former_logger_shape_still_checks_and_reports(tmp_path):
    """`.hydra/config.yaml` of a run saved before the entries: `logger.name` beside every logger's
    keys. `bertlab evaluate` re-checks it (check_config's check_logger); `bertlab report --wandb`
    reads its project and entity; the new shape's are read from logger.wandb."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from bertlab.loggers.choice import check_logger, logger_names
    from bertlab.report.wandb_run import _logger_settings

    former = {"name": ["wandb", "mlflow"], "project": "p", "entity": "e", "mode": None}
    former |= {"experiment": "bertlab", "tracking_uri": None}
    check_logger(OmegaConf.create(former))
    assert logger_names(OmegaConf.create(former)) == ["wandb", "mlflow"]
    for shape, expected in [(former, ("p", "e")), ({"wandb": {"project": "q", "entity": None}}, ("q", None))]:
        run = tmp_path / str(len(expected[0])) / expected[0]
        (run / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create({"logger": shape}), run / ".hydra" / "config.yaml")
        report = SimpleNamespace(tasks=[SimpleNamespace(runs=[SimpleNamespace(path=str(run))])])
        assert _logger_settings(report) == expected
