"""Issue 30, further pre-training: NSP pairs and loss, Google's whole-word masking, selective masking's
buffer rule and masks, saved steps, per-stage settings and their checks; in-process, tiny models."""

import math
import re

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoTokenizer, BertConfig, BertForPreTraining

from bertlab.core.errors import ConfigError, ModelError
from bertlab.core.paths import minilm_dir
from bertlab.data.readers import Example
from bertlab.pretrain.corpus import task_corpus
from bertlab.pretrain.masking import MaskingSettings, build_masker, make_blocks, replace_selected, words_of
from bertlab.pretrain.mlm_data import build_mlm_data
from bertlab.pretrain.model import load_mlm_model
from bertlab.pretrain.nsp_data import IS_NEXT, RANDOM_NEXT, check_sentences, nsp_blocks, split_sentences
from bertlab.pretrain.selective import buffer_rule, select_positions
from bertlab.pretrain.settings import check_pretrain, stage_settings
from bertlab.pretrain.stage import MaskedLM


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """count is within `sigmas` binomial standard deviations of n * p."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())


NUMBERS = "zero one two three four five six seven eight nine".split()


def doc(i: int, n: int) -> str:
    """Document i of n sentences; each sentence names its document and its place in words, so a
    decoded pair tells where each of its sentences came from."""
    return " ".join(f"Doc {NUMBERS[i // 10]} {NUMBERS[i % 10]} line {NUMBERS[j]} river stone." for j in range(n))


def sentences_of(text: str) -> list[tuple[int, int]]:
    found = re.findall(r"doc (\w+) (\w+) line (\w+)", text)
    return [(NUMBERS.index(a) * 10 + NUMBERS.index(b), NUMBERS.index(c)) for a, b, c in found]


def decoded_pair(tokenizer, block) -> tuple[str, str]:
    types = block["token_type_ids"]
    special = block["special_tokens_mask"]
    a = [t for t, ty, sp in zip(block["input_ids"], types, special) if not sp and ty == 0]
    b = [t for t, ty, sp in zip(block["input_ids"], types, special) if not sp and ty == 1]
    return tokenizer.decode(a), tokenizer.decode(b)


# ---- next-sentence prediction -------------------------------------------------------------------


def test_split_sentences():
    assert split_sentences("It rained. Then it stopped! Did it? 3 cats came.") == [
        "It rained.",
        "Then it stopped!",
        "Did it?",
        "3 cats came.",
    ]
    assert split_sentences("one sentence without an end") == ["one sentence without an end"]


def test_nsp_pairs_half_true_and_true_ones_are_consecutive(tokenizer):
    texts = [doc(i, 8) for i in range(60)]
    blocks = nsp_blocks(texts, tokenizer, 48, seed=0)
    n = len(blocks)
    random_next = sum(b["next_sentence_label"] == RANDOM_NEXT for b in blocks)
    assert n > 150
    # Google's rule: half random, plus every chunk of one sentence (none here: 48 tokens hold 3 sentences)
    assert within(random_next, n, 0.5), (random_next, n)
    for block in blocks:
        a, b = (sentences_of(x) for x in decoded_pair(tokenizer, block))
        assert a and b
        assert len({d for d, _ in a}) == 1  # A is consecutive sentences of one document
        assert [j for _, j in a] == list(range(a[0][1], a[0][1] + len(a)))
        if block["next_sentence_label"] == IS_NEXT:
            # B goes on where A stops (truncation may cut the front of B's first sentence, hence +2)
            assert {d for d, _ in b} == {a[0][0]} and a[-1][1] + 1 <= b[0][1] <= a[-1][1] + 2, (a, b)
        else:
            assert b[0][0] != a[0][0]
        assert len(block["input_ids"]) <= 48


def test_nsp_pairs_never_cross_into_held_out_validation_or_test(tokenizer):
    held = [Example(doc(i, 3), None, 0) for i in range(40, 44)]  # validation and test documents
    train = [Example(doc(i, 4), None, 0) for i in range(40)] + [held[0]]  # one duplicates a validation text
    splits = {"train": train, "val": held[:2], "test": held[2:]}
    texts = task_corpus(OmegaConf.create({"name": "t"}), splits, "train")
    assert len(texts) == 40
    data = build_mlm_data(
        texts,
        tokenizer,
        max_length=48,
        long_documents="chunk",
        masking=MaskingSettings(),
        held_out=0.25,
        batch_size=4,
        eval_batch_size=4,
        seed=0,
        objective="mlm_nsp",
    )
    train_docs = {d for b in data.train_blocks for x in decoded_pair(tokenizer, b) for d, _ in sentences_of(x)}
    held_docs = {d for b in data.held_out_blocks for x in decoded_pair(tokenizer, b) for d, _ in sentences_of(x)}
    assert train_docs and held_docs and not train_docs & held_docs  # no pair joins the two parts
    assert not (train_docs | held_docs) & set(range(40, 44))  # nor reaches validation or test text
    batch = data.train_dataloader().collate_fn([{**data.train_blocks[0], "epoch": 0}])
    assert set(batch) == {"input_ids", "attention_mask", "labels", "token_type_ids", "next_sentence_label"}


def test_one_sentence_documents_is_one_message():
    with pytest.raises(ConfigError, match=r"every one of the 3 documents .* is a single sentence.*objective=mlm"):
        check_sentences(["A short text.", "Another one.", "And a third"], "the corpus")


def tiny_bert_pretraining(tmp_path):
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
    )
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(tmp_path)
    return str(tmp_path)


def test_nsp_loss_is_bert_for_pretraining_sum(tmp_path, tokenizer):
    path = tiny_bert_pretraining(tmp_path)
    _, model, head = load_mlm_model(path, seed=0, objective="mlm_nsp")
    assert "kept the checkpoint's next-sentence head" in head
    texts = [doc(i, 6) for i in range(10)]
    blocks = nsp_blocks(texts, tokenizer, 48, seed=1)[:8]
    batch = build_masker(tokenizer, MaskingSettings(), seed=0).collate(blocks, 0)
    model.eval()  # no dropout: the two forwards see the same network
    ours = MaskedLM(model, None, None).training_step(batch, 0)
    direct = model(**batch).loss  # BertForPreTraining: masked_lm_loss + next_sentence_loss
    assert torch.allclose(ours, direct, atol=1e-5), (ours, direct)
    mlm_only = model(**{k: v for k, v in batch.items() if k != "next_sentence_label"})
    assert not torch.allclose(
        ours,
        torch.nn.functional.cross_entropy(
            mlm_only.prediction_logits.view(-1, model.config.vocab_size), batch["labels"].view(-1)
        ),
    )


def test_nsp_head_new_said_and_families_without_one_refused(tiny_family_dirs):
    _, _, head = load_mlm_model(str(tiny_family_dirs["bert"]), seed=0, objective="mlm_nsp")
    assert "new next-sentence head" in head
    for family in ("roberta", "distilbert", "electra", "deberta-v2", "albert"):
        with pytest.raises(ModelError, match="no next-sentence head .* use pretrain.objective=mlm"):
            load_mlm_model(str(tiny_family_dirs[family]), seed=0, objective="mlm_nsp")


# ---- Google's whole-word masking -----------------------------------------------------------------

SPLIT_WORDS = ["unbelievably", "tokenization", "photosynthesis", "misunderstandings", "river", "stone", "amber"]


def test_google_whole_word_masking_rates_within_binomial_bounds(tokenizer):
    import random

    rng = random.Random(0)
    texts = [" ".join(rng.choice(SPLIT_WORDS) for _ in range(50)) for _ in range(300)]
    blocks = make_blocks(texts, tokenizer, 64)
    batch = build_masker(tokenizer, MaskingSettings(whole_word_mask=True), seed=3).collate(blocks, 0)
    fates = {"mask": 0, "kept": 0, "random": 0}
    predicted = target = 0
    for row, block in enumerate(blocks):
        labels, inputs = batch["labels"][row], batch["input_ids"][row]
        target += max(1, round(len(block["input_ids"]) * 0.15))
        predicted += int((labels != -100).sum())
        for word in words_of(block):
            chosen = {bool(labels[p] != -100) for p in word}
            assert len(chosen) == 1, "a word predicted in part"
            if chosen != {True}:
                continue
            if all(inputs[p] == tokenizer.mask_token_id for p in word):
                fates["mask"] += 1
            elif all(inputs[p] == block["input_ids"][p] for p in word):
                fates["kept"] += 1
            else:
                fates["random"] += 1
                assert not any(inputs[p] == tokenizer.mask_token_id for p in word), "a word half [MASK]"
    n = sum(fates.values())
    assert n > 2000
    assert within(fates["mask"], n, 0.8) and within(fates["kept"], n, 0.1) and within(fates["random"], n, 0.1)
    # Google's count: round(15% of the block's tokens); whole words that would overshoot are skipped
    assert 0.9 * target <= predicted <= target


# ---- selective masking -----------------------------------------------------------------------------


def test_buffer_rule_on_a_hand_example():
    # P(y | buffer) = 0.5 + 0.4 * ("good" in buffer) + 0.05 * ("very" in buffer); the whole sentence: 0.95
    sentence = ["the", "film", "is", "very", "good", "indeed"]

    def prob(buffers, which):
        return [0.5 + 0.4 * ("good" in b) + 0.05 * ("very" in b) for b in buffers]

    seen = []

    def recording(buffers, which):
        seen.append([list(b) for b in buffers])
        return prob(buffers, which)

    (result,) = buffer_rule([sentence], [0.95], recording, threshold=0.01)
    # "very" keeps the gap at 0.40 (kept in the buffer); "good" closes it to 0 (important, taken out again);
    # "indeed" then sees a buffer without "good": gap 0.40, not important
    assert [important for _, important in result] == [False, False, False, False, True, False]
    assert seen[4] == [["the", "film", "is", "very", "good"]]
    assert seen[5] == [["the", "film", "is", "very", "indeed"]]  # "good" popped
    assert [round(p, 2) for p, _ in result] == [0.5, 0.5, 0.5, 0.55, 0.95, 0.55]
    # a threshold above every gap marks every token (each popped, so the buffer stays one token long)
    (everything,) = buffer_rule([sentence], [0.95], prob, threshold=0.5)
    assert all(important for _, important in everything)


def test_selected_positions_and_their_masked_fraction(tokenizer, tiny_family_dirs, tmp_path):
    from transformers import AutoModelForTokenClassification

    torch.manual_seed(0)
    classifier = AutoModelForTokenClassification.from_pretrained(str(tiny_family_dirs["bert"]), num_labels=2)
    classifier.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(str(tiny_family_dirs["bert"])).save_pretrained(tmp_path)
    tiny_tok = AutoTokenizer.from_pretrained(str(tmp_path))
    blocks = make_blocks(["alpha beta gamma delta " * 30] * 4, tiny_tok, 64)
    select_positions(blocks, tmp_path, 0.15)
    for block in blocks:
        content = [i for i, s in enumerate(block["special_tokens_mask"]) if not s]
        assert 1 <= len(block["selected"]) <= max(1, int(0.15 * len(content)))
        assert set(block["selected"]) <= set(content)
    settings = MaskingSettings(masking="selective")
    ids = torch.arange(1000, 1400)
    selected = list(range(0, 400, 2))
    masked, labels = 0, None
    counts = {"mask": 0, "kept": 0, "random": 0}
    for copy in range(20):
        inputs, labels = replace_selected(ids, selected, settings, torch.Generator().manual_seed(copy), 103, 30522)
        assert ((labels != -100).nonzero().flatten().tolist()) == selected  # exactly the selected positions
        sel = torch.tensor(selected)
        counts["mask"] += int((inputs[sel] == 103).sum())
        counts["kept"] += int((inputs[sel] == ids[sel]).sum())
        masked += len(selected)
    counts["random"] = masked - counts["mask"] - counts["kept"]
    assert within(counts["mask"], masked, 0.8) and within(counts["kept"], masked, 0.1, sigmas=6)
    assert torch.equal(inputs[1::2], ids[1::2])  # unselected positions untouched


# ---- per-stage settings, saved steps: the config rules ------------------------------------------------


def pretrain_node(**over):
    from hydra import compose, initialize_config_dir

    from bertlab.core.paths import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("train", overrides=["pretrain=dapt_tapt", *[f"{k}={v}" for k, v in over.items()]])
    return cfg.pretrain


def test_per_stage_settings_reach_their_stage():
    p = pretrain_node()
    dapt, tapt = stage_settings(p, "dapt"), stage_settings(p, "tapt")
    assert (dapt.lr, dapt.optimizer.lr, dapt.batch_size, dapt.max_steps) == (5e-4, 5e-4, 32, 40)
    assert (tapt.lr, tapt.optimizer.lr, tapt.batch_size, tapt.max_steps) == (1e-4, 1e-4, 16, -1)
    assert "per_stage" not in dapt
    check_pretrain(p)
    p = pretrain_node(**{"pretrain.per_stage.tapt.lr": 3e-5, "+pretrain.per_stage.tapt.objective": "mlm_nsp"})
    assert stage_settings(p, "tapt").optimizer.lr == 3e-5 and stage_settings(p, "tapt").objective == "mlm_nsp"
    assert stage_settings(p, "dapt").objective == "mlm"


@pytest.mark.parametrize(
    "over, message",
    [
        ({"+pretrain.per_stage.mlm": {"lr": 1}}, r"pretrain\.per_stage\.mlm is not a stage; valid: tapt, dapt"),
        ({"+pretrain.per_stage.dapt.stages": ["tapt"]}, r"pretrain\.per_stage\.dapt\.stages is not a key a stage"),
        ({"pretrain.per_stage.dapt.lr": -1}, r"pretrain\.lr=-1 is invalid.*pretrain\.per_stage\.dapt"),
        ({"pretrain.objective": "nsp"}, r"pretrain\.objective=nsp is invalid; valid: mlm, mlm_nsp"),
        ({"pretrain.use_step": 10}, r"pretrain\.use_step=10 needs saved steps: set pretrain\.save_every_n_steps"),
        (
            {"pretrain.use_step": 15, "pretrain.save_every_n_steps": 10},
            r"pretrain\.use_step=15 is not a saved step: the stage saves every 10 steps",
        ),
        (
            {"pretrain.use_step": 20, "pretrain.save_every_n_steps": 10, "pretrain.max_steps": 10},
            r"pretrain\.use_step=20 is past the stage's last step \(pretrain\.max_steps=10\)",
        ),
        ({"pretrain.save_every_n_steps": -1}, r"pretrain\.save_every_n_steps=-1 is invalid"),
        ({"pretrain.selective.threshold": 2}, r"pretrain\.selective\.threshold=2 is invalid"),
        (
            {"pretrain.masking": "selective", "pretrain.whole_word_mask": True},
            r"masking=selective .* does not combine with pretrain\.whole_word_mask=true",
        ),
    ],
)
def test_bad_settings_are_one_message(over, message):
    over = {k: (OmegaConf.create(v) if isinstance(v, dict) else v) for k, v in over.items()}
    flat = {}
    for k, v in over.items():
        if hasattr(v, "items"):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        elif isinstance(v, list):
            flat[k] = "[" + ",".join(v) + "]"
        else:
            flat[k] = v
    p = pretrain_node(**flat)
    with pytest.raises(ConfigError, match=message):
        check_pretrain(p)


# ---- the report: the metric against the pre-training steps ----------------------------------------


def test_the_report_plots_the_metric_against_use_step(tmp_path):
    from bertlab.report import build_report, write_report
    from tests.helpers.report_fixtures import result, settings, write_sweep

    records = [
        result(
            settings(pretrain="tapt", seed=seed),
            ["seed"],
            0.6 + step / 1000 + seed / 100,
            overrides=[f"pretrain.use_step={step}", f"seed={seed}"],
        )
        for step in (10, 20, 40)
        for seed in range(2)
    ]
    sweep = write_sweep(tmp_path / "sweep", records, curves=False)
    report = build_report([sweep])
    (task,) = report.tasks
    assert [k for k in task.keys if k.endswith("use_step")], task.keys
    write_report(report, sweep)
    assert list(sweep.glob("*_pretrain_steps.png"))
    assert "against the pre-training steps" in (sweep / "report.md").read_text()


def test_selective_masking_on_a_task_that_is_not_classification_is_one_message():
    p = pretrain_node(**{"pretrain.masking": "selective"})
    with pytest.raises(ConfigError, match=r"needs a sequence classification task; task 'stsb' is regression"):
        check_pretrain(p, problem="regression", task="stsb")
    check_pretrain(p, problem="classification", task="rte")
