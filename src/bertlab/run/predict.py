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

from bertlab.core.errors import ConfigError, DataError
from bertlab.data.features import FeatureFile, feature_fields, row_features, wants_features
from bertlab.data.readers import Example, check_texts, read_unlabelled
from bertlab.problems.registry import problem_of
from bertlab.run.saved_run import SavedRunError, load_saved_config, saved_model_dir
from bertlab.setfit.train import is_setfit

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
    cfg = predicting_config(run_dir)
    rows = read_unlabelled(input_path, list(cfg.task.text_fields), encoding, key="--encoding", side=side_reader(cfg))
    with redirect_stdout(sys.stderr):  # the model's load line; stdout may carry the predictions
        records = predicted(run_dir, cfg, rows)
    labels = class_names(cfg)
    if out_path is None:
        write_records(records, sys.stdout, out_format, labels)
    else:
        with open(out_path, "w", encoding="utf-8", newline="") as f:
            write_records(records, f, out_format, labels)
    return out_path


def predict_texts(run_dir: Path, texts) -> list[dict]:
    """`bertlab.predict(run_dir, texts)`: the records `bertlab predict` writes (a JSONL line each:
    the input's fields, `prediction`, and `probabilities` for classification), one per text, in order.

    A text is a string for a one-text task, a (text_a, text_b) pair for a pair task, or a dict with
    the run's task.text_fields (its other keys are kept, as a file's other columns are)."""
    cfg = predicting_config(run_dir)
    if side_reader(cfg) is not None:
        raise ConfigError(
            f"{run_dir} fused side features (features.fusion={cfg.features.fusion}); bertlab.predict(run_dir, texts) "
            "takes texts only. Write the texts with their feature columns to a file and run "
            f"`bertlab predict {run_dir} --input FILE`."
        )
    fields = list(cfg.task.text_fields)
    if isinstance(texts, (str, dict)):  # one text where a list was meant: its letters (or keys) would be rows
        raise ConfigError(f"bertlab.predict takes a list of texts, e.g. [{texts!r}], not a {type(texts).__name__}.")
    rows = [text_row(text, fields, i) for i, text in enumerate(texts)]
    if not rows:
        raise DataError("bertlab.predict: no texts to predict (the list is empty).")
    return predicted(run_dir, cfg, rows)


def text_row(text, fields: list[str], i: int) -> tuple[dict, Example]:
    """(row, example) for texts[i], as read_unlabelled makes them from a file's row."""
    where = f"bertlab.predict texts[{i}]"
    if isinstance(text, dict):
        missing = [f for f in fields if f not in text]
        if missing:
            raise DataError(
                f"{where}: no key {', '.join(repr(f) for f in missing)}, which the run's task reads "
                f"(task.text_fields={fields}); keys found: {list(text)}."
            )
        row = dict(text)
    elif isinstance(text, str) and len(fields) == 1:
        row = {fields[0]: text}
    elif isinstance(text, (tuple, list)) and len(text) == len(fields):
        row = dict(zip(fields, text))
    else:
        shape = "a string" if len(fields) == 1 else f"a pair ({', '.join(fields)})"
        raise DataError(
            f"{where} is {text!r}; the run's task reads {len(fields)} text(s) per example "
            f"(task.text_fields={fields}): give {shape}, or a dict with those keys."
        )
    check_texts({f: row[f] for f in fields}, where)
    text_a, *text_b = (str(row[f]) for f in fields)
    return row, Example(text_a, text_b[0] if text_b else None, 0)


def predicting_config(run_dir: Path):
    """The saved run's config, for a task whose predictions are one per row of text."""
    cfg = load_saved_config(saved_model_dir(run_dir))
    if not problem_of(cfg.task).sequence:
        raise SavedRunError(
            f"{run_dir} is a task.problem={cfg.task.problem} run; `bertlab predict` writes one prediction per row "
            "of text (classification, regression); test it with `bertlab evaluate RUN_DIR` instead."
        )
    return cfg


def class_names(cfg) -> list[str] | None:
    """The run's class names, in label-index order; None where its labels are numbers (regression)."""
    return [str(label) for label in cfg.task.labels] if problem_of(cfg.task).classifies_texts else None


def predicted(run_dir: Path, cfg, rows: list[tuple[dict, Example]]) -> list[dict]:
    """The saved model's prediction record for each (row, example)."""
    outputs = model_outputs(cfg, saved_model_dir(run_dir), [e for _, e in rows])
    labels = class_names(cfg)
    return [prediction_record(row, output, labels) for (row, _), output in zip(rows, outputs)]


def model_outputs(cfg, model_dir: Path, examples: list[Example]) -> list[list[float]]:
    """The saved model's outputs per example (infer's), loaded as the run's approach saved it."""
    if is_setfit(cfg):  # approach=setfit: setfit's own model folder and predict_proba (bertlab/setfit/)
        from bertlab.setfit.model import load_setfit_model, probabilities

        return probabilities(load_setfit_model(model_dir), examples, cfg.data.eval_batch_size).tolist()
    # torch and transformers: only once the input is good
    from bertlab.run.approach import approach_of
    from bertlab.run.fit import load_trained_model

    tokenizer, model = load_trained_model(cfg, model_dir)
    # the approach's own encoding (approach=prompt: the run's template, and its demonstrations
    # drawn from the run's training split); None: the plain tokenisation the classifier had
    encoder = approach_of(cfg).encoder(cfg, tokenizer, None)
    return infer(model, tokenizer, examples, cfg.task.max_length, cfg.data.eval_batch_size, encoder)


def side_reader(cfg):
    """(row, where) -> the row's raw side features, for a run that fused them; else None."""
    fusion = cfg.get("features", {}).get("fusion", "none")
    if fusion == "none" or not wants_features(cfg.task):
        return None
    spec, id_field = feature_fields(cfg.task), cfg.task.get("id_field")
    vectors = FeatureFile(cfg.task.feature_file) if cfg.task.get("feature_file") is not None else None
    return lambda row, where: row_features(row, where, spec, vectors, id_field)


def infer(
    model, tokenizer, examples: list[Example], max_length: int, batch_size: int, encoder=None
) -> list[list[float]]:
    """The model's outputs per example, in order: class probabilities, or [score] for regression.
    Batches of similar lengths (longest first), as the run evaluated, padded per batch. `encoder`:
    the run's approach's (its encode and collate, as FewSampleDataModule uses them); None: `tokenize`."""
    import torch
    from transformers import DataCollatorWithPadding

    from bertlab.core.devices import resolve_accelerator
    from bertlab.data.datamodule import tokenize
    from bertlab.heads.fusion import fusion_of

    device = torch.device(resolve_accelerator("auto"))
    model.to(device)
    items = encoder.encode(examples, "predict") if encoder else tokenize(examples, tokenizer, max_length, True)
    encoded = [{k: v for k, v in e.items() if k != "labels"} for e in items]
    fusion = fusion_of(model)
    if fusion is not None:  # the side features, scaled by the run's own training statistics
        encoded = [{**item, **fusion.scaler.transform(e.features)} for item, e in zip(encoded, examples)]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]["input_ids"]))
    collate = encoder.collate if encoder else DataCollatorWithPadding(tokenizer)
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
