"""Every GLUE task config, composed with Hydra and trained for a few steps on its fixture files
(the original GLUE format), plus the real RTE/MRPC files when present."""

from pathlib import Path

import pytest

from bertlab.core.paths import CONF_DIR
from bertlab.data.readers import GLUE_DIRS
from bertlab.run.fit import Run, train

# every test here trains in-process through run/fit.py's train (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "glue"
# the GLUE tasks that have a config: the folder names are the reader's (data/readers.py)
GLUE_FOLDERS = {task: folder for task, folder in GLUE_DIRS.items() if (CONF_DIR / "task" / f"{task}.yaml").is_file()}


@pytest.fixture
def compose_run(compose_train, tiny):
    """A run config of the tiny BERT, composed in-process: no logger, no progress bar."""

    def compose_run(*overrides):
        return compose_train(*tiny, "logger=none", "trainer.enable_progress_bar=false", *overrides)

    return compose_run


@pytest.mark.parametrize("task", sorted(GLUE_FOLDERS))
def test_each_glue_task_trains_and_reports_its_metrics(task, compose_run, tmp_path):
    # fixtures hold a handful of rows: validation = 2 of the training rows, test = the dev file
    cfg = compose_run(
        f"task={task}",
        f"task.data_dir={FIXTURES / GLUE_FOLDERS[task]}",
        "task.n_train=null",
        "task.n_val=2",
        "task.n_test=null",
    )
    outcome = train(cfg, Run(tmp_path, "test"))
    metrics = outcome["metrics"]
    for name in cfg.task.metrics:
        for prefix in ("val", "test_best", "test_last"):
            assert f"{prefix}/{name}" in metrics, (task, prefix, name)
        assert f"test/{name}" in outcome["baseline"]
    assert f"val/{cfg.task.main_metric}" in metrics


@pytest.mark.parametrize("task,expected_train", [("rte", 2490), ("mrpc", 3667)])
def test_real_glue_full_data_split(task, expected_train, shared_glue, compose_run, tmp_path):
    cfg = compose_run(
        f"task={task}",
        f"task.data_dir={shared_glue / GLUE_FOLDERS[task]}",
        "task.n_train=null",
        "task.n_val=null",
        "task.n_test=null",
        "trainer.max_steps=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    )
    outcome = train(cfg, Run(tmp_path, "test"))
    sizes = outcome["split_sizes"]
    # paper, full data: the whole training set, the dev set halved into validation and test
    assert sizes["train"] == expected_train
    dev = {"rte": 277, "mrpc": 408}[task]
    assert sizes["val"] + sizes["test"] == dev and abs(sizes["val"] - sizes["test"]) <= 2
