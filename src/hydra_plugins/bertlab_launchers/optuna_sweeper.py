"""`hydra/sweeper=optuna_search`: a hyperparameter search on Optuna (the `hparams_search=` presets).

Asks Optuna for `n_jobs` trials at a time, launches them as one batch on the configured launcher
(the gpus launcher runs them in parallel, one fresh process each), tells Optuna each trial's value
(what train.py returns: val/<main_metric> of the best weights) or that it failed (a failed or
diverged run: the search goes on), and repeats until the study holds `n_trials` trials. The study,
its resume and the best trial: bertlab/sweep/search.py.

Why ours and not `hydra-optuna-sweeper` (1.3.0, the latest): it pins optuna<3, which resolves to
optuna 2.10 beside our SQLAlchemy 2; `pip check` stays clean, yet optuna 2.10's database storage
fails on SQLAlchemy 2 (AssertionError in get_current_version on the first sqlite:/// study), and
a study in the sweep folder is what makes a killed search resume. This one is the same few calls
(ask, launch, tell) on current Optuna. Optuna is imported only when a search runs.
"""

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class OptunaSearchConf:
    _target_: str = "hydra_plugins.bertlab_launchers.optuna_sweeper.OptunaSearch"
    _recursive_: bool = False  # the sampler is built when the search runs (Optuna imported then)
    direction: str = "maximize"  # of the value train.py returns, val/<task.main_metric>
    n_trials: int = 20  # trials in the study in all, those of an earlier (killed) run of the search included
    n_jobs: int = 1  # trials asked and launched together; the launcher runs a batch in parallel
    storage: str | None = None  # null: sqlite:///<hydra.sweep.dir>/optuna.db
    study_name: str | None = None  # null: the hparams_search preset's name, else "search"
    # any optuna.samplers class; seeded, so the same command proposes the same first trials
    sampler: dict[str, Any] = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 0})
    # key -> choice(a,b) | range(a,b) | interval(a,b) | tag(log, interval(a,b)) (bertlab/sweep/search.py)
    params: dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="optuna_search", node=OptunaSearchConf, provider="bertlab")


def refuse(message: str) -> None:
    """One message, no traceback (SystemExit passes through Hydra's wrappers)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class OptunaSearch(Sweeper):
    def __init__(self, **params: Any) -> None:
        self.params = params
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from bertlab.core.errors import ConfigError
        from bertlab.core.limits import capped_trials
        from bertlab.sweep import search
        from bertlab.sweep.folders import blocked_places, numbered_folders
        from bertlab.sweep.seeded_sampler import build_sampler

        assert self.config is not None and self.hydra_context is not None and self.launcher is not None
        p = self.params
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        name = p.get("study_name") or self.config.hydra.runtime.choices.get("hparams_search") or "search"
        try:
            search.check_settings(p.get("direction"), p.get("n_trials"), p.get("n_jobs"))
            space = search.search_space(dict(p.get("params") or {}), list(arguments), self.hydra_context.config_loader)
            try:  # seeded per trial, so that a resumed search goes on as it would have (seeded_sampler.py)
                sampler = build_sampler(p.get("sampler"))
            except Exception as err:  # a bad _target_ or argument: Hydra's message names both
                raise ConfigError(f"hydra.sweeper.sampler: {err}") from None
            # before the study exists: a key no config has fails here, not as trials left running
            search.check_keys(space, self.config)
            self.validate_batch_is_legal([search.trial_overrides(space, search.lowest(space))])
            # every trial's folder is free, before the first trial (as SweepFolderGuard does for a grid)
            blocked = blocked_places(numbered_folders(self.config, p["n_trials"]))
            if blocked:
                raise ConfigError(blocked)
            study = search.open_study(sweep_dir, p.get("storage"), name, space, p["direction"], sampler)
        except ConfigError as err:
            refuse(str(err))
        except HydraException as err:  # a trial's overrides do not compose: Hydra's own message
            refuse(f"hydra.sweeper.params: {err}")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        metric = f"val/{OmegaConf.select(self.config, 'task.main_metric', default='main_metric')}"
        # debug=fast's `limits` caps the trials as it caps every stage's steps (bertlab/core/limits.py)
        n_trials = capped_trials(OmegaConf.select(self.config, "limits"), p["n_trials"])
        if n_trials < p["n_trials"]:
            log.info(f"limits.max_trials={n_trials}: the search runs {n_trials} of its {p['n_trials']} trials")

        returns = []
        for batch in self.batches(study, space, n_trials, p["n_jobs"]):
            overrides = [search.trial_overrides(space, t.params) for t in batch]
            self.validate_batch_is_legal(overrides)
            results = self.launcher.launch(overrides, initial_job_idx=batch[0].number)
            for trial, overrides_, ret in zip(batch, overrides, results, strict=True):
                self.tell(study, trial, overrides_, ret)
            returns.append(results)
            if study._stop_flag:  # the sampler has run out of points (a grid or brute force)
                log.info("the sampler has tried every point of the search space: the search ends")
                break

        lines, best = search.best_summary(study, sweep_dir, metric)
        print("\n".join(lines), flush=True)
        if best is not None:
            search.write_best(sweep_dir, best)
        return returns

    @staticmethod
    def batches(study, space, n_trials: int, n_jobs: int):
        """Batches of trials to run, each of consecutive trial numbers (a launcher numbers a batch's
        jobs from its first): first the trials a killed run of this search left running (they
        resume in their own folders), then new ones, until the study holds n_trials."""
        import optuna
        from optuna.trial import TrialState

        from bertlab.sweep import search

        # as live trials (their values can be told), not the frozen copies get_trials returns
        stale = [optuna.trial.Trial(study, t._trial_id) for t in study.get_trials(states=(TrialState.RUNNING,))]
        for trial in stale:  # killed while Optuna wrote its parameters: the missing ones, as ask would
            search.suggest_missing(trial, space)
        for i in range(0, len(stale), n_jobs):
            chunk = stale[i : i + n_jobs]
            run = [chunk[0]]
            for trial in chunk[1:]:  # split where the numbers are not consecutive
                if trial.number != run[-1].number + 1:
                    yield run
                    run = []
                run.append(trial)
            yield run
        while (left := n_trials - len(study.get_trials(deepcopy=False))) > 0:
            yield [study.ask(space.params) for _ in range(min(n_jobs, left))]

    @staticmethod
    def tell(study, trial, overrides: list[str], ret) -> None:
        from optuna.trial import TrialState

        from bertlab.sweep import search

        run_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
        run_dir = Path(run_dir or ret.working_dir) if (run_dir or ret.working_dir) else None
        value = None
        if ret.status == JobStatus.COMPLETED:
            value = ret.return_value
        objective, status = search.trial_value(value, run_dir)
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("status", status)  # ok, or the job's failed / diverged / no result.json
        # Optuna's samplers that can run out of points (grid, brute force) call study.stop() when
        # told of the last one, which Optuna allows only inside study.optimize's loop; ask-and-tell
        # has no public equivalent, so tell inside that loop's flag, as study.optimize does, and
        # read study._stop_flag after the batch.
        study._thread_local.in_optimize_loop = True
        try:
            if objective is None:
                log.warning(f"trial #{trial.number} {status}: told to Optuna as failed; the search goes on")
                study.tell(trial.number, state=TrialState.FAIL)
            else:
                study.tell(trial.number, objective)
        finally:
            study._thread_local.in_optimize_loop = False
