"""Training samples/s of each `head` against `head=pooler` (the model's own HF head), in one run.

Each head trains the same MiniLM (packaged:minilm) with the real loop (FineTuner, build_trainer)
on the very same batches in the same order (MRPC: the real GLUE files in ../shared/glue when
present, else scripts.bench_common's MRPC-like stand-in). Heads are interleaved (rotated order per
repeat) and the median over repeats is reported, so that load from other processes hits all
alike; the ratio to `pooler` is the figure to quote (docs/results.md, "Heads: speed").

    python -m scripts.bench_heads                         # 40 steps x 3 repeats (~10 min on 2 CPU cores)
    python -m scripts.bench_heads --steps 20 --repeats 2 --heads pooler,mean --json heads.json
    python -m scripts.bench_heads --model tiny --steps 3 --warmup 1 --repeats 1 --heads pooler,mean   # smoke

Run from the repository root: `scripts` is a package there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import lightning as L
import torch

from bertlab.data.datamodule import tokenize
from bertlab.data.readers import read_task
from bertlab.data.sampling import make_splits
from bertlab.heads.build import load_classifier
from bertlab.model.load import load_config
from bertlab.run.trainer import build_trainer
from bertlab.training.finetuner import FineTuner
from scripts.bench import FixedOrderData, LightningClock, rate
from scripts.bench_common import compose_cfg, is_real, task_overrides, write_standins

HEADS = ("pooler", "cls", "mean", "max", "concat_last4", "layers_cnn", "scalar_mix")


def train_once(cfg, splits, tmp) -> list[float]:
    L.seed_everything(cfg.seed, verbose=False)
    config = load_config(cfg.model.name_or_path, len(cfg.task.labels), "classification")
    tokenizer, model = load_classifier(cfg.head, cfg.model.name_or_path, config)
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
    return clock.ends


def bench(heads, steps, warmup, repeats, task_ovr, model="minilm") -> dict:
    base = task_ovr + [
        f"model={model}",
        f"trainer.max_steps={steps}",
        "trainer.limit_val_batches=0",
        "trainer.enable_progress_bar=false",
        "logger=none",
    ]
    cfgs = {head: compose_cfg([*base, f"head={head}"]) for head in heads}
    any_cfg = cfgs[heads[0]]
    splits = make_splits(read_task(any_cfg.task), any_cfg.task, any_cfg.task.data_seed)
    # read_task writes the labels of a task that infers them (the CSV stand-in used where the GLUE
    # files are absent) into the config it read: every head's config needs them
    for cfg in cfgs.values():
        cfg.task.labels = any_cfg.task.labels
    bs, n = any_cfg.data.batch_size, steps * any_cfg.data.batch_size
    splits = {"train": splits["train"][:n], "val": splits["val"][:8], "test": splits["test"][:8]}
    sizes = [len(splits["train"][i : i + bs]) for i in range(0, n, bs)]
    rates = {head: [] for head in heads}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for head in heads[r % len(heads) :] + heads[: r % len(heads)]:
                ends = train_once(cfgs[head], splits, tmp)
                assert len(ends) == steps, (head, len(ends))
                rates[head].append(rate(ends, sizes, warmup))
                print(f"  repeat {r}: {head:<13} {rates[head][-1]:7.2f} samples/s", flush=True)
    median = {head: statistics.median(v) for head, v in rates.items()}
    tokens = [
        len(e["input_ids"]) for e in tokenize(splits["train"], _tokenizer(any_cfg), any_cfg.task.max_length, False)
    ]
    return {
        "model": any_cfg.model.name_or_path,
        "task": any_cfg.task.name,
        "steps": steps,
        "warmup_steps": warmup,
        "repeats": repeats,
        "batch_size": bs,
        "mean_tokens": sum(tokens) / len(tokens),
        "samples_per_s": rates,
        "median_samples_per_s": median,
        "ratio_vs_pooler": {head: median[head] / median["pooler"] for head in heads} if "pooler" in heads else None,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
    }


def _tokenizer(cfg):
    from transformers import AutoTokenizer

    from bertlab.model.load import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(cfg.model.name_or_path))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--heads", default=",".join(HEADS), help="comma-separated head options (conf/head/)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run (batch 16)")
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the rate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="minilm", help="a model option (conf/model/): minilm, tiny (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    heads = [h for h in args.heads.split(",") if h]
    with tempfile.TemporaryDirectory() as standin_dir:
        task_ovr = task_overrides("mrpc", write_standins(Path(standin_dir)))
        print(f"task: MRPC ({'real GLUE' if is_real('mrpc') else 'stand-in'}), model={args.model}", flush=True)
        res = bench(heads, args.steps, args.warmup, args.repeats, task_ovr, args.model)
    print(f"\n{'head':<13} {'samples/s':>10} {'vs pooler':>10}")
    for head in heads:
        ratio = res["ratio_vs_pooler"][head] if res["ratio_vs_pooler"] else float("nan")
        print(f"{head:<13} {res['median_samples_per_s'][head]:10.2f} {ratio:10.3f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
