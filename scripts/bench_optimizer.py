"""Time one optimizer step of BERTAdam (our AdamFamily) against torch.optim.AdamW(foreach=True).

Both step the same BERT-base-shaped parameter set (random weights, fixed random gradients),
grouped by `param_groups` as in training (decay / no-decay). The two are timed in alternation so
that load from other processes hits both alike; the first `--warmup` steps of each are dropped
(state allocation, caches). Target: BERTAdam <= 1.1x AdamW.

    python -m scripts.bench_optimizer                 # ~110M params (bert-base-uncased)
    python -m scripts.bench_optimizer --params-m 20 --repeats 30 --json bench.json
"""

import argparse
import json
import platform
import statistics
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

from bertlab.optim.adam import AdamFamily
from bertlab.optim.param_groups import param_groups


def bert_config(params_m: float | None) -> BertConfig:
    """bert-base-uncased's shape, or (with `params_m`) the same shape narrowed to about that size."""
    base = BertConfig(num_labels=2)
    if params_m is None:
        return base
    best = None
    for hidden in range(64, base.hidden_size + 1, 64):  # 64 per head, as in BERT
        cfg = BertConfig(
            hidden_size=hidden, num_attention_heads=hidden // 64, intermediate_size=4 * hidden, num_labels=2
        )
        size = count_params(cfg) / 1e6
        if best is None or abs(size - params_m) < abs(best[0] - params_m):
            best = (size, cfg)
    return best[1]


def count_params(cfg: BertConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in BertForSequenceClassification(cfg).parameters())


def timed_step(optimizer, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params-m", type=float, default=None, help="shrink to about this many million params")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per optimizer")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per optimizer first")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = bert_config(args.params_m)
    model = BertForSequenceClassification(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    kw = dict(lr=2e-5, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    optimizers = {
        "bertadam (AdamFamily)": AdamFamily(
            param_groups(model, kw["lr"], kw["weight_decay"]), bias_correction=False, **kw
        ),
        "torch AdamW foreach": torch.optim.AdamW(param_groups(model, kw["lr"], kw["weight_decay"]), foreach=True, **kw),
    }
    times = {name: [] for name in optimizers}
    for i in range(args.warmup + args.repeats):
        for name, optimizer in optimizers.items():
            elapsed = timed_step(optimizer, device)
            if i >= args.warmup:
                times[name].append(elapsed)

    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["bertadam (AdamFamily)"] / medians["torch AdamW foreach"]
    print(
        f"{n_params / 1e6:.1f}M params (hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers), "
        f"{len(list(model.parameters()))} tensors, device {device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.repeats} timed steps each after {args.warmup} warmup"
    )
    print(f"{'optimizer':<24}{'median ms':>12}{'min ms':>10}{'max ms':>10}")
    for name, t in times.items():
        print(f"{name:<24}{medians[name] * 1e3:>12.2f}{min(t) * 1e3:>10.2f}{max(t) * 1e3:>10.2f}")
    print(f"ratio bertadam / adamw (median): {ratio:.3f}x  (target <= 1.1x)")

    if args.json:
        record = {
            "params": n_params,
            "hidden_size": cfg.hidden_size,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "warmup": args.warmup,
            "median_s": medians,
            "all_s": times,
            "ratio": ratio,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=2)
    return ratio


if __name__ == "__main__":
    main()
