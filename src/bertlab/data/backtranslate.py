"""Back-translation: paraphrases of a task's training texts, made once on a machine with network
(`bertlab prepare --backtranslate`), read by training (`augment=backtranslation augment.file=FILE`).

    bertlab prepare --backtranslate --task rte --out rte_bt.jsonl [--data-dir glue/RTE]
        [--translation-models Helsinki-NLP/opus-mt-en-de Helsinki-NLP/opus-mt-de-en] [--num-aug 1]

Each text is translated to the pivot language and back with MarianMT models (beam search, so the
file is the same every time); every text of the task's whole training pool is translated, so one
file serves every n_train / data_seed draw. The file is JSON Lines, one line per paraphrase:

    {"task": "rte", "label": "entailment", "original": {"text_a": "...", "text_b": "..."},
     "text_a": "<paraphrase of text_a>", "text_b": "<paraphrase of text_b>"}

(text_b null for single-sentence tasks; label: the task's label name, or the score of a
regression task). Training matches a line to a training example by its original texts and label
(examples carry no ids, and text is what stays the same across GLUE copies and draws), so only
paraphrases of the examples in the run's drawn training split are added: never those of a
validation example drawn from the same pool, nor of the dev pool. Which sentence of a pair the
paraphrase replaces is augment.sentences; a paraphrase that leaves the example unchanged (or an
empty one) is not added.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bertlab.core.errors import ConfigError, DataError, ModelError
from bertlab.core.extras import require
from bertlab.data import fields
from bertlab.data.readers import Example, label_kind

DEFAULT_MODELS = ("Helsinki-NLP/opus-mt-en-de", "Helsinki-NLP/opus-mt-de-en")


def label_value(label, task: DictConfig):
    """How the file writes an example's label: its name, or the regression score."""
    return float(label) if label_kind(task) == "regression" else str(task.labels[label])


def _key(text_a: str, text_b: str | None, label) -> tuple:
    return text_a, text_b, label


def read_paraphrases(path: Path, task: DictConfig) -> dict[tuple, list[tuple[str, str | None]]]:
    """{(original text_a, text_b, label): [(paraphrase a, paraphrase b), ...]} of one file."""
    where = "augment.file"
    try:
        lines = fields.read_text(path, "utf-8-sig", key=None).splitlines()  # bertlab prepare writes UTF-8
    except OSError as err:
        raise ConfigError(
            f"{where}={path}: cannot be read ({err.strerror or err}); write it with "
            f"`bertlab prepare --backtranslate --task {task.name} --out {path}`."
        ) from None
    found: dict[tuple, list] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            original = row["original"]
            key = _key(original["text_a"], original.get("text_b"), row["label"])
            paraphrase = (
                fields.text(row["text_a"], f"{path}, line {number}", "text_a", "paraphrase"),
                row.get("text_b"),
            )
            if paraphrase[1] is not None:
                fields.text(paraphrase[1], f"{path}, line {number}", "text_b", "paraphrase")
            if row["task"] != task.name:
                raise DataError(
                    f"{path}, line {number}: written for task '{row['task']}', not '{task.name}'; write one for "
                    f"this task with `bertlab prepare --backtranslate --task {task.name} --out FILE`."
                )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise DataError(
                f"{path}, line {number}: not a back-translation line ({type(err).__name__}: {err}); each line is "
                '{"task", "label", "original": {"text_a", "text_b"}, "text_a", "text_b"} '
                "(bertlab prepare --backtranslate)."
            ) from None
        found.setdefault(key, []).append(paraphrase)
    return found


def matching_paraphrases(
    path: Path, train: list[Example], task: DictConfig, sides: tuple[bool, bool]
) -> tuple[list[Example], int]:
    """The paraphrased copies of the training examples (label copied), and how many examples had any."""
    paraphrases = read_paraphrases(path, task)
    added, matched = [], 0
    for example in train:
        found = paraphrases.get(_key(example.text_a, example.text_b, label_value(example.label, task)), [])
        matched += bool(found)
        for para_a, para_b in found:
            text_a = para_a if sides[0] else example.text_a
            text_b = para_b if sides[1] else example.text_b
            copy = replace(example, text_a=text_a, text_b=text_b)  # its label and side features kept
            if text_a and text_a.strip() and (text_b is None or text_b.strip()) and copy != example:
                added.append(copy)
    if not matched:
        raise DataError(
            f"augment.file={path}: none of the {len(train)} training examples of '{task.name}' is in it (matched "
            "by their texts and label); was it written from another copy of the data? Write it with "
            f"`bertlab prepare --backtranslate --task {task.name} --out FILE` (and --data-dir as in task.data_dir)."
        )
    return added, matched


# ---------------------------------------------------------------- writing the file (prepare)


class Translator:
    """A seq2seq model and its tokenizer (MarianMT), translating batches with beam search."""

    def __init__(self, model, tokenizer, batch_size: int = 32, max_length: int = 256, num_beams: int = 4):
        self.model, self.tokenizer = model.eval(), tokenizer
        # tokens in and out: no more than the model has positions for (MarianMT: 512; a longer text is cut)
        positions = getattr(model.config, "max_position_embeddings", None) or max_length
        self.max_length = min(max_length, positions - 1)
        self.batch_size, self.num_beams = batch_size, num_beams

    @classmethod
    def load(cls, name: str, device: str, **kwargs) -> Translator:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(name), AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as err:  # not on the hub, no network, not a translation model
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(
                f"--translation-models {name}: cannot be loaded ({first}); give a hub id of a MarianMT model "
                "(this needs network, e.g. Helsinki-NLP/opus-mt-en-de) or a folder holding one."
            ) from None
        return cls(model.to(device), tokenizer, **kwargs)

    def translate(self, texts: list[str], num_return: int = 1) -> list[list[str]]:
        """num_return translations of each text (the best beams), in order."""
        import torch

        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            ).to(self.model.device)
            with torch.no_grad():
                generated = self.model.generate(
                    **batch,
                    num_beams=max(self.num_beams, num_return),
                    num_return_sequences=num_return,
                    max_new_tokens=self.max_length,
                    do_sample=False,
                )
            decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            out += [decoded[i : i + num_return] for i in range(0, len(decoded), num_return)]
        return out


def backtranslate(texts: list[str], forward: Translator, backward: Translator, num_aug: int = 1) -> list[list[str]]:
    """num_aug paraphrases of each text: to the pivot language (the best beam) and back (the best num_aug)."""
    pivot = [t[0] for t in forward.translate(texts)]
    return [[" ".join(p.split()) for p in paras] for paras in backward.translate(pivot, num_aug)]


def backtranslation_lines(
    pool: list[Example], task: DictConfig, forward: Translator, backward: Translator, num_aug: int = 1
) -> list[dict]:
    """The file's lines for a pool of examples: each distinct text translated once."""
    texts = list(dict.fromkeys(t for e in pool for t in (e.text_a, e.text_b) if t is not None))
    paraphrases = dict(zip(texts, backtranslate(texts, forward, backward, num_aug)))
    lines = []
    for example in pool:
        for k in range(num_aug):
            lines.append(
                {
                    "task": task.name,
                    "label": label_value(example.label, task),
                    "original": {"text_a": example.text_a, "text_b": example.text_b},
                    "text_a": paraphrases[example.text_a][k],
                    "text_b": None if example.text_b is None else paraphrases[example.text_b][k],
                }
            )
    return lines


def write_backtranslations(
    task_name: str,
    out: Path,
    models: tuple[str, str] = DEFAULT_MODELS,
    data_dir: Path | None = None,
    num_aug: int = 1,
    batch_size: int = 32,
    max_length: int = 256,
) -> tuple[Path, int]:
    """`bertlab prepare --backtranslate`: the whole training pool of a conf/task task, back-translated
    into `out` (JSON Lines); the path and the number of lines."""
    require("bertlab prepare --backtranslate")  # MarianTokenizer's packages, an extra (core/extras.py)
    import torch

    from bertlab.core.atomic import write_text_atomic
    from bertlab.core.paths import CONF_DIR
    from bertlab.data.readers import read_task

    path = CONF_DIR / "task" / f"{task_name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
        raise ConfigError(f"--task {task_name} is not a task of conf/task; valid: {', '.join(valid)}.")
    if num_aug < 1:
        raise ConfigError(f"--num-aug {num_aug} is invalid: it must be an integer >= 1.")
    task = OmegaConf.load(path)
    if data_dir is not None:
        task.data_dir = str(Path(data_dir).expanduser().resolve())
    pool = read_task(task)["train"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    forward, backward = (Translator.load(name, device, batch_size=batch_size, max_length=max_length) for name in models)
    lines = backtranslation_lines(pool, task, forward, backward, num_aug)
    out = Path(out).expanduser().resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    return out, len(lines)
