"""`bertlab predict RUN_DIR --input FILE [--out FILE]`: a saved run's predictions for new texts.

The input is a CSV, TSV or JSONL file (by its extension, as task files are read) whose header has
the run's task.text_fields; every other column is kept. A run trained with side features
(features=last_layer|embedding) needs them in the input too, as the task's rows had them: the
task.feature_fields columns, and for a task.feature_file the task.id_field column, whose ids are
looked up in the run's feature file (the path in its bertlab.yaml); they are scaled with the
training split's statistics saved with the run (data/features.py). The output repeats each input row and adds
`prediction` (the label name; the score for a regression task) and, for classification, one
`prob_<label>` column per class (in JSONL: `probabilities`, {label: p}). Its format follows its
extension; by default it is `<input stem>.predictions<input suffix>` beside the input, and `-`
writes it to stdout (in the input's format).
"""

import csv
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

from bertlab.core.errors import ConfigError
from bertlab.data.features import FeatureFile, feature_fields, row_features, wants_features
from bertlab.data.readers import Example, read_unlabelled
from bertlab.run.saved_run import SavedRunError, load_saved_config, saved_model_dir

FORMATS = (".csv", ".tsv", ".jsonl")
STDOUT = "-"


def file_format(path: Path, what: str) -> str:
    if path.suffix not in FORMATS:
        raise ConfigError(
            f"{what} {path}: unknown format '{path.suffix or '(no extension)'}'; name a .csv, .tsv or .jsonl file."
        )
    return path.suffix


def default_output(input_path: Path) -> Path:
    return input_path.with_name(f"{input_path.stem}.predictions{input_path.suffix}")


def predict(run_dir: Path, input_path: Path, out: str | None = None, encoding: str = "utf-8") -> Path | None:
    """Write the predictions; returns the output file (None for stdout). `encoding`: the input's
    (--encoding; its own, not the run's task.encoding: a new file may come from anywhere)."""
    input_path = Path(input_path)
    in_format = file_format(input_path, "--input")
    out_path = None if out == STDOUT else Path(out) if out else default_output(input_path)
    out_format = in_format if out_path is None else file_format(out_path, "--out")
    model_dir = saved_model_dir(run_dir)
    cfg = load_saved_config(model_dir)
    if cfg.task.problem not in ("classification", "regression"):
        raise SavedRunError(
            f"{run_dir} is a task.problem={cfg.task.problem} run; `bertlab predict` writes one prediction per row "
            "of text (classification, regression); test it with `bertlab evaluate RUN_DIR` instead."
        )
    rows = read_unlabelled(input_path, list(cfg.task.text_fields), encoding, key="--encoding", side=side_reader(cfg))

    from bertlab.run.fit import load_trained_model  # torch and transformers: only once the input is good

    with redirect_stdout(sys.stderr):  # the model's load line; stdout may carry the predictions
        tokenizer, model = load_trained_model(cfg, model_dir)
    outputs = infer(model, tokenizer, [e for _, e in rows], cfg.task.max_length, cfg.data.eval_batch_size)
    labels = [str(label) for label in cfg.task.labels] if cfg.task.problem == "classification" else None
    records = [prediction_record(row, output, labels) for (row, _), output in zip(rows, outputs)]
    if out_path is None:
        write_records(records, sys.stdout, out_format, labels)
    else:
        with open(out_path, "w", encoding="utf-8", newline="") as f:
            write_records(records, f, out_format, labels)
    return out_path


def side_reader(cfg):
    """(row, where) -> the row's raw side features, for a run that fused them; else None."""
    fusion = cfg.get("features", {}).get("fusion", "none")
    if fusion == "none" or not wants_features(cfg.task):
        return None
    spec, id_field = feature_fields(cfg.task), cfg.task.get("id_field")
    vectors = FeatureFile(cfg.task.feature_file) if cfg.task.get("feature_file") is not None else None
    return lambda row, where: row_features(row, where, spec, vectors, id_field)


def infer(model, tokenizer, examples: list[Example], max_length: int, batch_size: int) -> list[list[float]]:
    """The model's outputs per example, in order: class probabilities, or [score] for regression.
    Batches of similar lengths (longest first), as the run evaluated, padded per batch."""
    import torch
    from transformers import DataCollatorWithPadding

    from bertlab.data.datamodule import tokenize
    from bertlab.heads.fusion import fusion_of
    from bertlab.run.trainer import accelerator

    device = torch.device(accelerator("auto"))
    model.to(device)
    encoded = [{k: v for k, v in e.items() if k != "labels"} for e in tokenize(examples, tokenizer, max_length, True)]
    fusion = fusion_of(model)
    if fusion is not None:  # the side features, scaled by the run's own training statistics
        encoded = [{**item, **fusion.scaler.transform(e.features)} for item, e in zip(encoded, examples)]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]["input_ids"]))
    collate = DataCollatorWithPadding(tokenizer)
    outputs: list[list[float]] = [[] for _ in encoded]
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch_ids = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in collate([encoded[i] for i in batch_ids]).items()}
            logits = model(**batch).logits.float()
            values = logits if model.config.problem_type == "regression" else logits.softmax(dim=-1)
            for i, row in zip(batch_ids, values.cpu().tolist()):
                outputs[i] = row
    return outputs


def prediction_record(row: dict, output: list[float], labels: list[str] | None) -> dict:
    if labels is None:
        return {**row, "prediction": output[0]}
    best = max(range(len(output)), key=output.__getitem__)
    return {**row, "prediction": labels[best], "probabilities": dict(zip(labels, output))}


def write_records(records: list[dict], f, out_format: str, labels: list[str] | None) -> None:
    if out_format == ".jsonl":
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    flat = [{**{k: v for k, v in r.items() if k != "probabilities"}, **_prob_columns(r)} for r in records]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    if out_format == ".csv":
        writer = csv.DictWriter(f, columns)
    else:  # as GLUE's TSV is read (no quoting): a tab or newline inside a text is escaped
        writer = csv.DictWriter(f, columns, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, escapechar="\\")
    writer.writeheader()
    writer.writerows(flat)


def _prob_columns(record: dict) -> dict:
    return {f"prob_{label}": p for label, p in record.get("probabilities", {}).items()}
