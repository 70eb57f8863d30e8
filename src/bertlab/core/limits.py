"""The caps every stage of a job obeys, whatever its own settings: `limits` (debug=fast sets them).

A job has several stages that train: the further pre-training stages (pretrain/stage.py), the
self-distillation teacher and its student (run/distill.py), the fine-tuning run itself
(run/fit.py), and a search runs several jobs (the Optuna sweeper). Each has its own length
settings (pretrain.max_epochs, trainer.max_steps, hydra.sweeper.n_trials, ...), and a debug
preset that sets them one by one misses the next stage somebody adds: `debug=fast pretrain=dapt`
once ran a full DAPT epoch (11,928 blocks) for more than 15 minutes. So the cap is one rule here:

- every Lightning Trainer of the package is built by `lightning_trainer`: one that trains by
  epochs (no max_steps of its own: every pre-training preset, the length of its corpus) gets
  `limits.max_steps` optimizer steps and `limits.max_val_batches` batches per validation; a new
  stage that builds its Trainer here is capped without edits (a test refuses any other
  `L.Trainer(` in src/). A stage given its own step count keeps it: fine-tuning's is debug=fast's
  4 (the teacher of distill=self is a fine-tuning run), and `debug=fast trainer.max_steps=40`
  trains the 40 steps asked for;
- a search runs at most `limits.max_trials` trials (`capped_trials`, the sweeper's one call).

Test batches are not capped: the test split is the run's score, and debug=fast bounds it by the
task's own n_test (question answering's metrics need every window of the questions they score).
A stage whose result is cached (pretrain/cache.py) puts `limits` in its cache key, so a capped
stage is never reused by an uncapped run.
"""

from __future__ import annotations

from collections.abc import Mapping

from bertlab.core.errors import ConfigError
from bertlab.core.lines import say
from bertlab.core.values import check_count

KEYS = {
    "max_steps": "optimizer steps of any stage that trains by epochs (pre-training)",
    "max_val_batches": "batches per validation of such a stage",
    "max_trials": "trials of a search (hparams_search=...)",
}


def check_limits(limits: Mapping | None) -> None:
    """null (no caps), or every key of KEYS an integer >= 1 (run/checks.py calls it)."""
    if limits is None:
        return
    for key, value in limits.items():
        if key not in KEYS:
            raise ConfigError(f"limits.{key} is not a key of limits; valid: {', '.join(KEYS)}.")
        check_count(value, f"limits.{key}", why=f"an integer >= 1 ({KEYS[key]})")


def _cap(limits: Mapping | None, key: str) -> int | None:
    return None if limits is None else limits.get(key)


def capped_trainer_kwargs(limits: Mapping | None, **kwargs) -> dict:
    """The Lightning Trainer's arguments with the caps applied. A Trainer without a step count
    (max_steps -1: it trains by epochs, as long as its data) gets limits.max_steps steps and at most
    limits.max_val_batches batches per validation. A step count of its own is kept: it is already
    bounded (debug=fast sets fine-tuning's to 4), and one given on the command line is what was asked."""
    kwargs = dict(kwargs)
    steps = _cap(limits, "max_steps")
    if steps is None or kwargs.get("max_steps", -1) not in (None, -1):
        return kwargs
    kwargs["max_steps"] = steps
    batches = _cap(limits, "max_val_batches")
    asked = kwargs.get("limit_val_batches", 1.0)
    if batches is not None:  # an int is a batch count, a float a fraction of a loader of unknown length
        kwargs["limit_val_batches"] = min(asked, batches) if isinstance(asked, int) else batches
    return kwargs


def lightning_trainer(limits: Mapping | None, **kwargs):
    """`lightning.Trainer(**kwargs)`, capped by `limits`: the one place the package builds a Trainer."""
    import lightning as L

    capped = capped_trainer_kwargs(limits, **kwargs)
    if capped != kwargs:  # said, never silent: the stage's own settings asked for more
        say(
            f"limits: {capped['max_steps']} steps and at most {capped.get('limit_val_batches')} batches per "
            "validation for a stage that trains by epochs (debug=fast; raise limits.max_steps, or set the "
            "stage's own max_steps)"
        )
    return L.Trainer(**capped)


def capped_trials(limits: Mapping | None, n_trials: int) -> int:
    """How many trials a search runs: its n_trials, no more than limits.max_trials."""
    cap = _cap(limits, "max_trials")
    return n_trials if cap is None else min(n_trials, cap)
