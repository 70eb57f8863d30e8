"""`make bench`: this project's training speed against the Hugging Face Trainer, run_glue.py's
defaults and the limits, side by side in one run (same model, data, batch size, steps, threads).

1. Equal settings (same padding policy: dynamic): samples/s of this project's loop (the real
   FineTuner + FewSampleDataModule + build_trainer), of `transformers.Trainer`, and of a bare
   PyTorch loop (the limit) on the very same batches in the same order.
2. Defaults vs run_glue.py defaults: two whole few-sample runs per task, each a fresh process
   (`python train.py ...` vs `python -m scripts.hf_trainer_run`, padding to 128): wall time from the
   command to exit, training samples/s, start-up, and the test metric of both.
3. Padding efficiency (real / processed tokens) of the training batches: padding to 128, dynamic
   padding, dynamic + `data.group_by_length=true`.
4. BERTAdam step vs torch AdamW(foreach=True) on a BERT-base parameter set (scripts/bench_optimizer.py).
5. Start-up: seconds from the command to the first training step (item 2's runs, and a
   `debug=fast` run of its own) beside the floor, measured in the same run: a fresh process
   that imports torch, Lightning and transformers (and one that also imports BERT's model code,
   which every run loads with its model; and one with the garbage collector off while it imports,
   as a run imports them), from the command to the end of its imports.

Variants are interleaved (A B C, B C A, ...) and medians over repeats are reported, so that load
from other processes hits all alike; the ratios are the figures to quote. Writes JSON too.

    python -m scripts.bench            # full: 1k examples x 3 epochs whole runs (~15-25 min on 2 CPU cores)
    python -m scripts.bench --quick    # small version (~5 min)

Run from the repository root: `scripts` is a package there, so its modules import each other by name.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import lightning as L
import torch
from torch.utils.data import DataLoader, SequentialSampler
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainerCallback

from bertlab.data.datamodule import FewSampleDataModule, tokenize
from bertlab.data.length_grouping import epoch_batches, padding_efficiency
from bertlab.data.readers import read_task
from bertlab.data.sampling import make_splits
from bertlab.model.load import load_config, load_model, resolve_model_path
from bertlab.optim.optimizer import build_optimizer
from bertlab.optim.schedules import build_scheduler
from bertlab.run.trainer import build_trainer
from bertlab.training.finetuner import FineTuner
from scripts import bench_optimizer
from scripts.bench_common import REPO, compose_cfg, is_real, task_overrides, write_standins
from scripts.hf_trainer_run import training_args

# ------------------------------------------------------------------ 1. equal settings, in-process


def rate(ends: list[float], sizes: list[int], warmup: int) -> float:
    """Samples/s between the end of step `warmup` and the end of the last step (loop overheads,
    data loading, logging and the optimizer included; the first steps' allocations excluded)."""
    return sum(sizes[warmup:]) / (ends[-1] - ends[warmup - 1])


class LightningClock(L.Callback):
    def __init__(self):
        self.ends = []
        self.widths = []  # padded length of each batch: proof that the loops saw the same batches

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.ends.append(time.perf_counter())
        self.widths.append(batch["input_ids"].shape[1])


class HFClock(TrainerCallback):
    def __init__(self):
        self.ends = []

    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.perf_counter())


class InOrderTrainer(Trainer):
    """The Trainer reading its data in the given order, so all loops see the same batches."""

    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)


class FixedOrderData(FewSampleDataModule):
    """Training batches in dataset order, as the other two loops read them (the datamodule's own
    evaluation loaders sort by length, which would give this loop less padding than the others)."""

    def train_dataloader(self):
        return DataLoader(self.encoded["train"], batch_size=self.batch_size, shuffle=False, collate_fn=self.collate)


def fresh_model(cfg, num_labels):
    L.seed_everything(cfg.seed, verbose=False)
    return load_model(cfg.model.name_or_path, load_config(cfg.model.name_or_path, num_labels, "classification"))


def run_lightning(cfg, splits, n_steps, tmp):
    tokenizer, model = fresh_model(cfg, len(cfg.task.labels))
    dm = FixedOrderData(
        splits,
        tokenizer,
        cfg.task.max_length,
        False,
        cfg.data.batch_size,
        cfg.data.eval_batch_size,
        token_cache_dir=None,
    )
    module = FineTuner(model, cfg.optimizer, cfg.schedule, list(cfg.task.metrics), "classification")
    clock = LightningClock()
    trainer = build_trainer(cfg, Path(tmp), len(splits["train"]), [], [clock])
    trainer.fit(module, datamodule=dm)
    lengths = [len(e["input_ids"]) for e in dm.encoded["train"]]
    bs = cfg.data.batch_size
    assert clock.widths == [max(lengths[i : i + bs]) for i in range(0, len(lengths), bs)], (
        "not the dataset-order batches"
    )
    return clock.ends


def run_hf(cfg, splits, n_steps, tmp):
    tokenizer, model = fresh_model(cfg, len(cfg.task.labels))
    data = tokenize(splits["train"], tokenizer, cfg.task.max_length, False)
    clock = HFClock()
    trainer = InOrderTrainer(
        model=model,
        args=training_args(cfg, tmp, max_steps=n_steps, logging_strategy="no"),
        train_dataset=data,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[clock],
    )
    trainer.train()
    return clock.ends


def run_bare(cfg, splits, n_steps, tmp):
    """The limit: forward, backward, clip, step, schedule; nothing else."""
    tokenizer, model = fresh_model(cfg, len(cfg.task.labels))
    data = tokenize(splits["train"], tokenizer, cfg.task.max_length, False)
    loader = DataLoader(
        data, batch_size=cfg.data.batch_size, shuffle=False, collate_fn=DataCollatorWithPadding(tokenizer)
    )
    optimizer = build_optimizer(model, cfg.optimizer)
    scheduler = build_scheduler(optimizer, cfg.schedule, n_steps)
    ends = []
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ends.append(time.perf_counter())
    return ends


def equal_settings(task_ovr, n_steps, warmup, repeats, model_ovr):
    cfg = compose_cfg(
        task_ovr
        + model_ovr
        + [
            f"trainer.max_steps={n_steps}",
            "trainer.limit_val_batches=0",
            "trainer.enable_progress_bar=false",
            "logger=none",
        ]
    )
    splits = make_splits(read_task(cfg.task), cfg.task, cfg.task.data_seed)
    n = n_steps * cfg.data.batch_size
    splits = {"train": splits["train"][:n], "val": splits["val"][:8], "test": splits["test"][:8]}
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model.name_or_path))
    lengths = [len(e["input_ids"]) for e in tokenize(splits["train"], tokenizer, cfg.task.max_length, False)]
    bs = cfg.data.batch_size
    sizes = [len(lengths[i : i + bs]) for i in range(0, n, bs)]
    variants = {
        "lightning (this project)": run_lightning,
        "transformers.Trainer": run_hf,
        "bare PyTorch loop": run_bare,
    }
    rates = {name: [] for name in variants}
    names = list(variants)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name in names[r % 3 :] + names[: r % 3]:  # rotate the order between repeats
                ends = variants[name](cfg, splits, n_steps, tmp)
                assert len(ends) == n_steps, (name, len(ends))
                rates[name].append(rate(ends, sizes, warmup))
                print(f"  [equal] repeat {r}: {name:<26} {rates[name][-1]:7.2f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "steps": n_steps,
        "warmup_steps": warmup,
        "repeats": repeats,
        "batch_size": bs,
        "padding_efficiency": padding_efficiency(lengths, [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]),
        "samples_per_s": rates,
        "median_samples_per_s": med,
        "ratio_vs_trainer": med["lightning (this project)"] / med["transformers.Trainer"],
        "ratio_vs_bare": med["lightning (this project)"] / med["bare PyTorch loop"],
    }


# ------------------------------------------------------------------ 2 + 5. whole runs, fresh processes


def whole_run(kind, overrides, tmp, tag):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    out = Path(tmp) / f"{kind}-{tag}"
    if kind == "ours":
        cmd = [
            sys.executable,
            str(REPO / "train.py"),
            *overrides,
            "logger=csv",
            "trainer.enable_progress_bar=false",
            f"hydra.run.dir={out}",
            f"data.token_cache={Path(tmp) / f'tokens-{tag}'}",
        ]  # cold token cache
    else:
        cmd = [
            sys.executable,
            "-m",
            "scripts.hf_trainer_run",  # cwd=REPO below: the package `scripts` is found there
            "--out",
            str(out) + ".json",
            "--work-dir",
            str(out),
            "--",
            *overrides,
        ]
    launched = time.time()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.time() - launched
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    if kind == "ours":
        r = json.loads((out / "result.json").read_text())
        main = r["main_metric"]
        test = {"best": r["metrics"].get(f"test_best/{main}"), "last": r["metrics"].get(f"test_last/{main}")}
        sps, pad = r["train_samples_per_s"], r["padding_efficiency"]
        mfu = r.get("mfu")  # GPUs Lightning knows the peak of; None on CPUs
    else:
        r = json.loads(Path(str(out) + ".json").read_text())
        main = r["main_metric"]
        test = {"last": r["test"][main]}
        sps, pad = r["train_samples_per_s"], r["padding_efficiency"]  # training steps only, like ours
        mfu = None
    return {
        "wall_s": wall,
        "mfu": mfu,
        "startup_s": r["first_step_at"] - launched,
        "train_samples_per_s": sps,
        "test": test,
        "main_metric": main,
        "padding_efficiency": pad,
    }


def whole_runs(task_ovr, size_ovr, repeats, tmp, task):
    runs = {"ours": [], "run_glue": []}
    for r in range(repeats):
        for kind in ["ours", "run_glue"] if r % 2 == 0 else ["run_glue", "ours"]:
            res = whole_run(kind, task_ovr + size_ovr, tmp, f"{task}-{r}")
            runs[kind].append(res)
            print(
                f"  [whole run] {task} {kind:<9} wall {res['wall_s']:6.1f}s  start-up {res['startup_s']:5.1f}s  "
                f"train {res['train_samples_per_s']:6.2f} samples/s  test {res['main_metric']} {res['test']}",
                flush=True,
            )
    med = lambda kind, key: statistics.median(x[key] for x in runs[kind])  # noqa: E731
    return {
        "runs": runs,
        "overrides": task_ovr + size_ovr,
        "median_wall_s": {k: med(k, "wall_s") for k in runs},
        "median_train_samples_per_s": {k: med(k, "train_samples_per_s") for k in runs},
        "speedup_wall": med("run_glue", "wall_s") / med("ours", "wall_s"),
        "speedup_samples_per_s": med("ours", "train_samples_per_s") / med("run_glue", "train_samples_per_s"),
    }


# ------------------------------------------------------------------ 3. padding efficiency


def padding_table(tasks, standins, size_ovr, model_ovr, epochs=3):
    rows = {}
    for task in tasks:
        cfg = compose_cfg(task_overrides(task, standins) + size_ovr + model_ovr)
        splits = make_splits(read_task(cfg.task), cfg.task, cfg.task.data_seed)
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model.name_or_path))
        lengths = [len(e["input_ids"]) for e in tokenize(splits["train"], tokenizer, cfg.task.max_length, False)]
        bs = cfg.data.batch_size

        def eff(group, pad_to=None, lengths=lengths, bs=bs):
            return statistics.mean(
                padding_efficiency(lengths, epoch_batches(lengths, bs, group, seed=0, epoch=e), pad_to)
                for e in range(epochs)
            )

        rows[task] = {
            "real_data": is_real(task) if task != "cola_like" else False,
            "n_train": len(lengths),
            "mean_tokens": statistics.mean(lengths),
            "pad_to_128": eff(False, cfg.task.max_length),
            "dynamic": eff(False),
            "dynamic_grouped": eff(True),
        }
    return rows


# ------------------------------------------------------------------ 4. optimizer


def optimizer_bench(quick, tmp):
    path = Path(tmp) / "optimizer.json"
    args = ["--json", str(path)] + (["--params-m", "20", "--repeats", "10"] if quick else ["--repeats", "15"])
    bench_optimizer.main(args)
    return json.loads(path.read_text())


# ------------------------------------------------------------------ 5. start-up beside the floor

# The floor: what no run can avoid, torch + Lightning + transformers imported by a fresh process;
# `+ model code` adds the modules transformers imports to build BERT (every run loads a model).
# `collector paused`: the same imports with Python's garbage collector off, as a run imports them
# (src/bertlab/core/gc_pause.py): the floor of a process that skips the ~1 s of collection too.
FLOOR_CODE = {
    "floor": "import torch, lightning, transformers",
    "floor + model code": "import torch, lightning, transformers; "
    "from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification",
    "floor, collector paused": "import gc; gc.disable(); import torch, lightning, transformers",
}


def floor_seconds(code: str, env: dict) -> float:
    """Seconds from the command to the end of `code`'s imports (the child prints the time then)."""
    launched = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}; import time; print(repr(time.time()))"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"floor import failed:\n{proc.stderr[-3000:]}")
    return float(proc.stdout.splitlines()[-1]) - launched


STARTUP_GOAL_S = 0.5  # command to first training step, over the floor (issue 26)


def run_startup(model_ovr: list[str], env: dict, tmp: str, tag: str, checkout: Path = REPO) -> float:
    """Seconds from the command to the first training step of `train.py debug=fast` (logger=csv),
    in `checkout` (another clone, e.g. main before a change: run by its own .venv's Python)."""
    out = Path(tmp) / f"startup-{tag}"
    python = checkout / ".venv" / "bin" / "python" if checkout != REPO else Path(sys.executable)
    cmd = [str(python), "train.py", "debug=fast", *model_ovr, "logger=csv", "trainer.enable_progress_bar=false"]
    cmd += [f"hydra.run.dir={out}", f"data.token_cache={Path(tmp) / 'tokens-startup'}"]
    launched = time.time()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"start-up run failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "result.json").read_text())["first_step_at"] - launched


def startup_bench(model_ovr: list[str], repeats: int, tmp: str, baseline: Path | None = None) -> dict:
    """Start-up of a `debug=fast` run (a warm token cache, as for every job of a sweep after the
    first) and the floor's, interleaved in one run, medians over `repeats`; with `baseline` (another
    checkout), its train.py too, interleaved with the rest: before and after a change in one run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    ours_kind, base_kind = "train.py debug=fast", "baseline train.py debug=fast"
    checkouts = {ours_kind: REPO, **({base_kind: baseline} if baseline else {})}
    for kind, checkout in checkouts.items():  # fill the token cache and the OS's file cache
        run_startup(model_ovr, env, tmp, f"warm-up-{len(kind)}", checkout)
    kinds = [*FLOOR_CODE, *checkouts]
    seconds = {k: [] for k in kinds}
    for r in range(repeats):
        for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:  # rotate the order
            if kind in FLOOR_CODE:
                s = floor_seconds(FLOOR_CODE[kind], env)
            else:
                s = run_startup(model_ovr, env, tmp, f"{r}-{len(kind)}", checkouts[kind])
            seconds[kind].append(s)
            print(f"  [start-up] {kind:<30} {s:6.2f}s", flush=True)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    ours, floor = med[ours_kind], med["floor"]
    res = {
        "repeats": repeats,
        "seconds": seconds,
        "median_s": med,
        "over_floor_s": ours - floor,
        "over_floor_with_model_code_s": ours - med["floor + model code"],
        "over_floor_collector_paused_s": ours - med["floor, collector paused"],
        "ratio_to_floor": ours / floor,
    }
    if baseline:  # named by its commit: a path would name a folder of this machine
        commit = subprocess.run(
            ["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        res["baseline"] = f"commit {commit.stdout.strip()}" if commit.returncode == 0 else baseline.name
        res["baseline_over_floor_s"] = med[base_kind] - floor
    return res


# ------------------------------------------------------------------ report


def print_table(res):
    print("\n" + "=" * 100)
    m = res["machine"]
    print(
        f"machine: {m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads), torch {m['torch']}, "
        f"device {m['device']}; load avg {m['loadavg_start']} -> {m['loadavg_end']}; model {res['model']}"
    )
    eq = res.get("equal_settings")
    if eq:
        print(
            f"\n1+3. equal settings ({eq['task']}, batch {eq['batch_size']}, {eq['steps']} steps, dynamic padding, "
            f"median of {eq['repeats']}):"
        )
        for name, v in eq["median_samples_per_s"].items():
            print(f"   {name:<28}{v:8.2f} samples/s")
        print(
            f"   ratio this project / Trainer: {eq['ratio_vs_trainer']:.3f}x (goal >= 1.0)   "
            f"/ bare loop: {eq['ratio_vs_bare']:.3f}x (goal >= 0.97)"
        )
    for task, w in res.get("whole_runs", {}).items():
        print(
            f"\n2+5. whole run, {task} ({' '.join(o for o in w['overrides'] if o.startswith('task.n_'))}, 3 epochs, 10 evals), "
            f"median of {len(w['runs']['ours'])}:"
        )
        print(
            f"   {'':<12}{'wall s':>9}{'start-up s':>12}{'train samples/s':>17}{'padding eff':>13}   test {w['runs']['ours'][0]['main_metric']}"
        )
        for kind, label in (("ours", "this project"), ("run_glue", "run_glue.py")):
            rs = w["runs"][kind]
            tests = ", ".join(f"{k} {statistics.mean(r['test'][k] for r in rs):.4f}" for k in rs[0]["test"])
            print(
                f"   {label:<12}{w['median_wall_s'][kind]:9.1f}{statistics.median(r['startup_s'] for r in rs):12.1f}"
                f"{w['median_train_samples_per_s'][kind]:17.2f}{statistics.mean(r['padding_efficiency'] for r in rs):13.3f}   {tests}"
                + (f"   MFU {rs[0]['mfu']:.3f}" if rs[0].get("mfu") is not None else "")
            )
        goal = 1.5 if task == "mrpc" else 3.0
        print(
            f"   speed-up, whole run: {w['speedup_wall']:.2f}x (goal >= {goal}x); training samples/s: "
            f"{w['speedup_samples_per_s']:.2f}x"
        )
    if "padding" in res:
        print("\n3. padding efficiency (real / processed tokens, training batches, batch 16, 1k sample):")
        print(f"   {'task':<12}{'data':<10}{'mean tok':>9}{'pad 128':>9}{'dynamic':>9}{'grouped':>9}")
    for task, p in res.get("padding", {}).items():
        print(
            f"   {task:<12}{'real' if p['real_data'] else 'stand-in':<10}{p['mean_tokens']:9.1f}{p['pad_to_128']:9.3f}"
            f"{p['dynamic']:9.3f}{p['dynamic_grouped']:9.3f}"
        )
    o = res.get("optimizer")
    if o:
        print(
            f"\n4. optimizer step, {o['params'] / 1e6:.0f}M params: bertadam / AdamW foreach = {o['ratio']:.3f}x (goal <= 1.1x)"
        )
    st = res.get("startup")
    if st:
        print(f"\n5. start-up, command to first training step (median of {st['repeats']}, same run):")
        for kind, v in st["median_s"].items():
            over = "" if kind == "floor" else f"   {v - st['median_s']['floor']:+.2f} s over the floor"
            print(f"   {kind:<32}{v:7.2f} s{over}")
        print(
            f"   this project - floor: {st['over_floor_s']:+.2f} s ({st['ratio_to_floor']:.2f}x the floor; goal: "
            f"within {STARTUP_GOAL_S} s); - (floor + model code): {st['over_floor_with_model_code_s']:+.2f} s"
        )
        if "over_floor_collector_paused_s" in st:
            print(f"   this project - (floor, collector paused): {st['over_floor_collector_paused_s']:+.2f} s")
        if "baseline" in st:
            print(f"   baseline: {st['baseline']}, {st['baseline_over_floor_s']:+.2f} s over the floor")
    print("=" * 100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small version: 200 examples, fewer repeats")
    parser.add_argument(
        "--json", default=None, help="where to write the figures (default outputs/bench/bench-<time>.json)"
    )
    parser.add_argument("--model", default="minilm", help="model config (minilm, tiny, bert-base-uncased...)")
    parser.add_argument("--whole-repeats", type=int, default=1, help="whole runs per kind and task")
    parser.add_argument("--startup-repeats", type=int, default=5, help="start-up runs per kind (floor, ours)")
    parser.add_argument(
        "--startup-baseline",
        type=Path,
        default=None,
        help="another checkout (with its .venv) whose train.py start-up is measured interleaved with this one's",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["equal", "whole", "padding", "optimizer", "startup"])
    args = parser.parse_args(argv)
    model_ovr = [f"model={args.model}"]
    size_ovr = ["task.n_train=200", "task.n_val=100"] if args.quick else ["task.n_train=1000", "task.n_val=200"]
    res = {
        "quick": args.quick,
        "model": args.model,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        standins = write_standins(Path(tmp) / "standins")
        if "padding" not in args.skip:
            res["padding"] = padding_table(
                ["mrpc", "rte", "cola_like"], standins, ["task.n_train=1000", "task.n_val=200"], model_ovr
            )
        if "optimizer" not in args.skip:
            res["optimizer"] = optimizer_bench(args.quick, tmp)
        if "equal" not in args.skip:
            n_steps, warmup, repeats = (12, 3, 3) if args.quick else (30, 5, 3)
            res["equal_settings"] = {
                "task": "mrpc",
                **equal_settings(task_overrides("mrpc", standins), n_steps, warmup, repeats, model_ovr),
            }
        if "whole" not in args.skip:
            res["whole_runs"] = {
                task: whole_runs(task_overrides(task, standins), size_ovr + model_ovr, args.whole_repeats, tmp, task)
                for task in ("mrpc", "cola_like")
            }
        if "startup" not in args.skip:
            baseline = args.startup_baseline.resolve() if args.startup_baseline else None
            res["startup"] = startup_bench(model_ovr, 2 if args.quick else args.startup_repeats, tmp, baseline)
    res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    path = Path(args.json or REPO / "outputs" / "bench" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"figures written to {path}")
    return res


if __name__ == "__main__":
    main()
