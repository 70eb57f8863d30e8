"""A NaN/inf loss stops the run at once and is recorded as `status: diverged`; the sweep goes on."""

import pytest

from tests.helpers.e2e import TINY, results_under
from tests.helpers.e2e import run_train as run_process

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow


def test_diverged_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    # lr=1e30: the first AdamW step (with decoupled weight decay) overflows the weights -> NaN loss
    proc = run_process(
        "-m",
        *TINY,
        "optimizer.lr=1e30,1e-3",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    results = {r["settings"]["lr"]: r for r in results_under(tmp_path).values()}
    assert set(results) == {1e30, 1e-3}, proc.stderr[-3000:]
    diverged, ok = results[1e30], results[1e-3]
    assert diverged["status"] == "diverged"
    assert isinstance(diverged["diverged_at_step"], int) and diverged["diverged_at_step"] < 4
    assert f"diverged at step {diverged['diverged_at_step']}" in diverged["error"]
    assert ok["status"] == "ok" and ok["global_steps"] == 4
    # stopped at once: no test metrics for the diverged run, and no checkpoint left behind
    assert not any(k.startswith("test_") for k in diverged["metrics"])
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.rglob("resume"))
