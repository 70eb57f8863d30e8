"""`bertlab prepare`: download the models and GLUE tasks of a sweep once, for offline compute nodes.

    bertlab prepare --model bert-large-uncased --task rte mrpc stsb cola --out /shared/bertlab-cache

Models go to `<out>/models/<hub id>/` (`huggingface_hub.snapshot_download`, PyTorch weights
only); tasks to `<out>/glue/<GLUE folder>/` as files in the original GLUE format, read back with
the same reader as a downloaded `glue_data/` (`task.data_dir=`). The runs then need no network:

    python train.py -m model=bert-large-uncased model.name_or_path=<out>/models/google-bert/bert-large-uncased \
        task=rte task.data_dir=<out>/glue/RTE ...
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError
from bertlab.core.paths import CONF_DIR

# TensorFlow / Flax / ONNX copies that a PyTorch run never reads (bert-large ships several GB of them)
IGNORE_WEIGHTS = [
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.onnx",
    "*.tflite",
    "tf_model*",
    "flax_model*",
    "rust_model*",
    "onnx/*",
    "openvino/*",
    "coreml/*",
]


def model_id(name: str) -> str:
    """A config name (conf/model/<name>.yaml) to its hub id; anything else is a hub id already."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if path.is_file():
        configured = str(OmegaConf.load(path).name_or_path)
        if configured.startswith("packaged:") or configured == "???":
            raise ConfigError(f"model '{name}' needs no download (or names no hub model); give a hub id instead.")
        return configured
    return name


def task_config(name: str) -> DictConfig:
    path = CONF_DIR / "task" / f"{name}.yaml"
    if not path.is_file() or OmegaConf.load(path).source != "glue":
        glue = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml") if OmegaConf.load(p).source == "glue")
        raise ConfigError(f"task '{name}' is not a GLUE task of conf/task; valid: {', '.join(glue)}.")
    return OmegaConf.load(path)


def download_model(name: str, out: Path) -> Path:
    from huggingface_hub import snapshot_download

    repo_id = model_id(name)
    dest = out / "models" / repo_id
    snapshot_download(repo_id=repo_id, local_dir=dest, ignore_patterns=IGNORE_WEIGHTS)
    return dest


def download_task(name: str, out: Path) -> Path:
    """The hub copy, written as the original GLUE files, so `readers.read_local` reads it like
    a `glue_data/` download (same file names, columns, label names; CoLA without header)."""
    from bertlab.data.readers import GLUE_DIRS, label_kind, read_hub

    task = task_config(name)
    pools = read_hub(task)  # the same label mapping a hub run uses
    dest = out / "glue" / GLUE_DIRS.get(task.hub_config, task.hub_config)
    dest.mkdir(parents=True, exist_ok=True)
    columns = list(task.columns) if task.columns else None
    header = columns or [*task.text_fields, task.label_field]
    for pool, key in (("train", "train_file"), ("dev", "dev_file")):
        lines = [] if columns else [header]  # CoLA's files have no header row: the config names its columns
        for example in pools[pool]:
            label = example.label if label_kind(task) == "regression" else task.labels[example.label]
            # GLUE TSV has no quoting: tabs and line breaks inside a text would split the row
            texts = [" ".join(t.split()) for t in (example.text_a, example.text_b) if t is not None]
            row = {**dict(zip(task.text_fields, texts)), task.label_field: label}
            lines.append([str(row.get(c, "")) for c in header])
        (dest / str(task[key])).write_text("".join("\t".join(fields) + "\n" for fields in lines), encoding="utf-8")
    return dest


def prepare(models: list[str], tasks: list[str], out: Path) -> list[str]:
    """Download everything; the overrides that use it, one line per item."""
    out = Path(out).expanduser().resolve()
    # a conf/model name keeps its settings and name in result.json; a bare hub id goes through model=hf
    lines = [
        f"model={m if (CONF_DIR / 'model' / f'{m}.yaml').is_file() else 'hf'} "
        f"model.name_or_path={download_model(m, out)}"
        for m in models
    ]
    lines += [f"task={t} task.data_dir={download_task(t, out)}" for t in tasks]
    return lines
