"""Start-up at the import floor (docs/speed.md): what a run does before its first step, without timings.

The guards: the config is composed twice (the key check, then Hydra's run), not a third time for
`hydra.mode`, and that mode is the one Hydra would have read; a W&B run imports wandb's module
before torch; the problems a run does not train are not imported; the readers read the label
rules once per file.
"""

import json
import subprocess
import sys

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from bertlab.config.keys import NOT_COMPOSED, check_command_line, check_overrides
from bertlab.core.paths import CONF_DIR
from bertlab.run.entry import WANDB_INIT_IMPORTS, hydra_mode_known, logs_to_wandb
from tests.helpers.e2e import REPO, TINY, train_env

# the problems a sequence-classification run does not use, with their readers, encoders and
# metrics: imported by problem_of on demand (problems/registry.py)
LAZY = (
    "bertlab.problems.token_classification",
    "bertlab.problems.multiple_choice",
    "bertlab.problems.question_answering",
    "bertlab.problems.token_classification.reader",
    "bertlab.problems.multiple_choice.reader",
    "bertlab.problems.question_answering.encoder",
    "bertlab.problems.question_answering.metrics",
    "bertlab.problems.token_classification.metrics",
)

# `python train.py ARGS` up to the first training batch, recording each composition of the config
# (run mode, whether sweep overrides were validated: Hydra.get_mode's are not) and sys.modules then
# `python train.py ARGS` up to the first training batch, recording each composition of the config
# (run mode, whether sweep overrides were validated: Hydra.get_mode's are not) and sys.modules then,
# in import order. The first-step hook is installed once the entry has done its early imports, so
# that the probe itself imports nothing heavy (torch) before the entry does.
PROBE = """
import json, os, runpy, sys
from hydra._internal.hydra import Hydra
import bertlab.run.entry as entry
out, calls, compose, early = sys.argv[1], [], Hydra.compose_config, entry.import_wandb_first
def counted(self, config_name, overrides, run_mode, *args, **kwargs):
    calls.append([str(run_mode), kwargs.get("validate_sweep_overrides", True)])
    return compose(self, config_name, overrides, run_mode, *args, **kwargs)
def first_step(self, *_):
    modules = list(sys.modules)
    open(out, "w").write(json.dumps({"composed": calls, "modules": sorted(modules), "modules_in_order": modules}))
    os._exit(0)
def then_hook(composition):
    early(composition)
    from bertlab.callbacks.throughput import TrainThroughput
    TrainThroughput.on_train_batch_start = first_step
Hydra.compose_config = counted
entry.import_wandb_first = then_hook
sys.argv = ["train.py", *sys.argv[2:]]
runpy.run_path("train.py", run_name="__main__")
"""


def probe_run(tmp_path, *arguments, env=None) -> dict:
    out = tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *TINY, *arguments, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO,
        env=train_env(env),
        capture_output=True,
        text=True,
        timeout=900,  # a loaded 2-core machine has taken 5 minutes for one such run
    )
    assert proc.returncode == 0 and out.exists(), proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_a_run_composes_its_config_twice_and_imports_no_other_problem(tmp_path):
    """With a key override the check composes, and Hydra takes the mode from it: 2 compositions,
    not 3 (before: the check, Hydra.get_mode's, the run's)."""
    seen = probe_run(tmp_path, "logger=csv", f"data.token_cache={tmp_path / 'tokens'}", "seed=3")
    assert seen["composed"] == [["RunMode.RUN", True], ["RunMode.RUN", True]]  # the check's, the run's
    assert "bertlab.training.finetuner" in seen["modules"]  # the probe ran inside training
    assert sorted(set(LAZY) & set(seen["modules"])) == []
    assert "wandb" not in seen["modules"]  # logger=csv


@pytest.mark.slow
def test_a_wandb_run_imports_wandbs_init_module_before_torch(tmp_path):
    """Without a key override the check still composes (Hydra.get_mode does not: 2 compositions),
    and its logger=wandb makes the run import wandb's launch-inputs module first (entry.py)."""
    seen = probe_run(tmp_path, "logger=wandb", env={"WANDB_MODE": "offline"})
    assert seen["composed"] == [["RunMode.RUN", True], ["RunMode.RUN", True]]
    order = seen["modules_in_order"]
    assert order.index(WANDB_INIT_IMPORTS) < order.index("torch")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["seed=1"], None),
        (["task=rte", "seed=1"], None),
        (["hydra.mode=MULTIRUN", "seed=1"], RunMode.MULTIRUN),
        (["hydra.mode=RUN", "optimizer=adamw,bertadam", "seed=1"], RunMode.RUN),
        (["experiment=multirun_mode", "seed=1"], RunMode.MULTIRUN),  # a fork's config that sets it
    ],
)
def test_the_mode_handed_to_hydra_is_the_one_it_reads(tmp_path, arguments, expected):
    """check_overrides' hydra.mode equals Hydra.get_mode's answer for the same command line,
    a config of a fork's own (found through the search path, as --config-dir adds it) included."""
    fork = tmp_path / "fork" / "experiment"
    fork.mkdir(parents=True)
    (fork / "multirun_mode.yaml").write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n")
    overrides = [*arguments, f"hydra.searchpath=[file://{tmp_path / 'fork'}]"]
    mode = check_overrides(overrides, CONF_DIR).mode
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        hydras = GlobalHydra.instance().hydra.get_mode(config_name="train", overrides=overrides)
    assert mode == hydras == expected


def test_no_mode_is_handed_over_when_the_check_composed_nothing_or_elsewhere():
    assert check_command_line(["--help"], CONF_DIR) is NOT_COMPOSED
    assert check_command_line(["model=nosuchmodel"], CONF_DIR) is NOT_COMPOSED  # Hydra's own message says it
    # Hydra composes from another folder than the check: its mode is Hydra's to read
    assert check_command_line(["--config-path", str(CONF_DIR), "seed=1"], CONF_DIR) is NOT_COMPOSED
    composed = check_command_line(["model=tiny"], CONF_DIR)  # no key override: composed all the same
    assert composed.mode is None and composed.config["model"]["name"] == "tiny" and composed.key_overrides == []
    assert check_command_line(["seed=1", "+tags=[a]"], CONF_DIR).key_overrides == ["seed", "tags"]


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        ([], {}, True),  # the default: logger=wandb
        (["debug=fast"], {}, False),  # its logger is csv
        (["logger=csv"], {}, False),
        (["logger=many"], {}, True),  # wandb among its names
        (["logger=wandb"], {"WANDB_MODE": "disabled"}, False),
        (["logger=wandb", "logger.wandb.mode=offline"], {}, False),  # a logger key override: nothing early
        (["logger=many", "~logger.wandb"], {}, False),
    ],
)
def test_which_runs_import_wandb_first(monkeypatch, arguments, environment, expected):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert logs_to_wandb(check_command_line(arguments, CONF_DIR)) is expected
    assert logs_to_wandb(NOT_COMPOSED) is False


def test_hydra_mode_known_answers_while_the_app_runs_and_puts_hydra_back():
    from hydra._internal.hydra import Hydra

    own = Hydra.get_mode
    with hydra_mode_known(RunMode.MULTIRUN):
        assert Hydra.get_mode(None, "train", []) == RunMode.MULTIRUN
    assert Hydra.get_mode is own
    with hydra_mode_known(NOT_COMPOSED):
        assert Hydra.get_mode is own
    with pytest.raises(SystemExit), hydra_mode_known(None):
        raise SystemExit(1)  # a failed run (Hydra exits) puts it back too
    assert Hydra.get_mode is own


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "glue" / "RTE").is_dir(), reason="no GLUE RTE files beside the repository"
)
def test_the_readers_read_the_task_keys_once_per_file_not_per_row():
    """read_local reads task.problem and task.label_field once (LabelRule), not per row and key:
    counted through a DictConfig that records each lookup."""
    from hydra import compose

    from bertlab.data import readers

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["task=rte", f"task.data_dir={REPO.parent / 'shared' / 'glue' / 'RTE'}"])
    looked_up = []
    task = cfg.task

    class Counting:
        def __getattr__(self, key):
            looked_up.append(key)
            return getattr(task, key)

        def __getitem__(self, key):
            looked_up.append(key)
            return task[key]

    pools = readers.read_local(Counting())
    assert len(pools["train"]) == 2490 and len(pools["dev"]) == 277
    # per file, not per row (2,767 rows: before, three lookups each)
    assert looked_up.count("label_field") < 10 and looked_up.count("problem") < 10
