"""A hyperparameter search's bookkeeping on Optuna: its search space from Hydra's sweep syntax,
a trial's overrides, the study in the sweep folder (resumed by the same command), and the best
trial at the end. The Hydra side (asking, launching, telling) is hydra/sweeper=optuna_search
(src/hydra_plugins/bertlab_launchers/optuna_sweeper.py).

The space uses the syntax of Hydra's own Optuna sweeper, so lightning-hydra-template presets carry
over: `choice(a,b)` or `a,b` (categorical), `range(0,7)` (integers 0..6), `interval(1e-5,1e-4)`
(uniform float), `tag(log, interval(1e-5,1e-4))` (log-uniform).

Resume: the study lives in `<sweep dir>/optuna.db` (SQLite). A trial's job folder is its trial
number, so a re-run of the same command counts the trials already in the study toward n_trials,
runs no finished trial again, and re-launches a trial the killed search left running in its own
folder, with the same overrides (the job then resumes from its checkpoint, or is skipped as
already ok: sweep/folders.py); one killed while Optuna wrote its parameters gets the missing ones
(`suggest_missing`). The sampler draws each value from a seed derived from (seed, trial number,
parameter) (sweep/seeded_sampler.py), so the resumed search proposes exactly the trials an
uninterrupted one would, never the first ones again. A study records what it searches (space, fixed overrides,
direction); a folder that holds another sweep's jobs, or a study of another search, is refused
with one message before anything runs, as SweepFolderGuard does for grids.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bertlab.core.atomic import write_text_atomic
from bertlab.core.errors import ConfigError
from bertlab.core.record import read_result
from bertlab.core.values import is_count
from bertlab.sweep.folders import job_dirs

DB_FILE = "optuna.db"
BEST_FILE = "optuna_best.yaml"
DEFINITION = "bertlab_search"  # the study's user attribute that records what it searches
DIRECTIONS = ("maximize", "minimize")


@dataclass
class Space:
    """What a search varies (key -> Optuna distribution) and the overrides every trial shares."""

    params: dict[str, Any]
    fixed: list[str]

    def definition(self, direction: str) -> dict:
        from optuna.distributions import distribution_to_json

        return {
            "params": {k: json.loads(distribution_to_json(d)) for k, d in self.params.items()},
            "fixed": self.fixed,
            "direction": direction,
        }


# The seeds the report treats as replicates of a setting (report/grouping.REPLICATES), as override
# keys: a search that chose among them would report its luckiest draw as the best setting.
REPLICATE_KEYS = ("seed", "init_seed", "order_seed", "task.data_seed")


def distribution(override) -> Any:
    """The Optuna distribution of one swept Hydra override (as hydra-optuna-sweeper reads it)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    key = override.get_key_element()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
            return FloatDistribution(value.start, value.stop, step=value.step)
        return IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if log and value.start <= 0:
            raise ConfigError(
                f"hydra.sweeper.params.{key}={override.input_line.split('=', 1)[1]}: a log scale needs a start > 0."
            )
        if value.start >= value.end:
            raise ConfigError(
                f"hydra.sweeper.params.{key}={override.input_line.split('=', 1)[1]}: the interval is empty (start >= end)."
            )
        return FloatDistribution(value.start, value.end, log=log)
    raise ConfigError(
        f"{override.input_line}: the search cannot sample this sweep; use choice(a,b), range(a,b), "
        "interval(a,b) or tag(log, interval(a,b))."
    )


def search_space(params: dict[str, str], arguments: list[str], config_loader) -> Space:
    """The space of `hydra.sweeper.params` and of the command line's swept overrides; the command
    line's other overrides are fixed for every trial. A key in both: the command line wins."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=config_loader)
    space, fixed = {}, []
    for override in parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(arguments)):
        key = override.get_key_element()
        space.pop(key, None)
        fixed = [f for f in fixed if f.split("=", 1)[0] != key]
        if override.is_sweep_override() and key in REPLICATE_KEYS:
            raise ConfigError(
                f"{override.input_line}: the search would pick the {key} that scores best, a lucky draw, "
                "not a setting (protocol=lmbff sweeps task.data_seed). Search on one: e.g. "
                f"{key}={next(iter(override.sweep_iterator()))}; then run the best settings over "
                "every split and seed with -m and compare them in `bertlab report`."
            )
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed.append(f"{key}={override.get_value_element_as_str()}")
    if not space:
        raise ConfigError(
            "hydra/sweeper=optuna_search has nothing to search: give hydra.sweeper.params (an hparams_search= "
            "preset does) or a swept override such as optimizer.lr='tag(log, interval(1e-5, 1e-4))'."
        )
    return Space(space, fixed)


def as_override(key: str, value: Any) -> str:
    """`key=value` that Hydra parses back to the same value (a float keeps every digit)."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif value is None:
        text = "null"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return f"{key}={text}"


def check_keys(space: Space, config) -> None:
    """Every searched key is one the composed config has (else Hydra would suggest `+key`, a key
    nothing reads: config/keys.py)."""
    absent = object()
    unknown = [k for k in space.params if OmegaConf.select(config, k, default=absent) is absent]
    if unknown:
        raise ConfigError(
            f"hydra.sweeper.params: {', '.join(unknown)}: no such config key, so no run would read "
            f"{'it' if len(unknown) == 1 else 'them'}; search keys the config has (python train.py --cfg job)."
        )


def lowest(space: Space) -> dict[str, Any]:
    """One point of the space (each dimension's first value), to check that trials compose."""
    return {k: d.choices[0] if hasattr(d, "choices") else d.low for k, d in space.params.items()}


def trial_overrides(space: Space, params: dict[str, Any]) -> list[str]:
    return space.fixed + [as_override(k, params[k]) for k in space.params]


def suggest_missing(trial, space: Space) -> None:
    """Give a live trial every parameter of the space it lacks, in the space's order, as
    `study.ask(space.params)` does: a search killed while Optuna wrote a new trial (one row per
    parameter) left it with some or none. Values already written are kept; with the sampler seeded
    per trial and parameter (seeded_sampler.py) the others are those the trial would have got."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    for name, d in space.params.items():
        if name in trial.params:
            continue
        if isinstance(d, CategoricalDistribution):
            trial.suggest_categorical(name, d.choices)
        elif isinstance(d, IntDistribution):
            trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        else:
            trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


def check_settings(direction: str, n_trials: Any, n_jobs: Any) -> None:
    if direction not in DIRECTIONS:
        raise ConfigError(f"hydra.sweeper.direction={direction}: use maximize or minimize.")
    for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs)):
        if not is_count(value):
            raise ConfigError(f"hydra.sweeper.{key}={value}: needs an integer >= 1.")


def open_study(sweep_dir: Path, storage: str | None, study_name: str, space: Space, direction: str, sampler):
    """The study of this search, created or resumed; ConfigError when the folder or the study
    belongs to another sweep (nothing has been written then)."""
    import optuna

    storage = storage or f"sqlite:///{Path(sweep_dir).resolve() / DB_FILE}"
    wanted = space.definition(direction)
    existing = optuna.study.get_all_study_names(storage) if _has_db(sweep_dir, storage) else []
    if study_name not in existing:
        jobs = [d for d in job_dirs(sweep_dir)] if Path(sweep_dir).is_dir() else []
        if jobs:
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir} holds {len(jobs)} job folders but no study '{study_name}' in "
                f"{storage}: they are another sweep's jobs. Nothing was run or overwritten. Use a new "
                "hydra.sweep.dir for this search."
            )
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction=direction, sampler=sampler, load_if_exists=True
    )
    recorded = study.user_attrs.get(DEFINITION)
    if recorded is None:
        study.set_user_attr(DEFINITION, wanted)
    elif recorded != wanted:
        differs = [k for k in ("params", "fixed", "direction") if recorded.get(k) != wanted[k]]
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} holds the study '{study_name}' of another search (its "
            f"{' and '.join(differs)} differ: {', '.join(json.dumps(recorded.get(k)) for k in differs)}). Nothing "
            "was run. Re-run that search's own command to resume it, or use a new hydra.sweep.dir."
        )
    return study


def _has_db(sweep_dir: Path, storage: str) -> bool:
    """False for the default SQLite file that does not exist yet (asking would create it)."""
    default = f"sqlite:///{Path(sweep_dir).resolve() / DB_FILE}"
    return storage != default or (Path(sweep_dir) / DB_FILE).is_file()


def trial_value(value: Any, run_dir: Path | None) -> tuple[float | None, str]:
    """The objective a job returned, or None and why the trial failed (its result.json's status)."""
    record = read_result(run_dir) if run_dir is not None else None
    status = (record or {}).get("status", "no result.json")
    if status == "ok" and isinstance(value, int | float) and math.isfinite(value):
        return float(value), "ok"
    return None, status if status != "ok" else f"no finite value ({value})"


def best_summary(study, sweep_dir: Path, metric: str) -> tuple[list[str], dict | None]:
    """The lines printed at the end of a search, and the best trial's record for BEST_FILE."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)
    }
    head = f"search {sweep_dir}: {len(trials)} trial{'' if len(trials) == 1 else 's'} ({', '.join(f'{n} {s}' for s, n in counts.items())})"
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return [head, "no trial succeeded: no best trial"], None
    best = study.best_trial
    record = {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "metric": metric,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": dict(best.params),
        "overrides": best.user_attrs.get("overrides"),
        "run_dir": best.user_attrs.get("run_dir"),
        "n_trials": len(trials),
    }
    lines = [
        head,
        f"best trial #{best.number}: {metric}={best.value:.4f}  {' '.join(as_override(k, v) for k, v in best.params.items())}",
        f"  run folder: {record['run_dir']}; written to {Path(sweep_dir) / BEST_FILE}",
    ]
    return lines, record


def write_best(sweep_dir: Path, record: dict) -> None:
    header = "# The best trial of this search (hydra/sweeper=optuna_search); the study: optuna.db\n"
    write_text_atomic(Path(sweep_dir) / BEST_FILE, header + OmegaConf.to_yaml(OmegaConf.create(record)))
