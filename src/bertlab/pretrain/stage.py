"""Further pre-training: the masked-LM stages of `pretrain=tapt|dapt|dapt_tapt`, before fine-tuning.

`further_pretrain` is the one call run/fit.py (and `bertlab pretrain`) makes: for each stage of
`pretrain.stages` in order it gathers the corpus (corpus.py), keys the stage (cache.py), and
either finds it in the cache or trains it (`train_stage`); it returns the folder fine-tuning
starts from and the `pretrain` part of result.json.

One stage (`train_stage`): the masked-LM model of the starting checkpoint (model.py: a fresh head
said in one line), the blocks and masks of mlm_data.py, the optimizer and schedule of
`pretrain.optimizer` / `pretrain.schedule` (the optim/ builders, as fine-tuning uses them), a
Lightning Trainer of its own. The held-out MLM loss is measured before training (step 0) and at
every validation; early stopping (`pretrain.patience`) watches it, and the weights of the lowest
held-out loss are the stage's result (the starting weights if training never beats them). MLM
loss, masked-token accuracy and perplexity are logged to the run's loggers as `pretrain/...`
(and to the cache entry's own metrics.csv, which every job that reuses it can read).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from bertlab.callbacks.keep_best import BestWeights
from bertlab.core.errors import ConfigError
from bertlab.core.limits import lightning_trainer
from bertlab.core.lines import say
from bertlab.core.values import keys_under
from bertlab.model.load import resolve_model_path
from bertlab.optim.optimizer import build_optimizer
from bertlab.optim.schedules import build_scheduler
from bertlab.pretrain.cache import cached_stage, files_fingerprint, stage_key
from bertlab.pretrain.corpus import corpus_fingerprint, domain_corpus, task_corpus
from bertlab.pretrain.masking import MaskingSettings
from bertlab.pretrain.mlm_data import build_mlm_data
from bertlab.pretrain.model import load_mlm_model, pretrained_pooler, save_stage_model
from bertlab.pretrain.selective import select_positions, selective_classifier
from bertlab.pretrain.settings import stage_settings
from bertlab.pretrain.snapshots import SaveEveryNSteps, use_saved_step

PREFIX = "pretrain"
# keys of the pretrain node that do not change what a stage learns (the corpus keys are covered by
# the corpus' content, cache_dir by where it is)
NOT_IN_KEY = ("name", "stages", "corpus", "domain_corpus", "cache_dir", "per_stage", "use_step")


def build_stage_optimizer(model: torch.nn.Module, optimizer_cfg, schedule_cfg, total_steps: int):
    with keys_under(PREFIX):  # the builders' messages name pretrain.optimizer.* / pretrain.schedule.*
        optimizer = build_optimizer(model, optimizer_cfg)
        return optimizer, build_scheduler(optimizer, schedule_cfg, total_steps)


class MaskedLM(L.LightningModule):
    """One masked-LM model: its loss, masked-token accuracy and perplexity; the best weights."""

    def __init__(self, model: torch.nn.Module, optimizer_cfg, schedule_cfg):
        super().__init__()
        self.model = model
        self.optimizer_cfg, self.schedule_cfg = optimizer_cfg, schedule_cfg
        # the weights of the lowest held-out loss, in memory (a copy per improvement): fine-tuning's
        # keep-best (callbacks/keep_best.py), from inf so that the step-0 loss is the first kept
        self.best = BestWeights("min", score=math.inf)
        self.history: list[dict] = []  # one row per held-out validation
        # loss sum, correct, masked tokens; NSP loss sum, correct, pairs (objective=mlm_nsp)
        self._sums = torch.zeros(6, dtype=torch.float64)

    def masked_logits(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(logits, labels) of the masked tokens only, and the next-sentence logits where the batch
        has sentence pairs (objective=mlm_nsp; None otherwise). The models' own forward projects every
        position onto the vocabulary, ~85% of them for nothing: half of MiniLM's FLOPs and most of
        its memory. A hook on the base model hands the head only the masked positions' hidden
        states (every *ForMaskedLM here feeds the base's output[0] to its head), so the head, the
        loss and the accuracy cost 15% of what they would; the loss is the same (a test checks it
        against the model's own)."""
        labels = batch["labels"]
        masked = labels != -100

        def only_masked(module, args, output):
            hidden = output[0][masked].unsqueeze(0)
            if isinstance(output, tuple):
                return (hidden, *output[1:])
            output["last_hidden_state"] = hidden
            return output

        handle = self.model.base_model.register_forward_hook(only_masked)
        try:
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "next_sentence_label")}
            output = self.model(**inputs)
        finally:
            handle.remove()
        # *ForMaskedLM names its scores logits; BertForPreTraining prediction_logits and seq_relationship_logits
        logits = output.logits if "logits" in output else output.prediction_logits
        return logits[0], labels[masked], output.get("seq_relationship_logits")

    def training_step(self, batch, batch_idx):
        logits, labels, nsp_logits = self.masked_logits(batch)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        size = batch["labels"].shape[0]
        if nsp_logits is not None:  # BertForPreTraining's total_loss: the two means added, unweighted
            nsp_loss = torch.nn.functional.cross_entropy(nsp_logits.float(), batch["next_sentence_label"])
            self.log(f"{PREFIX}/train_mlm_loss", loss, batch_size=size)
            self.log(f"{PREFIX}/train_nsp_loss", nsp_loss, batch_size=size)
            loss = loss + nsp_loss
        if not torch.isfinite(loss):
            raise RuntimeError(f"pretrain: the MLM loss became {float(loss)} at step {self.global_step}")
        accuracy = (logits.argmax(-1) == labels).float().mean()
        self.log(f"{PREFIX}/train_loss", loss, prog_bar=True, batch_size=size)
        self.log(f"{PREFIX}/train_accuracy", accuracy, batch_size=size)
        return loss

    def validation_step(self, batch, batch_idx):
        logits, labels, nsp_logits = self.masked_logits(batch)
        # summed over the masked tokens, so the held-out loss is per token whatever the batching
        loss = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        count = torch.tensor(labels.numel())
        sums = [loss.detach().cpu().double(), correct.cpu().double(), count.double()]
        if nsp_logits is not None:  # summed over the pairs likewise
            pairs = batch["next_sentence_label"]
            nsp = torch.nn.functional.cross_entropy(nsp_logits.float(), pairs, reduction="sum")
            nsp_correct = (nsp_logits.argmax(-1) == pairs).sum()
            sums += [nsp.detach().cpu().double(), nsp_correct.cpu().double(), torch.tensor(float(len(pairs)))]
        else:
            sums += [torch.tensor(0.0, dtype=torch.float64)] * 3
        self._sums += torch.stack([torch.as_tensor(x, dtype=torch.float64) for x in sums])

    def on_validation_epoch_end(self):
        loss_sum, correct, count, nsp_sum, nsp_correct, pairs = self._sums.tolist()
        self._sums.zero_()
        if count == 0:
            raise ConfigError(
                "pretrain.held_out: the held-out blocks have no masked token; raise pretrain.held_out "
                "or pretrain.masking.mlm_probability."
            )
        mlm_loss = loss_sum / count
        row = {"step": self.global_step, "loss": mlm_loss, "accuracy": correct / count}
        if pairs:  # the objective's loss, as trained: MLM per token + NSP per pair (early stopping watches it)
            row |= {"mlm_loss": mlm_loss, "nsp_loss": nsp_sum / pairs, "nsp_accuracy": nsp_correct / pairs}
            row["loss"] = mlm_loss + row["nsp_loss"]
        row["perplexity"] = math.exp(min(mlm_loss, 50))
        loss = row["loss"]
        self.history.append(row)
        # logged at the steps done, as the fine-tuning validations (training/finetuner.py log_steps_done)
        self.log_dict(
            {**{f"{PREFIX}/val_{k}": float(v) for k, v in row.items() if k != "step"}, "step": float(row["step"])}
        )
        self.best.offer(loss, self.global_step, self.model)

    def restore_best(self) -> None:
        self.best.restore(self.model)

    def configure_optimizers(self):
        total = int(self.trainer.estimated_stepping_batches)
        optimizer, scheduler = build_stage_optimizer(self.model, self.optimizer_cfg, self.schedule_cfg, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def stage_trainer(
    p: DictConfig, trainer_cfg: DictConfig, precision: str, folder: Path, loggers, callbacks, limits=None
):
    """The stage's Trainer; `limits`: the job's caps (debug=fast, core/limits.py)."""
    from bertlab.core.devices import resolve_accelerator  # the rule fine-tuning's Trainer uses too

    max_steps = p.max_steps if p.max_steps not in (None, -1) else -1
    return lightning_trainer(
        limits,
        accelerator=resolve_accelerator(trainer_cfg.accelerator),
        devices=1,  # the stage is small and shared: one device, whatever fine-tuning uses
        precision=precision,
        max_epochs=-1 if max_steps > 0 else p.max_epochs,
        max_steps=max_steps,
        gradient_clip_val=p.gradient_clip_val,
        val_check_interval=1.0 / p.num_evals_per_epoch,
        num_sanity_val_steps=0,
        deterministic=trainer_cfg.deterministic,
        log_every_n_steps=trainer_cfg.log_every_n_steps,
        enable_progress_bar=trainer_cfg.enable_progress_bar,
        enable_checkpointing=False,
        enable_model_summary=False,
        logger=[*loggers, CSVLogger(save_dir=str(folder), name="", version="")],
        callbacks=callbacks,
        default_root_dir=str(folder),
    )


def train_stage(
    folder: Path,
    kind: str,
    source: str,
    label: str,
    texts: list[str],
    p: DictConfig,
    trainer_cfg: DictConfig,
    precision: str,
    loggers,
    limits=None,
    selector: str | None = None,
) -> dict:
    """Train one stage from `source` on `texts`; save the model into `folder`; its record.
    `limits`: the job's caps (debug=fast, core/limits.py); `selector`: the token classifier that
    chooses the masked positions (masking=selective, selective.py)."""
    start = time.time()
    L.seed_everything(p.seed, workers=True, verbose=False)
    tokenizer, model, head = load_mlm_model(source, p.seed, label=label, objective=p.objective)
    say(f"pretrain ({kind}): {head}")
    data = build_mlm_data(
        texts,
        tokenizer,
        max_length=p.max_length,
        long_documents=p.long_documents,
        masking=MaskingSettings.from_config(p),
        held_out=p.held_out,
        batch_size=p.batch_size,
        eval_batch_size=p.eval_batch_size,
        seed=p.seed,
        objective=p.objective,
    )
    if selector is not None:
        select_positions(data.train_blocks + data.held_out_blocks, selector, p.mlm_probability)
    corpus = {
        "documents": data.n_documents,
        "tokens": data.n_tokens,
        "train_blocks": data.n_train_blocks,
        "held_out_blocks": data.n_held_out_blocks,
        "fingerprint": corpus_fingerprint(texts),
    }
    say(
        f"pretrain ({kind}): {corpus['documents']} documents, {corpus['tokens']} tokens, "
        f"{corpus['train_blocks']} training + {corpus['held_out_blocks']} held-out blocks of <= {p.max_length}"
    )
    module = MaskedLM(model, p.optimizer, p.schedule)
    # BertForPreTraining has its own pooler, trained by NSP; a *ForMaskedLM has none: carry the start's
    pooler = {} if p.objective == "mlm_nsp" else pretrained_pooler(source)
    callbacks = []
    if p.patience > 0:
        callbacks.append(
            EarlyStopping(monitor=f"{PREFIX}/val_loss", mode="min", patience=p.patience, check_on_train_epoch_end=False)
        )
    saver = SaveEveryNSteps(folder, p.save_every_n_steps, tokenizer, pooler) if p.save_every_n_steps else None
    if saver is not None:
        callbacks.append(saver)
    trainer = stage_trainer(p, trainer_cfg, precision, folder, loggers, callbacks, limits)
    trainer.validate(module, dataloaders=data.val_dataloader(), verbose=False)  # the loss before: step 0
    before = dict(module.history[0])
    trainer.fit(module, train_dataloaders=data.train_dataloader(), val_dataloaders=data.val_dataloader())
    if module.history[-1]["step"] != trainer.global_step:  # max_steps ended it between validations
        trainer.validate(module, dataloaders=data.val_dataloader(), verbose=False)
    module.restore_best()
    after = dict(min(module.history, key=lambda r: r["loss"]))
    save_stage_model(module.model, tokenizer, folder, pooler)
    seconds = round(time.time() - start, 3)
    say(
        f"pretrain ({kind}): held-out {'MLM + NSP' if p.objective == 'mlm_nsp' else 'MLM'} loss "
        f"{before['loss']:.4f} -> {after['loss']:.4f} "
        f"(best at step {after['step']} of {trainer.global_step}), {seconds:.0f} s"
    )
    return {
        "stage": kind,
        "model_from": label,
        "head": head,
        "corpus": corpus,
        "steps": trainer.global_step,
        "epochs": round(
            trainer.global_step / math.ceil(data.n_train_blocks / p.batch_size), 3
        ),  # passes over the blocks
        "best_step": after["step"],
        "stopped_early": bool(p.patience > 0 and callbacks[0].stopped_epoch > 0),
        "objective": p.objective,
        "saved_steps": saver.saved if saver is not None else [],
        "held_out_before": before,
        "held_out_after": after,
        "validations": module.history,
        "seconds": seconds,  # the training time of the job that built it
        "created_at": time.time(),
    }


def model_identity(name_or_path: str) -> str:
    """What a stage starting from `name_or_path` depends on: the files' content for a folder (the
    packaged models included), the name for a hub model."""
    path = Path(resolve_model_path(name_or_path)).expanduser()
    return f"files:{files_fingerprint(path)}" if path.is_dir() else f"hub:{name_or_path}"


def further_pretrain(
    cfg: DictConfig, splits: dict, run_dir: Path, loggers=(), precision: str = "32-true", pools: dict | None = None
) -> tuple[str, dict]:
    """(the model fine-tuning starts from, result.json's `pretrain`). pretrain=none: the configured
    model, untouched (nothing is read, nothing is drawn from any random generator)."""
    p = cfg.pretrain
    if not p.stages:
        return cfg.model.name_or_path, {"name": p.name}
    start = time.time()
    settings = OmegaConf.to_container(p, resolve=True)
    limits = cfg.get("limits")  # debug=fast's caps (core/limits.py)
    source, label = cfg.model.name_or_path, cfg.model.name_or_path
    identity = model_identity(source)
    stages = []
    for kind in p.stages:
        node = stage_settings(p, kind)  # pretrain.* with pretrain.per_stage.<kind>.* over it
        own = OmegaConf.to_container(node, resolve=True)
        if kind == "tapt":
            texts = task_corpus(cfg.task, splits, p.corpus, pools=pools)
        else:
            texts = domain_corpus(p.domain_corpus, cfg.task, splits, pools=pools)
        selector, selective = None, None
        if node.masking == "selective":  # the scorer and the token classifier first, cached likewise
            selector, selective = selective_classifier(
                cfg, splits, node, model_identity(cfg.model.name_or_path), limits, run_dir
            )
        key = stage_key(
            {
                "stage": kind,
                "model": identity,
                "corpus": corpus_fingerprint(texts),
                "settings": {k: v for k, v in own.items() if k not in NOT_IN_KEY},
                **({"selector": selective["classifier"]["key"]} if selective else {}),
                # resolved (as run/trainer.accelerator does): a CPU job must not reuse a GPU-trained stage
                "accelerator": ("cuda" if torch.cuda.is_available() else "cpu")
                if cfg.trainer.accelerator == "auto"
                else str(cfg.trainer.accelerator),
                "precision": precision,
                "deterministic": str(cfg.trainer.deterministic),
                # a capped stage (debug=fast) is another model: an uncapped run must never reuse it
                **({"limits": OmegaConf.to_container(limits)} if limits is not None else {}),
            }
        )

        def build(folder: Path, kind=kind, source=source, label=label, texts=texts, node=node, selector=selector):
            return train_stage(
                folder, kind, source, label, texts, node, cfg.trainer, precision, loggers, limits, selector
            )

        stage_start = time.time()
        if p.cache_dir is None:  # no cache: the stage's model lives in the run folder
            folder = Path(run_dir) / "pretrain" / kind
            folder.mkdir(parents=True, exist_ok=True)
            record, reused = build(folder), False
        else:
            folder, record, reused = cached_stage(p.cache_dir, key, build)
        if reused:
            say(
                f"pretrain ({kind}): reused {folder} (held-out MLM loss {record['held_out_before']['loss']:.4f} -> "
                f"{record['held_out_after']['loss']:.4f})"
            )
        stages.append(
            {
                **record,
                "key": key,
                "dir": str(folder),
                "reused": reused,
                "job_s": round(time.time() - stage_start, 3),
                "settings": {k: v for k, v in own.items() if k not in ("name", "stages", "per_stage")},
                **({"selective": selective} if selective else {}),
            }
        )
        source, label, identity = str(folder), str(folder), f"stage:{key}"
    if p.use_step is not None:  # when to stop: a saved step of the last stage (snapshots.py)
        source = use_saved_step(source, stages[-1], p.use_step)
        say(f"pretrain: pretrain.use_step={p.use_step}: the {p.stages[-1]} stage's model at step {p.use_step}")
    say(f"pretrain: fine-tuning starts from {source}")
    return source, {
        "name": p.name,
        "settings": {k: v for k, v in settings.items() if k != "stages"} | {"stages": list(p.stages)},
        "stages": stages,
        "model": source,
        "model_from": cfg.model.name_or_path,
        "reused": all(s["reused"] for s in stages),
        "use_step": p.use_step,  # null: the last stage's result (its best held-out weights)
        "seconds": round(time.time() - start, 3),  # what the stages cost this job
        "held_out_loss_before": stages[0]["held_out_before"]["loss"],
        "held_out_loss_after": stages[-1]["held_out_after"]["loss"],
    }
