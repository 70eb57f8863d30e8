"""A search killed at any point of Optuna's bookkeeping and resumed proposes exactly what an
uninterrupted search of the same seed does (bertlab/sweep/seeded_sampler.py). In-process: the
sweeper's own batches() and tell() on a study in a SQLite file, the objective a function of the
parameters; a "kill" is an exception raised from inside Optuna at the chosen point, after which the
study is opened again from its file with a new sampler, as a new process would. The SIGKILL of a
real search: tests/e2e/test_search_e2e.py."""

import math

import pytest
from optuna.samplers import TPESampler
from optuna.trial import TrialState

from bertlab.sweep import search
from bertlab.sweep.seeded_sampler import TrialSeededSampler, build_sampler, derived_seed
from hydra_plugins.bertlab_launchers.optuna_sweeper import OptunaSearch

SPACE = {
    "optimizer.lr": "tag(log, interval(1e-5, 1e-3))",
    "schedule.warmup_ratio": "interval(0.0, 0.2)",
    "reinit": "range(0, 7)",
}
N_TRIALS = 6

SAMPLERS = {
    # n_startup_trials=3: the last trials come from TPE's model of the first ones, not at random;
    # Optuna 5's TPE is multivariate (all parameters drawn together) for one objective
    "tpe": {"_target_": "optuna.samplers.TPESampler", "seed": 0, "n_startup_trials": 3},
    "tpe_independent": {
        "_target_": "optuna.samplers.TPESampler",
        "seed": 3,
        "n_startup_trials": 3,
        "multivariate": False,
    },
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": 7},
}


class Killed(BaseException):
    """Stands for SIGKILL: nothing of Optuna's catches it (it is no Exception)."""


def objective(params: dict) -> float:
    return -((math.log10(params["optimizer.lr"]) + 4) ** 2) - params["schedule.warmup_ratio"] - 0.1 * params["reinit"]


def journal(folder):
    """Optuna's journal file storage: like the search's SQLite file, it writes a new trial's
    parameters one record at a time, and it opens in milliseconds where SQLite's schema check
    takes seconds (these tests open the study a dozen times)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(folder / "journal.log")))


def run(tmp_path, sampler_cfg: dict, kill: tuple | None = None) -> None:
    """The sweeper's loop (ask a batch, launch it, tell it) on the study in tmp_path; `kill`
    = (where, trial number[, parameter]) raises Killed there."""
    tmp_path.mkdir(parents=True, exist_ok=True)  # as the sweep folder's check does (run/folder.py)
    space = search.search_space(SPACE, [], config_loader=None)
    sampler = build_sampler(
        {**sampler_cfg, "_target_": f"{__name__}.killing", "_recursive_": False, "inner": sampler_cfg, "kill": kill}
    )
    study = search.open_study(tmp_path, journal(tmp_path), "s", space, "maximize", sampler)
    for batch in OptunaSearch.batches(study, space, N_TRIALS, 1):
        for trial in batch:
            if kill == ("job", trial.number):  # during the trial's run: it never returns
                raise Killed
            study.tell(trial.number, objective(trial.params))


def killing(inner: dict, kill: list | None, seed: int, **_):
    """A sampler of SAMPLERS (`inner`, built with the seed it is given) that raises Killed at `kill`."""
    from hydra.utils import instantiate

    sampler = instantiate({**inner, "seed": seed})
    kill = tuple(kill) if kill is not None else None
    for point, method in (("create", "before_trial"), ("param", "sample_independent"), ("tell", "after_trial")):
        original = getattr(sampler, method)

        def hooked(study, trial, *args, _original=original, _point=point):
            here = (_point, trial.number, *(args[:1] if _point == "param" else ()))
            if here == kill:
                raise Killed
            return _original(study, trial, *args)

        setattr(sampler, method, hooked)
    return sampler


def trials(tmp_path) -> list[tuple]:
    space = search.search_space(SPACE, [], config_loader=None)
    study = search.open_study(tmp_path, journal(tmp_path), "s", space, "maximize", None)
    return [(t.number, t.state, t.params, t.value) for t in study.get_trials()]


def kills(sampler: str) -> list[tuple]:
    """One after the other into the same study, each further on, as a user killing it again and again."""
    independent = SAMPLERS[sampler].get("multivariate") is False or "Random" in SAMPLERS[sampler]["_target_"]
    return [
        ("job", 1),  # during the 2nd trial's run
        ("tell", 1),  # while Optuna records its value (in-process its state is still written)
        ("create", 2),  # between trials: the 3rd trial's row exists, with no parameter yet
        ("param", 2, "schedule.warmup_ratio"),  # between two parameter rows of the 3rd trial
        # once TPE models the trials (after 3): multivariate TPE draws all parameters at Trial creation
        ("param", 4, "reinit") if independent else ("create", 4),
        ("job", 5),
    ]


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_a_search_killed_anywhere_resumes_to_the_uninterrupted_sequence(tmp_path, sampler):
    run(tmp_path / "whole", SAMPLERS[sampler])
    whole = trials(tmp_path / "whole")
    assert [t[1] for t in whole] == [TrialState.COMPLETE] * N_TRIALS

    for kill in kills(sampler):
        with pytest.raises(Killed):
            run(tmp_path / "killed", SAMPLERS[sampler], kill)
    run(tmp_path / "killed", SAMPLERS[sampler])  # the same command, to the end
    resumed = trials(tmp_path / "killed")
    assert resumed == whole  # same numbers, states, parameters and values
    assert len({tuple(sorted(t[2].items())) for t in resumed}) == N_TRIALS  # no duplicate proposal


def test_without_the_per_trial_seed_a_resumed_search_replays_its_first_trial(tmp_path):
    """What the search did before (the sampler seeded once per process): kept as the reason."""
    space = search.search_space(SPACE, [], config_loader=None)
    first = search.open_study(tmp_path, journal(tmp_path), "s", space, "maximize", TPESampler(seed=0))
    first.tell(first.ask(space.params), 0.5)
    first.ask(space.params)  # killed during this trial
    again = search.open_study(tmp_path, journal(tmp_path), "s", space, "maximize", TPESampler(seed=0))
    assert again.ask(space.params).params == first.trials[0].params


def test_build_sampler_wraps_a_seeded_sampler_only():
    assert isinstance(build_sampler({"_target_": "optuna.samplers.TPESampler", "seed": 0}), TrialSeededSampler)
    assert isinstance(build_sampler({"_target_": "optuna.samplers.TPESampler", "seed": None}), TPESampler)
    qmc = build_sampler({"_target_": "optuna.samplers.QMCSampler", "seed": 0})  # one scramble for the study
    assert type(qmc).__name__ == "QMCSampler"
    assert build_sampler(None) is None
    assert derived_seed(0, 1, "x") == derived_seed(0, 1, "x") != derived_seed(0, 2, "x")
    assert 0 <= derived_seed(2**32 - 1, 10**6) < 2**32
