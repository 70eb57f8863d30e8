"""Shared by scripts.bench and scripts.hf_trainer_run: the benchmark's tasks, as the same
Hydra config and the same train/val/test splits that `python train.py` builds.

Tasks: MRPC (real GLUE files in ../shared/glue/MRPC when present, else an MRPC-like stand-in:
pairs of BBC title + first body line) and a CoLA-like stand-in (there is no CoLA here): BBC News
*titles*, single short sentences (mean ~9 WordPiece tokens with [CLS] and [SEP], CoLA: 11), 5 topic classes.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hydra import compose, initialize_config_dir

from bertlab.core.paths import CONF_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = REPO.parent / "shared" / "glue"


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def write_standins(folder: Path) -> dict[str, Path]:
    """CSV files made from the packaged BBC corpus: `titles` (CoLA-like) and `pairs` (MRPC-like)."""
    from bertlab.data.readers import read_bbcnews

    cfg = compose_cfg([])
    labels = list(cfg.task.labels)
    pools = read_bbcnews(cfg.task)
    out = {}
    for name in ("titles", "pairs"):
        target = folder / name
        target.mkdir(parents=True, exist_ok=True)
        for split, examples in pools.items():
            with open(target / f"{split}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["a", "b", "label"] if name == "pairs" else ["a", "label"])
                for e in examples:
                    lines = [line.strip() for line in e.text_a.splitlines() if line.strip()]
                    row = [lines[0], lines[1]] if name == "pairs" else [lines[0]]
                    w.writerow(row + [labels[e.label]])
        out[name] = target
    return out


def task_overrides(name: str, standins: dict[str, Path]) -> list[str]:
    """Hydra overrides selecting benchmark task `name` (mrpc, cola_like)."""
    if name == "mrpc" and (SHARED_GLUE / "MRPC" / "train.tsv").exists():
        return ["task=mrpc", f"task.data_dir={SHARED_GLUE / 'MRPC'}"]
    if name == "rte" and (SHARED_GLUE / "RTE" / "train.tsv").exists():
        return ["task=rte", f"task.data_dir={SHARED_GLUE / 'RTE'}"]
    folder, fields = {
        "mrpc": (standins["pairs"], "[a,b]"),
        "cola_like": (standins["titles"], "[a]"),
        "rte": (standins["pairs"], "[a,b]"),
    }[name]
    return [
        "task=csv",
        f"task.data_dir={folder}",
        "task.train_file=train.csv",
        "task.dev_file=dev.csv",
        f"task.text_fields={fields}",
        "task.label_field=label",
    ]


def is_real(name: str) -> bool:
    return (SHARED_GLUE / name.upper() / "train.tsv").exists()
