"""Sweeps end to end through `python train.py -m` on the tiny BERT: a GPU pool on Ray with
logical GPUs (CPU only), failures recorded with the sweep's exit code, and resume by re-running."""

import pytest

from tests.helpers.e2e import results_under, run_train, with_tests_on_path
from tests.helpers.sync_hooks import read_job_log

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_ray_usage_stats(monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")


@pytest.mark.long
def test_gpus_launcher_pools_2x2x2_over_2_logical_gpus_then_resumes(tmp_path, tiny):
    sweep = ["-m", *tiny, "optimizer=bertadam,adamw", "reinit=0,1", "seed=0,1", f"hydra.sweep.dir={tmp_path}"]
    # each job records the jobs running when it starts; the first two wait for each other
    job_log = tmp_path.parent / f"{tmp_path.name}-jobs"
    proc = run_train(
        *sweep,
        "hydra/launcher=gpus",
        "hydra.launcher.gpus=2",
        "hydra.launcher.log_to_driver=false",
        "+hydra.callbacks.jobs._target_=tests.helpers.sync_hooks.JobLog",
        f"+hydra.callbacks.jobs.folder={job_log}",
        "+hydra.callbacks.jobs.meet=2",
        timeout=600,
        env=with_tests_on_path(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert len(results) == 8 and all(r["status"] == "ok" for r in results.values())
    combos = {(r["settings"]["optimizer"], r["settings"]["reinit"], r["settings"]["seed"]) for r in results.values()}
    assert len(combos) == 8
    devices = {job: r["devices"]["CUDA_VISIBLE_DEVICES"] for job, r in results.items()}
    assert set(devices.values()) == {"0", "1"}, devices  # one logical GPU each, both in use
    assert all(r["devices"]["accelerator"] == "cpu" for r in results.values())
    assert len({r["pid"] for r in results.values()}) == 8  # every job in a fresh process
    jobs = read_job_log(job_log)
    assert set(jobs) == set(devices) and all(jobs[j]["device"] == devices[j] for j in jobs), (jobs, devices)
    assert not any(j["alone"] for j in jobs.values()), jobs  # a pool, not a queue: two jobs ran at once
    assert any(j["saw"] for j in jobs.values()), jobs
    for job, log in jobs.items():  # never two jobs on one GPU
        assert devices[job] not in log["saw"].values(), (job, jobs)
    assert "8 jobs, 8 succeeded" in proc.stdout

    # interrupted sweep: job 3 never wrote its result, job 6 never started; the same command
    # re-runs only those two (here on the basic launcher: the record is launcher-independent)
    (tmp_path / "3" / "result.json").unlink()
    for path in sorted((tmp_path / "6").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (tmp_path / "6").rmdir()
    before = {job: (tmp_path / job / "result.json").read_bytes() for job in results if job not in ("3", "6")}
    proc = run_train(*sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("skipped (already ok)") == 6
    assert all((tmp_path / job / "result.json").read_bytes() == data for job, data in before.items())
    rerun = results_under(tmp_path)
    assert len(rerun) == 8 and all(r["status"] == "ok" for r in rerun.values())
    assert rerun["6"]["overrides"] == results["6"]["overrides"]


def test_failed_and_diverged_jobs_are_recorded_and_the_sweep_exits_1(tmp_path, tiny):
    # lr=1e30 diverges (NaN loss), lr=-1 is rejected; seed='range(2)' sweeps seeds 0 and 1
    proc = run_train("-m", *tiny, "optimizer.lr=1e-3,1e30,-1", "seed=range(2)", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    results = results_under(tmp_path)
    assert len(results) == 6
    by_lr = {}
    for r in results.values():
        by_lr.setdefault(r["settings"]["lr"], set()).add((r["status"], r["settings"]["seed"]))
    assert by_lr == {
        1e-3: {("ok", 0), ("ok", 1)},
        1e30: {("diverged", 0), ("diverged", 1)},
        -1: {("failed", 0), ("failed", 1)},
    }
    ok = [r for r in results.values() if r["status"] == "ok"]
    assert all(r["metrics"]["test_best/accuracy"] >= 0 and r["error"] is None for r in ok)
    assert all("diverged at step" in r["error"] for r in results.values() if r["status"] == "diverged")
    assert all("lr=-1" in r["error"] for r in results.values() if r["status"] == "failed")
    assert "6 jobs, 2 succeeded, 2 diverged, 2 failed" in proc.stdout

    # re-running the same sweep re-runs the 4 that did not succeed, skips the 2 that did
    proc = run_train("-m", *tiny, "optimizer.lr=1e-3,1e30,-1", "seed=range(2)", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1 and proc.stdout.count("skipped (already ok)") == 2


def test_gpus_launcher_records_failures_and_exits_1(tmp_path, tiny):
    proc = run_train(
        "-m",
        *tiny,
        "optimizer.lr=1e-3,-1",
        f"hydra.sweep.dir={tmp_path}",
        "hydra/launcher=gpus",
        "hydra.launcher.gpus=2",
        "hydra.launcher.log_to_driver=false",
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    statuses = {r["settings"]["lr"]: r["status"] for r in results_under(tmp_path).values()}
    assert statuses == {1e-3: "ok", -1: "failed"}
    assert "2 jobs, 1 succeeded, 1 failed" in proc.stdout
