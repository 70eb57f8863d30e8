"""`python -m scripts.gpu_check`: this project's GPU figures in one command (sized for under 8 minutes
on one H100; not yet run on one), printed as markdown tables and written as JSON (`--out`):

1. Fine-tuning a bert-base-sized BERT (12 layers, hidden 768, 12 heads, 110M parameters; random
   weights: none are downloaded) through the real run (`run/fit.py`: FineTuner, datamodule,
   Trainer) in bf16 mixed precision, batch 32 x 128 tokens: training samples/s, model TFLOP/s
   from the throughput callback's FLOPs count (callbacks/throughput.py), MFU against the card's
   dense bf16 peak from PEAK_BF16_TFLOPS below, peak GPU memory, wall time.
2. The wall time of 16 MiniLM RTE-1k jobs (experiment=paper_1k, seeds 0..15) on the gpus launcher
   at jobs_per_gpu 1, 2, 4, 8 (scripts/sweeps/jobs_per_gpu.sh), on the real GLUE RTE files given
   with --glue, else on an RTE-shaped stand-in written from the packaged BBC corpus (premise: an
   article's first lines; hypothesis: its own title, or another article's: entailment or not).
No DDP figure: a run trains on one device (run/checks.py refuses several: DDP's padded
shards would repeat test examples); several GPUs are used by sweeping one job per GPU (item 2).

    python -m scripts.gpu_check                      # everything (a GPU)
    python -m scripts.gpu_check --glue /data/glue    # the real RTE files
    python -m scripts.gpu_check --smoke              # every code path on the CPU, tiny sizes:
                                                     # the tiny model, 2 jobs at jobs_per_gpu 1 and 2 on 2
                                                     # logical GPUs

Run from the repository root (`scripts` is a package there).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO = Path(__file__).resolve().parents[1]

# Dense (no sparsity) bf16 tensor-core peak per GPU, TFLOP/s, from NVIDIA's data sheets; the first
# name that the device's name contains wins (so the specific H100 forms come before "H100").
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM5 ("NVIDIA H100 80GB HBM3")
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
}

BERT_BASE = {"num_hidden_layers": 12, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}


def peak_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak from PEAK_BF16_TFLOPS; None for a card not in it (and the CPU)."""
    return next((peak for name, peak in PEAK_BF16_TFLOPS.items() if name in device_name), None)


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def write_random_bert(folder: Path, shape: dict) -> Path:
    """A random-weight BERT of `shape` with the packaged MiniLM's uncased WordPiece tokenizer (the
    vocabulary of bert-base-uncased: 30,522), saved as a checkpoint `model.name_or_path` can name."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from bertlab.model.load import resolve_model_path

    if (folder / "config.json").exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("packaged:minilm"))
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **shape)
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def fine_tuning(model_dir: Path, steps: int, batch: int, precision: str, folder: Path) -> dict:
    """One fine-tuning run of `steps` steps through run/fit.py on the default task (BBC News: every
    article is longer than 128 tokens, so every batch is batch x 128), in this process: the
    record's throughput and the peak GPU memory."""
    import torch

    from bertlab.run.fit import Run, train
    from scripts.bench_common import compose_cfg

    # the training pool holds 1,701 articles: a longer run takes more than one pass over its sample
    n = min(batch * steps, 640)
    cfg = compose_cfg(
        [
            f"model.name_or_path={model_dir}",
            "model.name=bert-base-random",
            "logger=none",
            f"data.batch_size={batch}",
            f"data.eval_batch_size={2 * batch}",
            "task.max_length=128",
            f"task.n_train={n}",
            "task.n_val=64",
            "task.n_test=64",
            f"trainer.max_steps={steps}",
            "trainer.num_evals=1",
            f"trainer.precision={precision}",
            "trainer.enable_progress_bar=false",
            "trainer.diagnostics_every_n_steps=1000000",
            "resume=false",
            "data.token_cache=null",
        ]
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.time()
    record = train(cfg, Run(folder, "gpu_check"))
    wall = time.time() - start
    peak = peak_tflops(device_name())
    tflops = record["model_tflops_per_s"]
    return {
        "steps": record["global_steps"],
        "batch": batch,
        "max_length": 128,
        "precision": record["precision"],
        "samples_per_s": record["train_samples_per_s"],
        "model_tflops_per_s": tflops,
        "peak_bf16_tflops": peak,
        "mfu": round(tflops / peak, 4) if tflops and peak else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "wall_s": round(wall, 1),
    }


def write_rte_standin(folder: Path, seed: int = 0) -> Path:
    """An RTE-shaped GLUE folder (RTE/train.tsv, RTE/dev.tsv: index, sentence1, sentence2, label) from
    the packaged BBC corpus: sentence1 an article's first body lines, sentence2 its own title
    (entailment) or the title of another article (not_entailment), half each; 2,000 training pairs
    and RTE's 277 dev pairs, so that paper_1k draws its 1k + 1k from the training file."""
    from bertlab.data.readers import read_bbcnews
    from scripts.bench_common import compose_cfg

    pools = read_bbcnews(compose_cfg([]).task)
    articles = [e.text_a for split in ("train", "dev") for e in pools[split]]
    rng = random.Random(seed)
    rows = []
    for i, text in enumerate(articles):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        own = i % 2 == 0
        title = lines[0] if own else articles[(i + 1 + rng.randrange(len(articles) - 1)) % len(articles)].split("\n")[0]
        rows.append((" ".join(lines[1:3]), title.strip(), "entailment" if own else "not_entailment"))
    rng.shuffle(rows)
    rte = folder / "RTE"
    rte.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.tsv", rows[:2000]), ("dev.tsv", rows[2000:2277])):
        with open(rte / name, "w", newline="") as f:
            w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            w.writerow(["index", "sentence1", "sentence2", "label"])
            for i, (a, b, label) in enumerate(part):
                w.writerow([i, a.replace("\t", " "), b.replace("\t", " "), label])
    return folder


TABLE_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|$")


def jobs_per_gpu(glue: Path, ns: list[int], jobs: int, model: str, extra: list[str], folder: Path) -> dict:
    """scripts/sweeps/jobs_per_gpu.sh: `jobs` jobs per N, its table read back."""
    env = {
        **os.environ,
        "GLUE": str(glue),
        "NS": " ".join(map(str, ns)),
        "JOBS": str(jobs),
        "MODEL": model,
        "PYTHON": sys.executable,
        "SWEEP_DIR": str(folder),
    }
    start = time.time()
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "sweeps" / "jobs_per_gpu.sh"), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"jobs_per_gpu.sh failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rows = [TABLE_ROW.match(line.strip()) for line in proc.stdout.splitlines()]
    table = [
        {"jobs_per_gpu": int(m[1]), "wall_s": float(m[2]), "s_per_job": float(m[3])} for m in rows if m is not None
    ]
    if [r["jobs_per_gpu"] for r in table] != ns:
        raise RuntimeError(f"jobs_per_gpu.sh printed no row for every N:\n{proc.stdout[-2000:]}")
    return {"jobs": jobs, "model": model, "extra": extra, "rows": table, "wall_s": round(time.time() - start, 1)}


def markdown(res: dict) -> str:
    f = res["fine_tuning"]
    lines = [
        f"GPU check, {res['date']}, {res['device']} x {res['device_count']} (torch {res['torch']}, {res['mode']}):",
        "",
        "| model | precision | batch x length | samples/s | model TFLOP/s | peak TFLOP/s | MFU | peak memory (GiB) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {res['model']} | {f['precision']} | {f['batch']} x {f['max_length']} | {f['samples_per_s']} | "
        f"{f['model_tflops_per_s']} | {f['peak_bf16_tflops'] or 'n/a'} | {f['mfu'] or 'n/a'} | "
        f"{f['peak_memory_gib'] or 'n/a'} | {f['wall_s']} |",
    ]
    j = res["jobs_per_gpu"]
    lines += [
        "",
        f"{j['jobs']} {j['model']} RTE-1k jobs (experiment=paper_1k, {res['rte']}) on the gpus launcher:",
        "",
        "| jobs_per_gpu | wall time (s) | s per job |",
        "|---|---|---|",
        *(f"| {r['jobs_per_gpu']} | {r['wall_s']:.0f} | {r['s_per_job']:.1f} |" for r in j["rows"]),
    ]
    lines += ["", f"total: {res['total_s']:.0f} s"]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every code path on the CPU, at tiny sizes")
    parser.add_argument("--glue", type=Path, help="a folder holding RTE/ (GLUE); default: an RTE-shaped stand-in")
    parser.add_argument("--steps", type=int, default=60, help="bert-base fine-tuning steps (default 60)")
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8], help="jobs_per_gpu values")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per jobs_per_gpu value")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    import torch

    if not args.smoke and not torch.cuda.is_available():
        parser.error("no GPU is visible; --smoke runs every code path on the CPU")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        tmp = Path(tmp)
        if args.smoke:  # the same calls at sizes a CPU runs in seconds
            shape = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
            steps, batch, precision = 2, 4, "32-true"
            ns, jobs, model = [1, 2], 2, "tiny"
            extra = ["debug=fast", "hydra.launcher.gpus=2"]  # 2 logical GPUs (Ray), no GPU needed
        else:
            shape, steps, batch, precision = BERT_BASE, args.steps, 32, "bf16-mixed"
            ns, jobs, model, extra = args.ns, args.jobs, "minilm", []
        model_dir = write_random_bert(tmp / "bert", shape)
        res = {
            "date": time.strftime("%Y-%m-%d"),
            "device": device_name(),
            "device_count": torch.cuda.device_count(),
            "torch": torch.__version__,
            "mode": "smoke (CPU, tiny sizes: no figure to quote)" if args.smoke else "full",
            "model": "random BERT " + "/".join(str(shape[k]) for k in ("num_hidden_layers", "hidden_size")),
        }
        print(f"[gpu_check] fine-tuning {res['model']} on {res['device']}", flush=True)
        res["fine_tuning"] = fine_tuning(model_dir, steps, batch, precision, tmp / "fine_tuning")
        glue = args.glue or write_rte_standin(tmp / "glue")
        res["rte"] = f"GLUE RTE files in {args.glue}" if args.glue else "an RTE-shaped stand-in from BBC News"
        print(f"[gpu_check] {jobs} {model} jobs at jobs_per_gpu {ns}", flush=True)
        res["jobs_per_gpu"] = jobs_per_gpu(glue, ns, jobs, model, extra, tmp / "jobs_per_gpu")
    res["total_s"] = round(time.time() - started, 1)
    print(markdown(res), flush=True)
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
