"""hydra.launcher.jobs_per_gpu=N end to end on the CPU with logical GPUs: N jobs share each GPU at
once (Ray's fractional GPUs), each in a fresh process that sees its GPU's id."""

import pytest

from tests.helpers.e2e import results_under, run_train, with_tests_on_path
from tests.helpers.sync_hooks import read_job_log

# end to end: every test here starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_ray_usage_stats(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")


@pytest.mark.long
def test_two_jobs_per_gpu_run_four_at_once_on_two_logical_gpus(tmp_path, tiny):
    job_log = tmp_path.parent / f"{tmp_path.name}-jobs"
    proc = run_train(
        "-m",
        *tiny,
        "seed=0,1,2,3",
        f"hydra.sweep.dir={tmp_path}",
        "hydra/launcher=gpus",
        "hydra.launcher.gpus=2",
        "hydra.launcher.jobs_per_gpu=2",
        "hydra.launcher.log_to_driver=false",
        # every job waits, before it trains, until all four have started: on a pool of fewer than
        # four slots the first ones would wait in vain (and record that they ran alone)
        "+hydra.callbacks.jobs._target_=tests.helpers.sync_hooks.JobLog",
        f"+hydra.callbacks.jobs.folder={job_log}",
        "+hydra.callbacks.jobs.meet=4",
        "+hydra.callbacks.jobs.limit_s=300",
        timeout=900,
        env=with_tests_on_path(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0.5 per job, at most 4 at a time" in proc.stdout + proc.stderr
    results = results_under(tmp_path)
    assert len(results) == 4 and all(r["status"] == "ok" for r in results.values())
    assert len({r["pid"] for r in results.values()}) == 4  # four processes
    devices = sorted(r["devices"]["CUDA_VISIBLE_DEVICES"] for r in results.values())
    assert devices == ["0", "0", "1", "1"], devices  # Ray set each job's GPU: two jobs per device id
    jobs = read_job_log(job_log)
    assert not any(j["alone"] for j in jobs.values()), jobs  # all four were running at once
    # the last job to start saw the other three running, one of them on its own GPU
    last = max(jobs.values(), key=lambda j: len(j["saw"]))
    assert len(last["saw"]) == 3 and last["device"] in last["saw"].values(), jobs


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["hydra.launcher.jobs_per_gpu=0"], "hydra.launcher.jobs_per_gpu=0: needs an integer >= 1"),
        (
            ["hydra.launcher.jobs_per_gpu=2", "hydra.launcher.gpus_per_job=0.5"],
            "hydra.launcher.jobs_per_gpu=2 and hydra.launcher.gpus_per_job=0.5 both set a job's share of a GPU",
        ),
    ],
)
def test_bad_jobs_per_gpu_is_one_message_before_anything_runs(tmp_path, settings, message):
    proc = run_train(
        "-m", "model=tiny", "debug=fast", f"hydra.sweep.dir={tmp_path}", "hydra/launcher=gpus", "hydra.launcher.gpus=2",
        *settings,
    )  # fmt: skip
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and not results_under(tmp_path)
