"""A sweep folder re-used by another grid (`hydra.sweep.dir=X` again) never loses a finished job:
a grid whose job folders hold other jobs is refused before anything is written; the same grid
resumes, a grid that only adds jobs extends it, and the summary counts only this grid's jobs."""

import pytest

from tests.helpers.bad_input import assert_one_clear_message
from tests.helpers.e2e import TINY, results_under, run_train

# end to end: every test here trains or starts `python train.py` (pytest -m "not slow" leaves them out)
pytestmark = pytest.mark.slow


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_different_grid_is_refused_and_a_grid_that_adds_jobs_extends_the_sweep(tmp_path):
    sweep = ["-m", *TINY, f"hydra.sweep.dir={tmp_path}"]
    first = run_train(*sweep, "seed=0,1")
    assert first.returncode == 0, first.stderr[-3000:]
    before = files_of(tmp_path)

    other = run_train(*sweep, "seed=5,6,7")
    assert_one_clear_message(
        other,
        f"hydra.sweep.dir={tmp_path} holds the jobs of another sweep",
        "0/ holds seed=0 (ok), this sweep would run seed=5 there",
        "1/ holds seed=1 (ok), this sweep would run seed=6 there",
        "Nothing was run or overwritten",
    )
    assert files_of(tmp_path) == before  # not even multirun.yaml or a .hydra/ file changed

    subset = run_train(*sweep, "seed=0")  # job 0 of the same grid: skipped, and only it is counted
    assert subset.returncode == 0, subset.stderr[-3000:]
    assert "skipped (already ok)" in subset.stdout and "1 job, 1 succeeded" in subset.stdout

    more = run_train(*sweep, "seed=0,1,2")  # adds job 2, keeps 0 and 1
    assert more.returncode == 0, more.stderr[-3000:]
    assert more.stdout.count("skipped (already ok)") == 2 and "3 jobs, 3 succeeded" in more.stdout
    results = results_under(tmp_path)
    assert {job: r["settings"]["seed"] for job, r in results.items()} == {"0": 0, "1": 1, "2": 2}
    assert all((tmp_path / job / "result.json").read_bytes() == before[f"{job}/result.json"] for job in ("0", "1"))


def test_a_job_folder_named_otherwise_still_never_overwrites_another_jobs_result(tmp_path):
    # job folders named after hydra.job.id cannot be listed in advance: each job checks its own
    sweep = ["-m", *TINY, f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=job${hydra.job.id}"]
    assert run_train(*sweep, "seed=0").returncode == 0
    before = results_under(tmp_path)
    proc = run_train(*sweep, "seed=5")
    assert proc.returncode == 1
    assert "holds another job's result" in proc.stderr and "Traceback" not in proc.stderr
    assert "1 job, 0 succeeded, 1 not run" in proc.stdout
    assert results_under(tmp_path) == before


@pytest.mark.parametrize(
    "how",
    [
        ["-m", "seed=0,1,2"],  # the basic launcher
        ["-m", "seed=0,1,2", "hydra/launcher=gpus", "hydra.launcher.gpus=2"],  # refused before Ray starts
        ["-m", "seed=0,1,2", "hydra/launcher=slurm"],  # refused before anything is submitted
        ["hparams_search=lr_warmup", "hydra.sweeper.n_trials=3"],  # a search: its trials' folders
    ],
    ids=["basic", "gpus", "slurm", "search"],
)
def test_every_jobs_folder_is_checked_before_the_first_job_starts(tmp_path, how):
    """Hydra raised FileExistsError at job 1 (a traceback, jobs 2.. never ran, no summary)."""
    (tmp_path / "1").write_text("a file named like job 1")
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "notes.txt").write_text("a folder that is no run")
    proc = run_train(*how, *TINY, f"hydra.sweep.dir={tmp_path}")
    assert_one_clear_message(
        proc,
        "2 job folders of this sweep are taken",
        f"{tmp_path / '1'} is a file, not a folder",
        f"{tmp_path / '2'} is a folder that holds no run (notes.txt)",
        "Nothing was run. Move or remove them, or use a new hydra.sweep.dir",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]  # nothing written: no job 0, no study
    assert (tmp_path / "1").read_text() == "a file named like job 1"
