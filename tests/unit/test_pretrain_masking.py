"""Further pre-training blocks and masks: rates, what is never masked, static / dynamic /
whole-word masking, reproducibility, chunking and truncation, the held-out slice."""

import math
import random

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from bertlab.core.errors import ConfigError
from bertlab.core.paths import minilm_dir
from bertlab.pretrain.masking import MaskingSettings, build_masker, make_blocks
from bertlab.pretrain.mlm_data import build_mlm_data, split_documents

WORDS = (
    "the a river stone cloud amber violet orchard harbor lantern meadow report says near far quiet "
    "market council minister energy season player film music company shares growth"
).split()
# words the uncased WordPiece vocabulary splits into several pieces
SPLIT_WORDS = ["unbelievably", "tokenization", "photosynthesis", "misunderstandings", "zqxleakval"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_dir())  # the packaged MiniLM's (fast) uncased tokenizer


def documents(n: int, words: int = 60, seed: int = 0, vocabulary=WORDS) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(words // 2, words))) for _ in range(n)]


def within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    """count is within `sigmas` binomial standard deviations of n * p."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def masked_batch(tokenizer, blocks, epoch=0, seed=0, **settings):
    return build_masker(tokenizer, MaskingSettings(**settings), seed).collate(blocks, epoch)


def test_mask_rate_and_the_80_10_10_split(tokenizer):
    blocks = make_blocks(documents(500), tokenizer, 128)
    batch = masked_batch(tokenizer, blocks)
    special = torch.tensor([b["special_tokens_mask"] + [1] * (128 - len(b["input_ids"])) for b in blocks]).bool()
    original = torch.tensor([b["input_ids"] + [0] * (128 - len(b["input_ids"])) for b in blocks])
    n = int((~special).sum())
    masked = batch["labels"] != -100
    assert n > 20_000
    assert within(int(masked.sum()), n, 0.15)
    assert torch.equal(batch["labels"][masked], original[masked])  # labels are the original tokens
    m = int(masked.sum())
    to_mask = int((batch["input_ids"][masked] == tokenizer.mask_token_id).sum())
    unchanged = int((batch["input_ids"][masked] == original[masked]).sum())
    random_ = m - to_mask - unchanged  # a random token equal to the original counts as unchanged (p ~ 1/30522)
    assert within(to_mask, m, 0.8) and within(random_, m, 0.1) and within(unchanged, m, 0.1)
    assert torch.equal(batch["input_ids"][~masked], original[~masked])  # nothing else touched


def test_configured_rates(tokenizer):
    blocks = make_blocks(documents(200), tokenizer, 128)
    batch = masked_batch(tokenizer, blocks, mlm_probability=0.3, mask_replace_prob=0.5, random_replace_prob=0.5)
    n = sum(len(b["special_tokens_mask"]) - sum(b["special_tokens_mask"]) for b in blocks)
    masked = batch["labels"] != -100
    assert within(int(masked.sum()), n, 0.3)
    assert within(int((batch["input_ids"][masked] == tokenizer.mask_token_id).sum()), int(masked.sum()), 0.5)


def test_special_tokens_and_padding_are_never_masked(tokenizer):
    texts = ["short one", "a longer document " * 30, "two words", "and a third document of middling length " * 3]
    blocks = make_blocks(texts, tokenizer, 48)
    lengths = {len(b["input_ids"]) for b in blocks}
    assert len(lengths) > 1  # so the batch is padded
    batch = masked_batch(tokenizer, blocks, mlm_probability=1.0)  # every maskable token
    for row, block in enumerate(blocks):
        length = len(block["input_ids"])
        special = torch.tensor(block["special_tokens_mask"]).bool()
        labels, ids = batch["labels"][row], batch["input_ids"][row]
        assert (labels[:length][special] == -100).all()
        assert torch.equal(ids[:length][special], torch.tensor(block["input_ids"])[special])
        assert (labels[:length][~special] != -100).all()
        assert (labels[length:] == -100).all() and (ids[length:] == tokenizer.pad_token_id).all()
        assert (batch["attention_mask"][row, :length] == 1).all() and (batch["attention_mask"][row, length:] == 0).all()
    assert int(special.sum()) >= 2


def test_static_masks_repeat_across_epochs_dynamic_ones_do_not(tokenizer):
    blocks = make_blocks(documents(30), tokenizer, 64)
    static = build_masker(tokenizer, MaskingSettings(masking="static", static_copies=3), seed=5)
    assert all(
        torch.equal(static.collate(blocks, 0)[k], static.collate(blocks, e)[k])
        for e in (3, 6)
        for k in ("input_ids", "labels")
    )
    assert not torch.equal(static.collate(blocks, 0)["labels"], static.collate(blocks, 1)["labels"])  # K copies differ
    dynamic = build_masker(tokenizer, MaskingSettings(), seed=5)
    epochs = [dynamic.collate(blocks, e)["labels"] for e in range(4)]
    assert all(not torch.equal(epochs[i], epochs[j]) for i in range(4) for j in range(i))
    again = build_masker(tokenizer, MaskingSettings(), seed=5)
    assert torch.equal(again.collate(blocks, 2)["labels"], epochs[2])  # reproducible per seed
    assert torch.equal(again.collate(blocks, 2)["input_ids"], dynamic.collate(blocks, 2)["input_ids"])
    other = build_masker(tokenizer, MaskingSettings(), seed=6)
    assert not torch.equal(other.collate(blocks, 2)["labels"], epochs[2])


def test_a_blocks_mask_does_not_depend_on_its_batch(tokenizer):
    blocks = make_blocks(documents(12), tokenizer, 64)
    masker = build_masker(tokenizer, MaskingSettings(), seed=1)
    together = masker.collate(blocks, 4)
    for i in (0, len(blocks) // 2, len(blocks) - 1):
        alone = masker.collate([blocks[i]], 4)
        n = len(blocks[i]["input_ids"])
        assert torch.equal(alone["labels"][0], together["labels"][i, :n])
        assert torch.equal(alone["input_ids"][0], together["input_ids"][i, :n])
    reversed_ = masker.collate(blocks[::-1], 4)
    assert torch.equal(reversed_["labels"][-1], together["labels"][0])


def words_of(block: dict) -> list[list[int]]:
    """Positions of each whitespace word in a block (pieces whose offsets touch), specials excluded."""
    words, previous_end = [], None
    for position, ((start, end), special) in enumerate(zip(block["offset_mapping"], block["special_tokens_mask"])):
        if special:
            previous_end = None
            continue
        if start != previous_end:
            words.append([])
        words[-1].append(position)
        previous_end = end
    return words


def test_whole_word_masking_masks_every_piece_of_a_word(tokenizer):
    texts = documents(60, vocabulary=SPLIT_WORDS + WORDS[:5])
    blocks = make_blocks(texts, tokenizer, 64)
    batch = masked_batch(tokenizer, blocks, whole_word_mask=True)
    masked_words = multi_piece_masked = 0
    for row, block in enumerate(blocks):
        labels = batch["labels"][row]
        for word in words_of(block):
            flags = {bool(labels[p] != -100) for p in word}
            assert len(flags) == 1, "a word is masked in part"
            if flags == {True}:
                masked_words += 1
                multi_piece_masked += len(word) > 1
    # Google's count: at most round(15% of a block's tokens) predicted (tests/test_pretrain_wwm.py: the rest)
    assert all(
        int((batch["labels"][row] != -100).sum()) <= max(1, round(len(b["input_ids"]) * 0.15))
        for row, b in enumerate(blocks)
    )
    assert masked_words > 0
    assert multi_piece_masked > 20
    assert len(tokenizer.tokenize("unbelievably")) > 1  # the words above are really split
    # without whole-word masking, words are masked in part
    plain = masked_batch(tokenizer, blocks)
    partial = sum(
        len({bool(plain["labels"][row, p] != -100) for p in word}) > 1
        for row, block in enumerate(blocks)
        for word in words_of(block)
    )
    assert partial > 0


def content(blocks: list[dict]) -> list[int]:
    return [i for b in blocks for i, s in zip(b["input_ids"], b["special_tokens_mask"]) if not s]


def test_chunking_keeps_every_token_once(tokenizer):
    texts = documents(25, words=120, seed=3)
    blocks = make_blocks(texts, tokenizer, 32)
    tokens = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert content(blocks) == [i for doc in tokens for i in doc]
    assert all(len(b["input_ids"]) <= 32 for b in blocks)
    # full, but the last and those that would end on a separator (dropped: [SEP] follows anyway)
    assert all(len(b["input_ids"]) >= 31 for b in blocks[:-1])
    for block in blocks:  # each block looks like fine-tuning input
        assert block["input_ids"][0] == tokenizer.cls_token_id and block["input_ids"][-1] == tokenizer.sep_token_id
        assert block["special_tokens_mask"][1] == 0 and block["special_tokens_mask"][-2] == 0
    separators = sum(b["input_ids"][1:-1].count(tokenizer.sep_token_id) for b in blocks)
    assert separators <= len(texts) - 1  # one between documents (none at a block's edge)
    assert [b["index"] for b in blocks] == list(range(len(blocks)))


def test_truncate_gives_one_block_per_document(tokenizer):
    texts = ["one short document", "a long one " * 50, "middle " * 10]
    blocks = make_blocks(texts, tokenizer, 16, long_documents="truncate")
    assert len(blocks) == 3
    for text, block in zip(texts, blocks):
        expected = tokenizer(text, add_special_tokens=False)["input_ids"][:14]
        assert block["input_ids"] == [tokenizer.cls_token_id, *expected, tokenizer.sep_token_id]


def test_held_out_documents_are_never_in_training_blocks(tokenizer):
    texts = [f"document {' '.join(WORDS[j] for j in range(i % 7, i % 7 + 3))} number {i}" for i in range(50)]
    train_texts, held_texts = split_documents(texts, 0.2, seed=4)
    assert len(held_texts) == 10 and not set(train_texts) & set(held_texts)
    assert sorted(train_texts + held_texts) == sorted(texts)
    data = build_mlm_data(
        texts,
        tokenizer,
        max_length=24,
        long_documents="chunk",
        masking=MaskingSettings(),
        held_out=0.2,
        batch_size=4,
        eval_batch_size=8,
        seed=4,
    )
    tokens = lambda ts: [i for t in ts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]  # noqa: E731
    assert content(data.train_blocks) == tokens(train_texts)
    assert content(data.held_out_blocks) == tokens(held_texts)
    assert (data.n_documents, data.n_held_out_documents) == (50, 10)
    assert data.n_tokens == len(tokens(texts))
    assert (data.n_train_blocks, data.n_held_out_blocks) == (len(data.train_blocks), len(data.held_out_blocks))


def test_held_out_masks_are_fixed_and_training_batches_reproducible(tokenizer):
    def data(seed=2):
        return build_mlm_data(
            documents(80),
            tokenizer,
            max_length=32,
            long_documents="chunk",
            masking=MaskingSettings(),
            held_out=0.25,
            batch_size=8,
            eval_batch_size=16,
            seed=seed,
        )

    first, second = data(), data()
    held = [b["labels"] for b in first.val_dataloader()]
    assert all(torch.equal(a, b["labels"]) for a, b in zip(held, second.val_dataloader()))
    assert all(torch.equal(a, b["labels"]) for a, b in zip(held, first.val_dataloader()))  # again: the same

    def epoch(module, e):
        loader = module.train_dataloader()
        loader.shuffle_sampler.set_epoch(e)
        return [b["labels"] for b in loader]

    assert all(torch.equal(a, b) for a, b in zip(epoch(first, 1), epoch(second, 1)))
    assert not all(torch.equal(a, b) for a, b in zip(epoch(first, 0), epoch(first, 1)))
    # resumed mid-epoch (resumable_loader's protocol): the remaining batches are those of the full epoch
    loader = first.train_dataloader()
    loader.load_state_dict({"epoch": 1, "batches_done": 2})
    loader.shuffle_sampler.set_epoch(1)
    assert all(torch.equal(a, b["labels"]) for a, b in zip(epoch(first, 1)[2:], loader, strict=True))


def test_masking_settings_from_config_and_bad_values():
    node = OmegaConf.create({"mlm_probability": 0.2, "masking": "static", "static_copies": 4, "lr": 1e-4})
    assert MaskingSettings.from_config(node) == MaskingSettings(mlm_probability=0.2, masking="static", static_copies=4)
    bad = [
        ({"mlm_probability": 1.5}, r"pretrain\.mlm_probability=1\.5 is invalid: it must be a number from 0 to 1"),
        ({"mlm_probability": 0}, r"pretrain\.mlm_probability=0 masks nothing"),
        ({"mask_replace_prob": 0.9, "random_replace_prob": 0.2}, r"0\.9 \+ 0\.2 is more than 1"),
        ({"masking": "fixed"}, r"pretrain\.masking=fixed is invalid; valid: dynamic, static"),
        ({"static_copies": 0}, r"pretrain\.static_copies=0 is invalid"),
        ({"whole_word_mask": "yes"}, r"pretrain\.whole_word_mask=yes is invalid"),
    ]
    for values, message in bad:
        with pytest.raises(ConfigError, match=message):
            MaskingSettings.from_config(OmegaConf.create(values))


def test_block_and_held_out_bad_input(tokenizer):
    with pytest.raises(ConfigError, match=r"pretrain\.long_documents=split is invalid; valid: chunk, truncate"):
        make_blocks(["text"], tokenizer, 32, long_documents="split")
    with pytest.raises(ConfigError, match=r"max_length=2 leaves no room"):
        make_blocks(["text"], tokenizer, 2)
    with pytest.raises(ConfigError, match=r"pretrain\.held_out=0 is invalid"):
        split_documents(["a", "b"], 0, seed=0)
    with pytest.raises(ConfigError, match=r"has 1 document\(s\); it needs at least 2"):
        split_documents(["a"], 0.1, seed=0)
