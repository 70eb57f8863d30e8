"""Full fine-tuning vs LoRA vs IA3 vs prefix tuning vs BitFit (`peft=`), side by side in one run:
trainable parameters, peak memory and training samples/s, on MiniLM and a random bert-base-sized BERT.

Each (model, method) trains in a fresh process (so each peak is its own) with the real loop
(build_model as `python train.py` builds it, FineTuner, build_trainer) on the same batches in the
same order (MRPC: the real GLUE files in ../shared/glue when present, else scripts.bench_common's
MRPC-like stand-in), batch 16, max length 128, each method at its config's defaults. Memory:
on a GPU the peak allocated by torch during training; on a CPU the process's peak resident set
(ru_maxrss) and how far training took it above the loaded model (activations, gradients and
the optimizer's state: what a method saves). Methods are interleaved per repeat and the median
rate is reported, so that load from other processes hits all alike.

    python -m scripts.bench_peft                                   # 20 steps x 1 repeat, both models
    python -m scripts.bench_peft --models minilm --steps 40 --repeats 3 --json peft.json
    python -m scripts.bench_peft --models tiny --steps 3 --warmup 1   # smoke

Run from the repository root: `scripts` is a package there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

METHODS = ("none", "lora", "ia3", "prefix", "bitfit")
MODELS = ("minilm", "bert-base-random")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one(model: str, method: str, steps: int, warmup: int, standin_dir: Path) -> dict:
    """In this process: build, train `steps` steps, measure. The parent runs it in a child."""
    import lightning as L
    import torch

    from bertlab.data.readers import read_task
    from bertlab.data.sampling import make_splits
    from bertlab.methods.peft_tuning import parameter_counts
    from bertlab.run.fit import build_model
    from bertlab.run.trainer import build_trainer
    from bertlab.training.finetuner import FineTuner
    from scripts.bench import FixedOrderData, LightningClock, rate
    from scripts.bench_common import compose_cfg, task_overrides, write_standins
    from scripts.gpu_check import BERT_BASE, write_random_bert

    model_ovr = [f"model={model}"]
    if model == "bert-base-random":
        path = write_random_bert(standin_dir / "bert-base-random", BERT_BASE)
        model_ovr = ["model=hf", f"model.name_or_path={path}", "model.name=bert-base-random", "model.lr=2e-5"]
    cfg = compose_cfg(
        task_overrides("mrpc", write_standins(standin_dir))
        + model_ovr
        + [
            f"peft={method}",
            f"trainer.max_steps={steps}",
            "trainer.limit_val_batches=0",
            "trainer.enable_progress_bar=false",
            "logger=none",
            "data.batch_size=16",
            "task.max_length=128",
        ]
    )
    splits = make_splits(read_task(cfg.task), cfg.task, cfg.task.data_seed)
    bs, n = cfg.data.batch_size, steps * cfg.data.batch_size
    splits = {"train": splits["train"][:n], "val": splits["val"][:8], "test": splits["test"][:8]}
    L.seed_everything(cfg.seed, verbose=False)
    tokenizer, net = build_model(cfg, pair=True, num_labels=len(cfg.task.labels))
    dm = FixedOrderData(splits, tokenizer, 128, False, bs, cfg.data.eval_batch_size, token_cache_dir=None)
    module = FineTuner(net, cfg.optimizer, cfg.schedule, list(cfg.task.metrics), "classification")
    clock = LightningClock()
    loaded = _rss_mib()
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(cfg, Path(tmp), len(splits["train"]), [], [clock])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.fit(module, datamodule=dm)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    sizes = [len(splits["train"][i : i + bs]) for i in range(0, n, bs)]
    return {
        "model": model,
        "method": method,
        "parameters": parameter_counts(net),
        "samples_per_s": rate(clock.ends, sizes, warmup),
        "peak_rss_mib": round(peak),
        "training_mib": round(peak - loaded),  # above the loaded model
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads",
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help="minilm, bert-base-random, tiny (smoke)")
    parser.add_argument("--methods", default=",".join(METHODS), help="peft options (conf/peft/)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run (batch 16)")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the rate")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "METHOD"), help=argparse.SUPPRESS)  # the child
    parser.add_argument("--standins", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one, args.steps, args.warmup, args.standins)))
        return
    models = [m for m in args.models.split(",") if m]
    methods = [m for m in args.methods.split(",") if m]
    runs: dict[tuple[str, str], list[dict]] = {(m, p): [] for m in models for p in methods}
    with tempfile.TemporaryDirectory() as standins:
        for r in range(args.repeats):
            for model in models:
                for method in methods[r % len(methods) :] + methods[: r % len(methods)]:
                    child = [sys.executable, "-m", "scripts.bench_peft", "--one", model, method]
                    child += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--standins", standins]
                    proc = subprocess.run(child, capture_output=True, text=True)
                    if proc.returncode != 0:
                        sys.exit(f"{model} peft={method} failed:\n{proc.stderr[-3000:]}")
                    runs[(model, method)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    last = runs[(model, method)][-1]
                    print(f"  repeat {r}: {model:<17} {method:<7} {last['samples_per_s']:7.2f} samples/s", flush=True)
    rows = []
    for results in runs.values():
        first = results[0]
        rows.append(
            {
                **{k: first[k] for k in ("model", "method", "parameters", "device")},
                "samples_per_s": statistics.median(r["samples_per_s"] for r in results),
                "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in results),
                "training_mib": statistics.median(r["training_mib"] for r in results),
                "peak_gpu_mib": first["peak_gpu_mib"],
            }
        )
    print(
        f"\n{'model':<17} {'peft':<7} {'trainable':>11} {'of total':>9} {'samples/s':>10} {'peak MiB':>9} {'training MiB':>13}"
    )
    for row in rows:
        p = row["parameters"]
        peak = row["peak_gpu_mib"] if row["peak_gpu_mib"] is not None else row["peak_rss_mib"]
        print(
            f"{row['model']:<17} {row['method']:<7} {p['trainable']:>11,} {p['trainable'] / p['total']:>8.2%} "
            f"{row['samples_per_s']:>10.2f} {peak:>9} {row['training_mib']:>13}"
        )
    print(f"device: {rows[0]['device']}; {args.steps} steps, batch 16, length <= 128; median of {args.repeats}")
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "repeats": args.repeats, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
