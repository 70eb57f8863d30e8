"""Training samples/s of each task problem's head against sequence classification, at equal tokens
per batch, in one run.

Each problem trains the same MiniLM (packaged:minilm) through its own transformers class
(AutoModelFor{SequenceClassification, TokenClassification, MultipleChoice, QuestionAnswering}, as
`python train.py task=...` builds it: problems/) on batches of the same shape in tokens: 16
sequences of --length tokens (multiple choice: 4 questions x 4 endings), with their problem's labels
(a class, a tag per token, the right ending, a start and an end token). One training step is
forward + loss + backward + AdamW step, the arithmetic a run's step does; the data pipeline is left
out on purpose (a batch of real text of this shape costs the same). Problems are interleaved
(rotated order per repeat) and the median over repeats is reported, so that load from other
processes hits all alike; the ratio to classification is the figure to quote (docs/results.md, "Task problems").

    python -m scripts.bench_problems                              # 20 steps x 3 repeats (~6 min on 2 CPU cores)
    python -m scripts.bench_problems --model tiny --steps 3 --warmup 1 --repeats 1   # smoke

Run from the repository root: `scripts` is a package there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from bertlab.model.load import load_config, load_model
from bertlab.problems.registry import problem_named
from scripts.bench_common import compose_cfg

SEQUENCES = 16  # per batch, for every problem: the same tokens per batch
CHOICES = 4  # multiple choice: 16 sequences = 4 questions x 4 endings (SWAG's 4)
NUM_TAGS = 9  # CoNLL-2003's NER tags
PROBLEM_NAMES = ("classification", "token_classification", "multiple_choice", "question_answering")


def batch(problem: str, length: int, vocab: int, gen: torch.Generator) -> tuple[dict, int]:
    """A batch of SEQUENCES x length tokens and its labels; and how many examples it holds."""
    ids = torch.randint(1000, vocab, (SEQUENCES, length), generator=gen)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    if problem == "classification":
        return {**inputs, "labels": torch.randint(0, 2, (SEQUENCES,), generator=gen)}, SEQUENCES
    if problem == "token_classification":
        return {**inputs, "labels": torch.randint(0, NUM_TAGS, (SEQUENCES, length), generator=gen)}, SEQUENCES
    if problem == "multiple_choice":
        n = SEQUENCES // CHOICES
        shaped = {k: v.view(n, CHOICES, length) for k, v in inputs.items()}
        return {**shaped, "labels": torch.randint(0, CHOICES, (n,), generator=gen)}, n
    positions = {k: torch.randint(1, length, (SEQUENCES,), generator=gen) for k in ("start_positions", "end_positions")}
    return {**inputs, **positions}, SEQUENCES


def model_for(problem: str, name_or_path: str):
    num_labels = {"classification": 2, "token_classification": NUM_TAGS}.get(problem, 2)
    config = load_config(name_or_path, num_labels, problem_named(problem).kind)
    model = load_model(name_or_path, config, auto_class=problem_named(problem).auto_class)[1]
    model.train()
    return model


def train_rate(problem: str, name_or_path: str, steps: int, warmup: int, length: int) -> float:
    """Examples per second over the steps after `warmup` (each step timed on its own)."""
    torch.manual_seed(0)
    model = model_for(problem, name_or_path)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    gen = torch.Generator().manual_seed(0)
    times, examples = [], 0
    for step in range(steps):
        inputs, n = batch(problem, length, model.config.vocab_size, gen)
        start = time.perf_counter()
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            times.append(time.perf_counter() - start)
            examples += n
    return examples / sum(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default=",".join(PROBLEM_NAMES), help="comma-separated task.problem values")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=4, help="first steps left out of the rate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--model", default="minilm", help="a model option (conf/model/): minilm, tiny (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    problems = [p for p in args.problems.split(",") if p]
    name_or_path = compose_cfg([f"model={args.model}"]).model.name_or_path
    print(f"model={args.model} ({name_or_path}), {SEQUENCES} x {args.length} tokens per batch", flush=True)
    rates: dict[str, list[float]] = {p: [] for p in problems}
    for r in range(args.repeats):
        for problem in problems[r % len(problems) :] + problems[: r % len(problems)]:
            rates[problem].append(train_rate(problem, name_or_path, args.steps, args.warmup, args.length))
            print(f"  repeat {r}: {problem:<22} {rates[problem][-1]:8.2f} examples/s", flush=True)
    median = {p: statistics.median(v) for p, v in rates.items()}
    per_example = {p: CHOICES if p == "multiple_choice" else 1 for p in problems}
    base = median.get("classification")
    print(f"\n{'problem':<22} {'examples/s':>11} {'sequences/s':>12} {'tokens/s':>9} {'vs classification':>18}")
    for p in problems:
        seqs = median[p] * per_example[p]
        ratio = f"{seqs / base:.2f}" if base else "-"
        print(f"{p:<22} {median[p]:11.2f} {seqs:12.2f} {seqs * args.length:9.0f} {ratio:>18}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": name_or_path,
                    "tokens_per_batch": SEQUENCES * args.length,
                    "steps": args.steps,
                    "warmup_steps": args.warmup,
                    "repeats": args.repeats,
                    "examples_per_s": rates,
                    "median_examples_per_s": median,
                    "torch_threads": torch.get_num_threads(),
                    "machine": platform.processor() or platform.machine(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
