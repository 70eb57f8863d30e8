"""Where start-up goes past the floor: wall and CPU seconds of each stage of one run, to its first step.

    python -m scripts.startup_timeline model=tiny debug=fast logger=csv    # any train.py arguments

Run from the repository root. It imports the floor first (torch, Lightning, transformers: the
first row) and the app, with the garbage collector paused as a run imports them (core/gc_pause.py),
then BERT's modelling code, then runs `train.py ARGS` with each stage below timed, and stops at
the first training batch. CPU seconds (the process's, threads
included) move less than wall seconds on a loaded machine: compare those between checkouts.
Because the floor is imported first, what the entry imports early (W&B, docs/speed.md) is counted
after it here: for a W&B run, measure start-up with `make bench` instead.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys
import time

ROWS: list[tuple[str, float, float]] = []

# (module, attribute) of each stage, wrapped where the run calls it
STAGES = (
    ("bertlab.run.entry", "check_command_line"),  # the key check, with its composition
    ("hydra._internal.hydra", "Hydra.compose_config"),  # every composition of the config
    ("bertlab.run.job", "print_config"),
    ("bertlab.run.fit", "check_config"),
    ("bertlab.run.fit", "task_splits"),  # reading, splitting, augmenting the task's data
    ("bertlab.run.fit", "build_loggers"),
    ("bertlab.run.fit", "further_pretrain"),
    ("bertlab.run.approach", "load_config"),
    ("bertlab.run.approach", "load_tokenizer"),
    ("bertlab.run.approach", "check_before_weights"),
    ("bertlab.run.approach", "load_classifier"),  # from_pretrained
    ("transformers.conversion_mapping", "_build_checkpoint_conversion_mapping"),  # inside from_pretrained
    ("bertlab.run.fit", "data_and_module"),
    ("bertlab.run.fit", "build_callbacks"),
    ("bertlab.data.datamodule", "FewSampleDataModule.setup"),  # tokenising, or the token cache
    ("bertlab.run.fit", "build_trainer"),
)


def timed(label: str, fn):
    def wrapper(*args, **kwargs):
        wall, cpu = time.time(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            ROWS.append((label, time.time() - wall, time.process_time() - cpu))

    return wrapper


def wrap(module_name: str, attribute: str) -> None:
    owner = importlib.import_module(module_name)
    *classes, name = attribute.split(".")
    for cls in classes:
        owner = getattr(owner, cls)
    setattr(owner, name, timed(f"{module_name.rsplit('.', 1)[-1]}.{attribute}", getattr(owner, name)))


def imported(label: str, *modules: str) -> None:
    wall, cpu = time.time(), time.process_time()
    for module in modules:
        importlib.import_module(module)
    ROWS.append((label, time.time() - wall, time.process_time() - cpu))


def main() -> None:
    start = time.time(), time.process_time()
    from bertlab.core.gc_pause import collector_paused

    with collector_paused():  # as the run imports them (run/entry.py): the collector paused, then freezing
        imported("import torch, lightning, transformers (the floor)", "torch", "lightning", "transformers")
        imported("import bertlab.run.app", "bertlab.run.entry", "bertlab.run.app")
    imported("import BERT's modelling code", "transformers.models.bert.modeling_bert")  # the run: in from_pretrained
    for module_name, attribute in STAGES:
        wrap(module_name, attribute)

    import lightning as L

    from bertlab.callbacks.throughput import TrainThroughput

    fit, fit_started = L.Trainer.fit, []

    def fit_timed(self, *args, **kwargs):
        fit_started.append((time.time(), time.process_time()))
        return fit(self, *args, **kwargs)

    def first_step(self, *_):
        wall, cpu = fit_started[-1]
        ROWS.append(("Trainer.fit to its first batch", time.time() - wall, time.process_time() - cpu))
        ROWS.append(("TOTAL: script start to the first batch", time.time() - start[0], time.process_time() - start[1]))
        print(f"\n{'stage':<58}{'wall s':>8}{'cpu s':>8}", file=sys.stderr)
        for label, wall, cpu in ROWS:
            print(f"{label:<58}{wall:8.3f}{cpu:8.3f}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(0)  # nothing after the first step is start-up

    L.Trainer.fit = fit_timed
    TrainThroughput.on_train_batch_start = first_step
    sys.argv = ["train.py", *sys.argv[1:]]
    runpy.run_path("train.py", run_name="__main__")


if __name__ == "__main__":
    main()
