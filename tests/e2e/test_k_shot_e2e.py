"""task.k_shot, protocol=lmbff and init_seed/order_seed through `python train.py` on the tiny
model: one run each way (the draw, the checks and the report are tested in-process:
test_k_shot.py, test_seeds.py, test_report_fewshot.py)."""

import json

import pytest

from tests.conftest import SHARED_GLUE
from tests.helpers.e2e import TINY
from tests.helpers.inprocess import run_train


@pytest.mark.slow
def test_the_lmbff_preset_on_real_rte_records_its_draw_and_both_seeds(tmp_path):
    if not (SHARED_GLUE / "RTE" / "train.tsv").is_file():
        pytest.skip(f"the real GLUE RTE files are not in {SHARED_GLUE}")
    run_dir = tmp_path / "run"
    proc = run_train(
        *TINY,
        "protocol=lmbff",
        "task=rte",
        f"task.data_dir={SHARED_GLUE / 'RTE'}",
        "seed=5",
        "order_seed=6",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "ok"
    s = record["settings"]
    assert (s["k_shot"], s["data_seed"], s["seed"], s["init_seed"], s["order_seed"]) == (16, 13, 5, 5, 6)
    # 16 per class to train and to validate; the test set: debug=fast's class-balanced 32 of the dev set
    assert record["split_sizes"] == {"train": 32, "val": 32, "test": 32}
    assert "task.k_shot=16: 16 training and 16 validation examples per class" in proc.stdout


@pytest.mark.slow
def test_k_shot_on_a_task_without_classes_is_one_message_before_anything_loads(tmp_path):
    proc = run_train(*TINY, "task=swag", "task.k_shot=16", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "task.k_shot=16 draws K examples per class, and task.problem=multiple_choice ('swag')" in proc.stderr
