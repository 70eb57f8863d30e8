"""hparams_search= end to end through `python train.py` on the tiny BERT: an Optuna search whose
study lives in the sweep folder, its resume after a kill, failed trials, and `bertlab report`."""

import json
import sqlite3

import pytest
from omegaconf import OmegaConf

from tests.helpers.e2e import python, results_under, run_train, with_tests_on_path
from tests.helpers.sync_hooks import read_job_log

# end to end: every test here starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow


def trials(sweep_dir) -> list[tuple[int, str]]:
    """(number, state) of every trial in the search's study, read straight from its SQLite file."""
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        return db.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def test_search_is_killed_after_two_trials_and_resumes_to_three(tmp_path, tiny):
    search = ["hparams_search=lr_warmup", *tiny, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path}"]
    # the search dies as job 2 starts (SIGKILL: no handler runs), after two finished trials
    kill = ["+hydra.callbacks.kill._target_=tests.helpers.search_hooks.KillAtJob", "+hydra.callbacks.kill.job=2"]
    proc = run_train(*search, *kill, timeout=600, env=with_tests_on_path())
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert trials(tmp_path) == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "RUNNING")]
    assert sorted(results_under(tmp_path)) == ["0", "1"]
    started = OmegaConf.load(tmp_path / "2" / ".hydra" / "overrides.yaml")  # trial 2's params
    before = {job: (tmp_path / job / "result.json").read_bytes() for job in ("0", "1")}

    proc = run_train(*search, timeout=600)  # the same command
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert trials(tmp_path) == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]  # n_trials counts all
    assert proc.stdout.count("run directory:") == 1  # only trial 2 ran, in its own folder
    assert all((tmp_path / job / "result.json").read_bytes() == data for job, data in before.items())
    results = results_under(tmp_path)
    assert sorted(results) == ["0", "1", "2"] and all(r["status"] == "ok" for r in results.values())
    assert results["2"]["overrides"] == list(started)
    assert len({tuple(r["overrides"]) for r in results.values()}) == 3  # three different trials
    lrs = {r["settings"]["lr"] for r in results.values()}
    assert len(lrs) == 3 and all(1e-5 <= lr <= 1e-3 for lr in lrs)

    # the best trial: printed and written, and it is the best of the runs' own records
    best = OmegaConf.to_container(OmegaConf.load(tmp_path / "optuna_best.yaml"))
    values = {job: r["metrics"]["val/accuracy"] for job, r in results.items()}
    assert best["best_value"] == max(values.values()) and best["metric"] == "val/accuracy"
    assert values[str(best["best_trial"])] == best["best_value"]
    assert best["overrides"] == results[str(best["best_trial"])]["overrides"]
    assert f"best trial #{best['best_trial']}: val/accuracy={best['best_value']:.4f}" in proc.stdout
    assert "3 trials (3 complete)" in proc.stdout and "3 jobs, 3 succeeded" in proc.stdout

    # `bertlab report` reads a search like any sweep: every trial's result.json
    report = run_report(tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "3 runs" in report.stdout and (tmp_path / "report.md").is_file()


def study_trials(sweep_dir, name="lr_warmup") -> list[tuple]:
    """(number, state, parameters, value) of every trial, through Optuna (parameters as sampled)."""
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


def sampler_kill(at: str, trial: int, param: str | None = None) -> list[str]:
    """Overrides that SIGKILL the search inside Optuna's bookkeeping (tests/helpers/search_hooks.py)."""
    extra = [f"+hydra.sweeper.sampler.param={param}"] if param else []
    return [
        "hydra.sweeper.sampler._target_=tests.helpers.search_hooks.KillingTPE",
        f"+hydra.sweeper.sampler.at={at}",
        f"+hydra.sweeper.sampler.trial={trial}",
        *extra,
    ]


def test_a_search_killed_at_four_points_resumes_to_the_trials_of_an_uninterrupted_one(tmp_path, tiny):
    """The sampler was seeded once per process: resumed, its RNG started over and the 3rd trial
    proposed the 1st's parameters. Now every draw is seeded by (seed, trial, parameter)."""
    # 4 trials: one more than debug=fast's cap on a search (limits.max_trials, core/limits.py)
    search = ["hparams_search=lr_warmup", *tiny, "hydra.sweeper.n_trials=4", "limits.max_trials=4"]
    whole = run_train(*search, f"hydra.sweep.dir={tmp_path / 'whole'}", timeout=900)
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = study_trials(tmp_path / "whole")

    killed = tmp_path / "killed"
    both = ["optimizer.lr", "schedule.warmup_ratio"]
    kills = [  # each run of the same command is killed further on; then the study's states, and the
        # parameters of the trial left running
        (
            ["+hydra.callbacks.kill._target_=tests.helpers.search_hooks.KillAtJob", "+hydra.callbacks.kill.job=1"],
            "CR",
            both,
        ),
        (sampler_kill("tell", 1), "CR", both),  # during the 2nd trial's run, then while Optuna records it
        (sampler_kill("create", 2), "CCR", []),  # between trials: the 3rd's row, no parameter yet
        (sampler_kill("param", 3, "schedule.warmup_ratio"), "CCCR", both[:1]),  # between two parameter rows
    ]
    for kill, states, params in kills:
        proc = run_train(*search, f"hydra.sweep.dir={killed}", *kill, timeout=900, env=with_tests_on_path())
        assert proc.returncode == -9, (kill, proc.stderr[-3000:])
        now = study_trials(killed)
        assert ("".join(t[1][0] for t in now), list(now[-1][2])) == (states, params), (kill, now)

    proc = run_train(*search, f"hydra.sweep.dir={killed}", timeout=900)  # the same command, to the end
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = study_trials(killed)
    assert resumed == expected  # the same trials: numbers, states, parameters and values
    assert len({tuple(sorted(t[2].items())) for t in resumed}) == 4  # no duplicate proposal
    best = OmegaConf.to_container(OmegaConf.load(killed / "optuna_best.yaml"))
    assert best == {
        **OmegaConf.to_container(OmegaConf.load(tmp_path / "whole" / "optuna_best.yaml")),
        "run_dir": str(killed / str(best["best_trial"])),
    }
    top = max(resumed, key=lambda t: t[3])
    assert (best["best_trial"], best["best_params"], best["best_value"]) == (top[0], top[2], top[3])
    assert "4 trials (4 complete)" in proc.stdout and "4 jobs, 4 succeeded" in proc.stdout
    print("uninterrupted:", *expected, "killed 4 times, resumed:", *resumed, sep="\n")


def run_report(sweep_dir):
    return python("-m", "bertlab.cli", "report", str(sweep_dir))


def test_a_failed_trial_is_told_as_failed_and_the_search_goes_on(tmp_path, tiny):
    # both values of a categorical, each once (brute force): lr=-1.0 fails the config check
    proc = run_train(
        "hparams_search=lr_warmup",
        *tiny,
        "optimizer.lr=choice(-1.0,0.001)",  # the command line replaces the preset's lr range
        "schedule.warmup_ratio=0.1",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={tmp_path}",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # a search succeeds when a trial does
    assert sorted(state for _, state in trials(tmp_path)) == ["COMPLETE", "FAIL"]
    results = results_under(tmp_path)
    status = {r["settings"]["lr"]: r["status"] for r in results.values()}
    assert status == {-1.0: "failed", 0.001: "ok"}
    best = OmegaConf.to_container(OmegaConf.load(tmp_path / "optuna_best.yaml"))
    assert best["best_params"] == {"optimizer.lr": 0.001}
    assert "2 jobs, 1 succeeded, 1 failed" in proc.stdout
    assert "re-run the same command" not in proc.stdout  # a failed trial is a result, not re-run


def test_a_search_refuses_a_folder_of_another_sweep(tmp_path, tiny):
    grid = run_train("-m", *tiny, "seed=0", f"hydra.sweep.dir={tmp_path}")
    assert grid.returncode == 0, grid.stderr[-3000:]
    before = json.loads((tmp_path / "0" / "result.json").read_text())
    proc = run_train("hparams_search=lr_warmup", *tiny, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1
    assert "holds 1 job folders but no study 'lr_warmup'" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads((tmp_path / "0" / "result.json").read_text()) == before
    assert not (tmp_path / "optuna.db").exists()


def test_trials_run_in_parallel_on_the_gpus_launcher(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    job_log = tmp_path.parent / f"{tmp_path.name}-jobs"
    proc = run_train(
        "hparams_search=lr_warmup",
        *tiny,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",  # asked together, launched as one batch
        f"hydra.sweep.dir={tmp_path}",
        "hydra/launcher=gpus",
        "hydra.launcher.gpus=2",
        "hydra.launcher.log_to_driver=false",
        # each trial waits, before it trains, until both have started (a queue would leave one alone)
        "+hydra.callbacks.jobs._target_=tests.helpers.sync_hooks.JobLog",
        f"+hydra.callbacks.jobs.folder={job_log}",
        "+hydra.callbacks.jobs.meet=2",
        "+hydra.callbacks.jobs.limit_s=300",
        timeout=900,
        env=with_tests_on_path(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert trials(tmp_path) == [(0, "COMPLETE"), (1, "COMPLETE")]
    results = results_under(tmp_path)
    assert len({r["pid"] for r in results.values()}) == 2
    assert sorted(r["devices"]["CUDA_VISIBLE_DEVICES"] for r in results.values()) == ["0", "1"]
    jobs = read_job_log(job_log)
    assert set(jobs) == {"0", "1"} and not any(j["alone"] for j in jobs.values()), jobs
    assert (tmp_path / "optuna_best.yaml").is_file()
