"""Blocks of tokens and their masks for masked-language-model training.

Blocks (`make_blocks`), for `pretrain.long_documents`:
- chunk (the default): the documents' tokens concatenated, a separator token between documents, and
  cut into blocks of max_length, as transformers' run_mlm.py groups texts, except that each block
  is wrapped in the model's special tokens ([CLS] ... [SEP]) so it looks like fine-tuning input,
  and the last, shorter block is kept (run_mlm.py drops it; on a few hundred task examples every
  token counts, and the collator pads it). No token is lost, none is seen twice per epoch.
- truncate: one block per document, cut at max_length (the rest of a long document is unused).

Masks (`Masker`): transformers' DataCollatorForLanguageModeling does the masking (mlm_probability,
then mask_replace_prob [MASK] / random_replace_prob random token / the rest unchanged; special
tokens never). Whole-word masking is Google's (`whole_word_mask`, below). Either is applied to one block at a
time, with a generator seeded from (seed, stream, epoch or copy, block index), and padding comes
after: so a block's mask never depends on the batch it lands in or on the order of batches, a
resumed run masks exactly as an uninterrupted one, and padding is never masked.
- dynamic (the default, RoBERTa): a fresh mask every epoch.
- static (BERT): `static_copies` (K) fixed masks per block, BERT's duplication factor; epoch e uses
  copy e % K, so after K epochs the masks repeat.
Held-out blocks (the MLM validation loss) get one fixed mask (their own stream), so losses measured
before, during and after the stage are comparable.

Whole-word masking (`pretrain.whole_word_mask=true`) follows Google's create_pretraining_data.py
(`create_masked_lm_predictions`, do_whole_word_mask): the words of a block are shuffled and taken
whole until round(15% of the block's tokens, [CLS]/[SEP] counted as Google counts them) are chosen
(a word that would overshoot is skipped); every piece of a chosen word is predicted. Two departures:
- the 80/10/10 draw is made once per word (the issue asked for it: a word is either hidden, replaced
  or kept as a whole); Google's loop draws it per piece, so a word could come out half [MASK];
- a word is the pieces whose character offsets touch (transformers' collator's rule, which works for
  every family: RoBERTa's pieces carry no "##"); Google's "##" rule makes "word," two words, ours one.
transformers' collator is not used for it: with whole words it turns every piece into [MASK] (no
random or unchanged share), the behaviour this replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from transformers import DataCollatorForLanguageModeling

from bertlab.core.errors import ConfigError
from bertlab.core.values import check_choice, check_count, check_probability, invalid

LONG_DOCUMENTS = ("chunk", "truncate")
MASKINGS = ("dynamic", "static", "selective")
TRAIN_STREAM, HELD_OUT_STREAM = 0, 1


def make_blocks(texts: list[str], tokenizer, max_length: int, long_documents: str = "chunk") -> list[dict]:
    """Tokenised blocks of at most max_length tokens (special tokens included). Each block:
    index (its position), input_ids, special_tokens_mask, and offset_mapping ((start, end) within
    its document; (0, 0) for special tokens) where the tokenizer is a fast one (whole-word masking
    needs it)."""
    if long_documents not in LONG_DOCUMENTS:
        raise ConfigError(f"pretrain.long_documents={long_documents} is invalid; valid: {', '.join(LONG_DOCUMENTS)}.")
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)  # content tokens per block
    if room < 1:
        raise ConfigError(f"max_length={max_length} leaves no room for text between the special tokens.")
    truncate = long_documents == "truncate"
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_offsets_mapping=tokenizer.is_fast,
        truncation=truncate,
        max_length=room if truncate else None,
        verbose=False,  # chunk: documents longer than the model's limit are expected, no warning
    )
    ids = encoded["input_ids"]
    offsets = encoded["offset_mapping"] if tokenizer.is_fast else [[(0, 0)] * len(x) for x in ids]
    if truncate:
        pieces = [(doc_ids, doc_offsets) for doc_ids, doc_offsets in zip(ids, offsets) if doc_ids]
    else:
        pieces = _chunks(ids, offsets, room, tokenizer.sep_token_id)
    frame = _special_frame(tokenizer)
    blocks = [_wrap(i, piece_ids, piece_offsets, frame) for i, (piece_ids, piece_offsets) in enumerate(pieces)]
    if not tokenizer.is_fast:
        for block in blocks:
            del block["offset_mapping"]
    return blocks


def _chunks(ids: list[list[int]], offsets: list[list], room: int, separator: int | None):
    """The documents' tokens in one stream (a separator between documents, where the tokenizer
    has one; it is a special token, never masked), cut every `room` tokens."""
    stream_ids: list[int] = []
    stream_offsets: list[tuple[int, int]] = []
    for doc_ids, doc_offsets in zip(ids, offsets):
        if not doc_ids:
            continue
        if stream_ids and separator is not None:
            stream_ids.append(separator)
            stream_offsets.append(None)  # marks the separator: special
        stream_ids.extend(doc_ids)
        stream_offsets.extend(map(tuple, doc_offsets))
    start = 0
    while start < len(stream_ids):
        while start < len(stream_ids) and stream_offsets[start] is None:
            start += 1  # a block does not start with the separator: it would follow [CLS]
        piece_ids, piece_offsets = stream_ids[start : start + room], stream_offsets[start : start + room]
        start += room
        if piece_offsets and piece_offsets[-1] is None:  # nor end with it: [SEP] follows anyway
            piece_ids, piece_offsets = piece_ids[:-1], piece_offsets[:-1]
        if piece_ids:
            yield piece_ids, piece_offsets


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the model puts before and after a single text ([CLS] / [SEP] for BERT,
    <s> / </s> for RoBERTa), read off one encoded word: transformers 5 tokenizers no longer have
    build_inputs_with_special_tokens."""
    encoded = tokenizer("a", return_special_tokens_mask=True)
    ids, special = encoded["input_ids"], encoded["special_tokens_mask"]
    first = special.index(0)
    last = len(special) - 1 - special[::-1].index(0)
    return ids[:first], ids[last + 1 :]


def _wrap(index: int, ids: list[int], offsets: list, frame: tuple[list[int], list[int]]) -> dict:
    before, after = frame
    special = [1] * len(before) + [1 if offset is None else 0 for offset in offsets] + [1] * len(after)
    offset_mapping = [(0, 0)] * len(before) + [offset or (0, 0) for offset in offsets] + [(0, 0)] * len(after)
    return {
        "index": index,
        "input_ids": before + list(ids) + after,
        "special_tokens_mask": special,
        "offset_mapping": offset_mapping,
    }


@dataclass(frozen=True)
class MaskingSettings:
    """The masking keys of the pretrain config node (their meaning: module docstring)."""

    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    masking: str = "dynamic"
    static_copies: int = 10
    whole_word_mask: bool = False

    @classmethod
    def from_config(cls, node) -> MaskingSettings:
        """From the pretrain config node (keys it lacks keep their defaults), checked."""
        names = {f.name for f in fields(cls)}
        values = {name: node[name] for name in names if name in node and node[name] is not None}
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        for key in ("mlm_probability", "mask_replace_prob", "random_replace_prob"):
            check_probability(getattr(self, key), f"pretrain.{key}", "it must be a number from 0 to 1", high_open=False)
        if self.mlm_probability == 0:
            raise ConfigError(
                "pretrain.mlm_probability=0 masks nothing, so there is nothing to learn; the usual is 0.15."
            )
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ConfigError(
                f"pretrain.mask_replace_prob + pretrain.random_replace_prob = {self.mask_replace_prob} + "
                f"{self.random_replace_prob} is more than 1; they are shares of the masked tokens (the rest stays "
                "unchanged), e.g. 0.8 and 0.1."
            )
        check_choice(self.masking, "pretrain.masking", MASKINGS)
        check_count(self.static_copies, "pretrain.static_copies", why="it must be a positive integer (BERT used 10)")
        if not isinstance(self.whole_word_mask, bool):
            raise invalid("pretrain.whole_word_mask", self.whole_word_mask, "true or false")
        if self.masking == "selective" and self.whole_word_mask:
            raise ConfigError(
                "pretrain.masking=selective chooses single tokens (the token classifier's), so it does not combine "
                "with pretrain.whole_word_mask=true; set one of them."
            )


class Masker:
    """collate(blocks, epoch) -> {input_ids, attention_mask, labels} (labels -100 where not masked),
    plus token_type_ids and next_sentence_label for sentence-pair blocks (nsp_data.py)."""

    def __init__(self, tokenizer, settings: MaskingSettings, seed: int):
        settings.check()
        self.settings = settings
        self.seed = int(seed)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        replace, random_ = settings.mask_replace_prob, settings.random_replace_prob
        if settings.whole_word_mask and not tokenizer.is_fast:
            raise ConfigError(
                "pretrain.whole_word_mask=true needs a fast tokenizer (it finds words from token offsets); "
                "this model's tokenizer is not one: set pretrain.whole_word_mask=false."
            )
        self.mask_id, self.vocab_size = tokenizer.mask_token_id, len(tokenizer)
        self.collator = DataCollatorForLanguageModeling(
            tokenizer,
            mlm_probability=settings.mlm_probability,
            mask_replace_prob=replace,
            random_replace_prob=random_,
        )

    def copy_of(self, epoch: int) -> int:
        """The mask draw an epoch uses: the epoch itself (dynamic), or copy epoch % K (static)."""
        return epoch % self.settings.static_copies if self.settings.masking == "static" else epoch

    def collate(self, blocks: list[dict], epoch: int, stream: int = TRAIN_STREAM) -> dict:
        copy = self.copy_of(epoch) if stream == TRAIN_STREAM else 0
        masked = [self.mask_block(block, copy, stream) for block in blocks]
        width = max(len(ids) for ids, _ in masked)
        input_ids = torch.full((len(masked), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(masked), width), -100, dtype=torch.long)
        attention_mask = torch.zeros((len(masked), width), dtype=torch.long)
        for row, (ids, block_labels) in enumerate(masked):
            input_ids[row, : len(ids)] = ids
            labels[row, : len(ids)] = block_labels
            attention_mask[row, : len(ids)] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "token_type_ids" in blocks[0]:  # sentence pairs (nsp_data.py): segments and the NSP label
            types = torch.zeros((len(masked), width), dtype=torch.long)
            for row, block in enumerate(blocks):
                types[row, : len(block["token_type_ids"])] = torch.tensor(block["token_type_ids"])
            batch["token_type_ids"] = types
            batch["next_sentence_label"] = torch.tensor([b["next_sentence_label"] for b in blocks])
        return batch

    def mask_block(self, block: dict, copy: int, stream: int = TRAIN_STREAM) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, labels) of one block, a function of (seed, stream, copy, block index) only."""
        ids = torch.tensor([block["input_ids"]], dtype=torch.long)
        special = torch.tensor([block["special_tokens_mask"]], dtype=torch.long)
        generator = block_generator(self.seed, stream, copy, block["index"])
        if self.settings.masking == "selective":  # positions chosen by selective.py's token classifier
            return replace_selected(ids[0], block["selected"], self.settings, generator, self.mask_id, self.vocab_size)
        if self.settings.whole_word_mask:
            return google_whole_word_mask(
                ids[0], words_of(block), self.settings, generator, mask_id=self.mask_id, vocab_size=self.vocab_size
            )
        self.collator.generator = generator
        inputs, labels = self.collator.torch_mask_tokens(ids, special_tokens_mask=special)
        return inputs[0], labels[0]


def words_of(block: dict) -> list[list[int]]:
    """The positions of each word of a block: pieces whose character offsets touch belong to one
    word; special tokens (and the separator between documents) belong to none."""
    words: list[list[int]] = []
    previous_end = None
    for position, ((start, end), special) in enumerate(zip(block["offset_mapping"], block["special_tokens_mask"])):
        if special:
            previous_end = None
            continue
        if start != previous_end or not words:
            words.append([])
        words[-1].append(position)
        previous_end = end
    return words


def replace_selected(ids: torch.Tensor, selected: list[int], settings: MaskingSettings, generator, mask_id, vocab_size):
    """(input_ids, labels): the `selected` positions predicted, each replaced 80/10/10 (one draw per token,
    as SelectiveMasking's create_mask)."""
    inputs, labels = ids.clone(), torch.full_like(ids, -100)
    if not selected:
        return inputs, labels
    where = torch.tensor(selected)
    labels[where] = ids[where]
    draw = torch.rand(len(selected), generator=generator)
    masked = where[draw < settings.mask_replace_prob]
    inputs[masked] = mask_id
    randomised = where[
        (draw >= settings.mask_replace_prob) & (draw < settings.mask_replace_prob + settings.random_replace_prob)
    ]
    inputs[randomised] = torch.randint(vocab_size, (len(randomised),), generator=generator)
    return inputs, labels


def google_whole_word_mask(
    ids: torch.Tensor, words: list[list[int]], settings: MaskingSettings, generator, *, mask_id: int, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, labels) of one block masked by whole words, as Google's create_masked_lm_predictions
    chooses them (module docstring): num_to_predict = max(1, round(len(tokens) * mlm_probability)),
    words in a random order, a word taken only if all its pieces still fit; then one draw per word:
    mask_replace_prob [MASK], random_replace_prob a random token per piece, else unchanged."""
    inputs, labels = ids.clone(), torch.full_like(ids, -100)
    if not words:
        return inputs, labels
    num_to_predict = max(1, round(len(ids) * settings.mlm_probability))
    chosen, count = [], 0
    for w in torch.randperm(len(words), generator=generator).tolist():
        if count >= num_to_predict:
            break
        if count + len(words[w]) > num_to_predict:  # Google: skip a word that would overshoot
            continue
        chosen.append(words[w])
        count += len(words[w])
    for word in chosen:
        where = torch.tensor(word)
        labels[where] = ids[where]
        draw = float(torch.rand(1, generator=generator))
        if draw < settings.mask_replace_prob:
            inputs[where] = mask_id
        elif draw < settings.mask_replace_prob + settings.random_replace_prob:
            inputs[where] = torch.randint(vocab_size, (len(word),), generator=generator)
    return inputs, labels


def block_generator(seed: int, stream: int, copy: int, index: int) -> torch.Generator:
    # SeedSequence spreads the four numbers into one well-mixed seed: (0, 1) and (1, 0) differ.
    state = np.random.SeedSequence([seed % 2**63, stream, copy, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def build_masker(tokenizer, settings: MaskingSettings, seed: int) -> Masker:
    return Masker(tokenizer, settings, seed)
