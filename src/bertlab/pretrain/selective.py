"""Selective masking (`pretrain.masking=selective`): Gu et al. 2020, "Train No Evil: Selective Masking
for Task-Guided Pre-Training", as thunlp/SelectiveMasking runs it (scripts/run_all_pipeline.sh):

1. fine-tune the model on the task (the scorer; their scripts/finetune_origin.sh);
2. score each token's importance on the task's training text with the buffer rule (data/sc_mask_gen.py,
   class SC) and write the labels to `importance.tsv` (inspectable: one row per token);
3. train a token classifier on those labels (their mask_model_pretrain.py, BertForTokenClassification);
4. mask the pre-training corpus with it (sc_mask_gen.py, class ModelGen): per block, the tokens it
   labels important, most confident first, at most mlm_probability of the block's tokens; then the
   stage pre-trains on those masks (stage.py).

Steps 1-2 are one cached entry (the scorer's model and importance.tsv), step 3 another (keyed on the
first), both in pretrain.cache_dir like the stage itself (cache.py), so a sweep over seeds runs them
once; their Trainers are built by core/limits.py, so debug=fast caps them.

The buffer rule (sc_mask_gen.py SC.forward): for a sentence the scorer classifies correctly, with
P(y | sentence) = origin, the buffer starts with the first token; at each position the buffer (the
tokens kept so far, the current one last) is scored; if origin - P(y | buffer) < threshold (0.01 in
their config.sh) the current token is important and is taken out of the buffer again; the next token
is appended. Important stop words are not labelled (their create_mask skips spaCy's stop words; here
scikit-learn's English list where it is installed, else none, said in one line).

Departures, and why: the task's text is cut into sentences by nsp_data.split_sentences (they use
spaCy's sentencizer); for a sentence pair task, the sentences of the first text are scored with the
second text kept whole as the second segment (as their ASC class keeps the aspect whole); the
in-domain masks are chosen per block of running text (mlm_data.py), not per sentence; a block in
which the classifier finds no important token gets its most likely one (else an all-unmasked batch
would give an empty loss); the chosen positions are fixed (their DUPE_FACTOR=1), the 80/10/10
replacement is drawn afresh each epoch.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from bertlab.core.atomic import follow_umask
from bertlab.core.errors import ConfigError
from bertlab.core.limits import lightning_trainer
from bertlab.core.lines import say
from bertlab.model.load import _quiet_transformers, resolve_model_path
from bertlab.pretrain.nsp_data import split_sentences
from bertlab.problems.registry import problem_named

IMPORTANCE_FILE = "importance.tsv"
NOT_A_LABEL = -100


def stop_words() -> frozenset[str]:
    try:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    except ImportError:
        say("pretrain.masking=selective: scikit-learn is not installed, so stop words are labelled like other words")
        return frozenset()
    return frozenset(ENGLISH_STOP_WORDS)


def buffer_rule(
    sentences: list[list[int]],
    origin: list[float],
    prob: Callable[[list[list[int]], list[int]], list[float]],
    threshold: float,
) -> list[list[tuple[float, bool]]]:
    """Per sentence, per token: (P(y | buffer), important), by sc_mask_gen.py's rule (module docstring).
    `prob(buffers, which)`: P(label of sentence which[k] | buffers[k]) for each k, batched over the
    sentences at one position, as their code evaluates them."""
    buffers = [s[:1] for s in sentences]
    out: list[list[tuple[float, bool]]] = [[] for _ in sentences]
    active = [i for i, s in enumerate(sentences) if s]
    position = 0
    while active:
        probs = prob([buffers[i] for i in active], active)
        still = []
        for i, p in zip(active, probs):
            important = origin[i] - p < threshold
            out[i].append((float(p), important))
            if important:
                buffers[i].pop()
            if position + 1 < len(sentences[i]):
                buffers[i].append(sentences[i][position + 1])
                still.append(i)
        active = still
        position += 1
    return out


class _Encoder:
    """Token ids -> model inputs with the family's special tokens (one segment, or two)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.uses_types = "token_type_ids" in tokenizer.model_input_names

    def encode(self, a: list[int], b: list[int] | None = None) -> tuple[list[int], list[int], list[int]]:
        """(input_ids, token_type_ids, positions of a's tokens), cut to max_length (b first, then a)."""
        tok = self.tokenizer
        room = self.max_length - tok.num_special_tokens_to_add(pair=b is not None)
        if b is not None:
            b = b[: max(0, room - min(len(a), room // 2))]
        a = a[: room - (len(b) if b is not None else 0)]
        enc = (
            tok("a", "b", return_special_tokens_mask=True)
            if b is not None
            else tok("a", return_special_tokens_mask=True)
        )
        ids, special = enc["input_ids"], enc["special_tokens_mask"]
        content = [k for k, s in enumerate(special) if not s]
        parts = [ids[: content[0]], a]
        types = [0] * (content[0] + len(a))
        if b is not None:
            middle = ids[content[0] + 1 : content[1]]
            parts += [middle, b, ids[content[1] + 1 :]]
            types += [0] * len(middle) + [1] * len(b) + [1] * len(ids[content[1] + 1 :])
        else:
            parts.append(ids[content[0] + 1 :])
            types += [0] * len(ids[content[0] + 1 :])
        input_ids = [t for part in parts for t in part]
        return input_ids, types, list(range(content[0], content[0] + len(a)))

    def batch(self, rows: list[tuple[list[int], list[int]]], labels=None) -> dict:
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        types = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, tt) in enumerate(rows):
            input_ids[r, : len(ids)], types[r, : len(ids)], mask[r, : len(ids)] = (
                torch.tensor(ids),
                torch.tensor(tt),
                1,
            )
        batch = {"input_ids": input_ids, "attention_mask": mask}
        if self.uses_types:
            batch["token_type_ids"] = types
        if labels is not None:
            if isinstance(labels[0], list):  # per token
                lab = torch.full((len(rows), width), NOT_A_LABEL, dtype=torch.long)
                for r, row in enumerate(labels):
                    lab[r, : len(row)] = torch.tensor(row)
                batch["labels"] = lab
            else:
                batch["labels"] = torch.tensor(labels)
        return batch


class Supervised(L.LightningModule):
    """An HF model trained on its own loss (the scorer, the token classifier): AdamW, linear decay
    after 10% warmup (the fine-tuning recipe of their finetune_origin.sh)."""

    def __init__(self, model, lr: float):
        super().__init__()
        self.model, self.lr = model, lr

    def training_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        self.log("pretrain/selective_loss", loss, batch_size=batch["input_ids"].shape[0])
        return loss

    def configure_optimizers(self):
        from transformers import get_linear_schedule_with_warmup

        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.lr)
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def fit(model, items: list, collate, s, epochs: int, lr: float, trainer_cfg, limits, seed: int) -> int:
    """Train `model` on `items` by epochs (capped by limits); the optimizer steps taken."""
    L.seed_everything(seed, workers=True, verbose=False)
    loader = DataLoader(
        items, batch_size=s.batch_size, shuffle=True, collate_fn=collate, generator=torch.Generator().manual_seed(seed)
    )
    trainer = lightning_trainer(
        limits,
        accelerator=trainer_cfg.accelerator,
        devices=1,
        max_epochs=epochs,
        max_steps=-1,
        deterministic=trainer_cfg.deterministic,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=False,
        num_sanity_val_steps=0,
    )
    model.train()
    trainer.fit(Supervised(model, lr), train_dataloaders=loader)
    model.eval()
    return trainer.global_step


def check_task(task_cfg, train: list) -> None:
    problem = task_cfg.get("problem")
    classifies = problem is not None and problem_named(problem).classifies_texts
    if not classifies or not train or not isinstance(train[0].text_a, str):
        raise ConfigError(
            f"pretrain.masking=selective scores tokens by how much they move the probability of the example's "
            f"label, so it needs a sequence classification task; task '{task_cfg.name}' is not one "
            "(problem: regression, or token / multiple-choice / question-answering data): use pretrain.masking=dynamic."
        )


def score_importance(folder: Path, source: str, task_cfg, train: list, s, max_length: int, trainer_cfg, limits, seed):
    """Steps 1-2 into `folder`: the fine-tuned scorer and importance.tsv; the record."""
    start = time.time()
    check_task(task_cfg, train)
    path = resolve_model_path(source)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = _Encoder(tokenizer, max_length)
    n_labels = len(task_cfg.labels)
    torch.manual_seed(seed)
    with _quiet_transformers():
        scorer = AutoModelForSequenceClassification.from_pretrained(path, num_labels=n_labels, dtype=torch.float32)

    def ids(text):
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"] if text else None

    items = [(encoder.encode(ids(e.text_a), ids(e.text_b))[:2], int(e.label)) for e in train]
    steps = fit(
        scorer,
        items,
        lambda batch: encoder.batch([r for r, _ in batch], [y for _, y in batch]),
        s,
        s.scorer_epochs,
        s.scorer_lr,
        trainer_cfg,
        limits,
        seed,
    )

    @torch.no_grad()
    def distribution(rows: list[tuple[list[int], list[int]]]) -> torch.Tensor:
        step = s.batch_size * 4
        parts = [
            scorer(**encoder.batch(rows[k : k + step])).logits.float().softmax(-1) for k in range(0, len(rows), step)
        ]
        return torch.cat(parts) if parts else torch.zeros((0, n_labels))

    def probs(rows: list[tuple[list[int], list[int]]], labels: list[int]) -> list[float]:
        p = distribution(rows)
        return [float(p[r, y]) for r, y in enumerate(labels)]

    # the sentences of each example's first text (the second kept whole), as WordPiece tokens
    sentences, where = [], []
    for n, e in enumerate(train):
        context = ids(e.text_b)
        for m, sentence in enumerate(split_sentences(e.text_a)):
            tokens = ids(sentence)[: max_length // 2]
            if tokens:
                sentences.append((tokens, context, int(e.label)))
                where.append((n, m))
    p_whole = distribution([encoder.encode(t, c)[:2] for t, c, _ in sentences])
    whole = [float(p_whole[k, y]) for k, (_, _, y) in enumerate(sentences)]
    # only sentences the scorer classifies correctly (their SC.forward: sen_pred == ground truth)
    correct = [k for k, (_, _, y) in enumerate(sentences) if int(p_whole[k].argmax()) == y]
    result = buffer_rule(
        [sentences[k][0] for k in correct],
        [whole[k] for k in correct],
        lambda buffers, which: probs(
            [encoder.encode(b, sentences[correct[w]][1])[:2] for b, w in zip(buffers, which)],
            [sentences[correct[w]][2] for w in which],
        ),
        s.threshold,
    )
    stops = stop_words()
    n_important = n_tokens = 0
    with open(folder / IMPORTANCE_FILE, "w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(
            ["example", "sentence", "position", "token", "p_label_whole", "p_label_buffer", "gap", "important"]
        )
        for k, scores in zip(correct, result):
            tokens = tokenizer.convert_ids_to_tokens(sentences[k][0])
            for pos, (token, (p, important)) in enumerate(zip(tokens, scores)):
                labelled = important and token.lower().lstrip("#Ġ▁") not in stops
                n_important += labelled
                n_tokens += 1
                out.writerow(
                    [*where[k], pos, token, f"{whole[k]:.6f}", f"{p:.6f}", f"{whole[k] - p:.6f}", int(labelled)]
                )
    follow_umask(folder)
    say(
        f"pretrain (selective): scorer fine-tuned {steps} steps; {len(correct)} of {len(sentences)} sentences "
        f"classified correctly; {n_important} of {n_tokens} tokens important (written to {IMPORTANCE_FILE})"
    )
    if n_important == 0:
        raise ConfigError(
            "pretrain.masking=selective: the buffer rule found no important token in the task's training text "
            f"({len(correct)} of {len(sentences)} sentences classified correctly by the scorer); raise "
            "pretrain.selective.scorer_epochs or task.n_train, or use pretrain.masking=dynamic."
        )
    return {
        "scorer_steps": steps,
        "sentences": len(sentences),
        "sentences_correct": len(correct),
        "tokens": n_tokens,
        "important": n_important,
        "importance_file": IMPORTANCE_FILE,
        "seconds": round(time.time() - start, 3),
    }


def read_importance(folder: Path) -> list[tuple[list[str], list[int]]]:
    """importance.tsv back into sentences: (tokens, labels 0/1)."""
    rows: dict[tuple[str, str], tuple[list[str], list[int]]] = {}
    with open(Path(folder) / IMPORTANCE_FILE, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            tokens, labels = rows.setdefault((row["example"], row["sentence"]), ([], []))
            tokens.append(row["token"])
            labels.append(int(row["important"]))
    return list(rows.values())


def train_token_classifier(folder: Path, source: str, scorer_dir: Path, s, max_length: int, trainer_cfg, limits, seed):
    """Step 3 into `folder`: the token classifier trained on importance.tsv's labels; the record."""
    start = time.time()
    path = resolve_model_path(source)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = _Encoder(tokenizer, max_length)
    items = []
    for tokens, labels in read_importance(scorer_dir):
        input_ids, types, positions = encoder.encode(tokenizer.convert_tokens_to_ids(tokens))
        row = [NOT_A_LABEL] * len(input_ids)
        for pos, label in zip(positions, labels):
            row[pos] = label
        items.append(((input_ids, types), row))
    torch.manual_seed(seed)
    with _quiet_transformers():
        model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2, dtype=torch.float32)
    steps = fit(
        model,
        items,
        lambda batch: encoder.batch([r for r, _ in batch], [y for _, y in batch]),
        s,
        s.classifier_epochs,
        s.classifier_lr,
        trainer_cfg,
        limits,
        seed,
    )
    with _quiet_transformers():
        model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    follow_umask(folder)
    say(f"pretrain (selective): token classifier trained {steps} steps on {len(items)} sentences")
    return {"classifier_steps": steps, "sentences": len(items), "seconds": round(time.time() - start, 3)}


@torch.no_grad()
def select_positions(blocks: list[dict], classifier_dir: str | Path, mlm_probability: float, batch_size: int = 32):
    """Step 4: block["selected"] = the positions to predict, chosen by the token classifier
    (ModelGen.forward: tokens labelled 1, by the logit of that label, at most max(1, int(p * tokens)))."""
    with _quiet_transformers():
        model = AutoModelForTokenClassification.from_pretrained(str(classifier_dir), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(classifier_dir))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for k in range(0, len(blocks), batch_size):
        chunk = blocks[k : k + batch_size]
        width = max(len(b["input_ids"]) for b in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, b in enumerate(chunk):
            ids[r, : len(b["input_ids"])], mask[r, : len(b["input_ids"])] = torch.tensor(b["input_ids"]), 1
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        for r, b in enumerate(chunk):
            content = [i for i, sp in enumerate(b["special_tokens_mask"]) if not sp]
            if not content:
                b["selected"] = []
                continue
            important = [i for i in content if logits[r, i].argmax() == 1]
            ranked = sorted(important, key=lambda i: -float(logits[r, i, 1]))
            if not ranked:  # departure: the most likely token, so that no block is left without a prediction
                ranked = [max(content, key=lambda i: float(logits[r, i, 1] - logits[r, i, 0]))]
            b["selected"] = sorted(ranked[: max(1, int(mlm_probability * len(content)))])
    return blocks


def selective_classifier(cfg, splits: dict, node, identity: str, limits, run_dir: Path) -> tuple[str, dict]:
    """Steps 1-3, each cached (cache.py) on what it depends on: (the token classifier's folder, the record)."""
    from bertlab.pretrain.cache import cached_stage, stage_key
    from bertlab.pretrain.corpus import corpus_fingerprint

    s = node.selective
    train = splits["train"]
    check_task(cfg.task, train)
    source = cfg.model.name_or_path
    common = {
        "model": identity,
        "max_length": node.max_length,
        "seed": node.seed,
        # resolved, as stage.py's key: a CPU job must not reuse a GPU-trained scorer
        "accelerator": ("cuda" if torch.cuda.is_available() else "cpu")
        if cfg.trainer.accelerator == "auto"
        else str(cfg.trainer.accelerator),
        **({"limits": dict(limits)} if limits is not None else {}),
    }
    labelled = corpus_fingerprint([f"{e.label}\t{e.text_a}\t{e.text_b}" for e in train])
    scorer_key = stage_key(
        {
            "stage": "selective_scorer",
            **common,
            "train": labelled,
            "labels": list(cfg.task.labels),
            "settings": {k: s[k] for k in ("threshold", "scorer_epochs", "scorer_lr", "batch_size")},
        }
    )
    classifier_key = stage_key(
        {
            "stage": "selective_classifier",
            **common,
            "scorer": scorer_key,
            "settings": {k: s[k] for k in ("classifier_epochs", "classifier_lr", "batch_size")},
        }
    )

    def place(key, build):
        if node.cache_dir is None:
            folder = Path(run_dir) / "pretrain" / key
            folder.mkdir(parents=True, exist_ok=True)
            return folder, build(folder), False
        return cached_stage(node.cache_dir, key, build)

    scorer_dir, scorer, scorer_reused = place(
        scorer_key,
        lambda f: score_importance(f, source, cfg.task, train, s, node.max_length, cfg.trainer, limits, node.seed),
    )
    classifier_dir, classifier, classifier_reused = place(
        classifier_key,
        lambda f: train_token_classifier(f, source, scorer_dir, s, node.max_length, cfg.trainer, limits, node.seed),
    )
    if scorer_reused or classifier_reused:
        say(
            f"pretrain (selective): reused {'the scorer and ' if scorer_reused else ''}the token classifier "
            f"({classifier_dir}); importance labels in {Path(scorer_dir) / IMPORTANCE_FILE}"
        )
    return str(classifier_dir), {
        "scorer": {**scorer, "key": scorer_key, "dir": str(scorer_dir), "reused": scorer_reused},
        "classifier": {**classifier, "key": classifier_key, "dir": str(classifier_dir), "reused": classifier_reused},
        "importance_file": str(Path(scorer_dir) / IMPORTANCE_FILE),
    }
