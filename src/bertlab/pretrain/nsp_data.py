"""Next-sentence-prediction pairs (`pretrain.objective=mlm_nsp`), as Google's create_pretraining_data.py
makes them (`create_instances_from_document`; xuyige/BERT4doc-Classification further pre-trains with
that very script).

A document is split into sentences (`split_sentences`); sentences are accumulated into a chunk until
it reaches the target length (max_length less the pair's special tokens; 10% of the time a random
shorter target, `short_seq_prob`); the chunk is cut at a random sentence into A and B. Half of the
time (and always when the chunk is one sentence) B is replaced by sentences from a random start in
another document, and the chunk's unused sentences are "put back" for the next pair. The pair is
truncated to fit, one token at a time from the front or the back of the longer side, at random.
Label 0: B follows A in the document; 1: B is from another document (BertForPreTraining's convention).

Departures from Google's script, and why:
- one copy of the pairs (Google's dupe_factor 10 makes ten with ten static masks): the masks here
  are drawn afresh each epoch (masking.py) on the same pairs; pairs are rebuilt per stage seed;
- sentences come from a rule (`split_sentences`: a full stop, ! or ? followed by space and a capital,
  digit or quote), since the corpus is documents, not Google's one-sentence-per-line files; spaCy's
  sentencizer (thunlp/SelectiveMasking uses it) is not a dependency of this package;
- random documents are drawn from the same part of the corpus (training or held-out, mlm_data.py),
  so no pair joins a held-out document to a training one; the corpus itself never holds validation
  or test text (corpus.py), so no pair crosses into it either.
"""

from __future__ import annotations

import random
import re

from bertlab.core.errors import ConfigError

SHORT_SEQ_PROB = 0.1  # Google's default --short_seq_prob
IS_NEXT, RANDOM_NEXT = 0, 1
# a sentence ends at . ! or ? (and closing quotes or brackets) followed by white space and a capital,
# a digit or an opening quote: "Mr. smith" stays whole; "U.S. Army" splits (a rule, not a model)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _pair_frame(tokenizer):
    """The special tokens and token types the model puts around a pair: (before, between, after)
    id lists and (type of A, type of B, types of before/between/after), read off an encoded pair."""
    enc = tokenizer("a", "b", return_special_tokens_mask=True, return_token_type_ids=True)
    ids, special = enc["input_ids"], enc["special_tokens_mask"]
    types = enc.get("token_type_ids") or [0] * len(ids)
    i, j = [k for k, s in enumerate(special) if not s]
    return (ids[:i], ids[i + 1 : j], ids[j + 1 :]), (types[i], types[j], types[:i], types[i + 1 : j], types[j + 1 :])


def _tokenized_documents(texts: list[str], tokenizer) -> list[list[tuple[list[int], list[tuple[int, int]]]]]:
    """Each document as its sentences, each sentence (ids, offsets within the sentence)."""
    out = []
    for text in texts:
        sentences = split_sentences(text)
        enc = tokenizer(sentences, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        out.append(
            [(ids, [tuple(o) for o in offs]) for ids, offs in zip(enc["input_ids"], enc["offset_mapping"]) if ids]
        )
    return out


def check_sentences(texts: list[str], where: str) -> None:
    """A corpus whose documents are all single sentences has no true next sentence: one message."""
    counts = [len(split_sentences(t)) for t in texts]
    if not any(c >= 2 for c in counts):
        raise ConfigError(
            f"pretrain.objective=mlm_nsp: every one of the {len(texts)} documents of {where} is a single sentence, "
            "so there is no true next sentence to predict (next-sentence pairs come from consecutive sentences of "
            "one document); use pretrain.objective=mlm, or a corpus of longer documents (pretrain.domain_corpus=PATH)."
        )


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> None:
    """Google's truncate_seq_pair: trim the longer side, from its front or back at random."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del trunc[0]
        else:
            trunc.pop()


def nsp_pairs(documents, max_num_tokens: int, rng: random.Random, short_seq_prob: float = SHORT_SEQ_PROB):
    """Google's create_instances_from_document over every document: (A, B, is_random_next), A and B
    lists of (id, offset) tokens. `documents`: lists of sentences, each a list of tokens."""
    instances = []
    for document_index, document in enumerate(documents):
        target_seq_length = max_num_tokens
        if rng.random() < short_seq_prob:
            target_seq_length = rng.randint(2, max_num_tokens)
        current_chunk, current_length, i = [], 0, 0
        while i < len(document):
            segment = document[i]
            current_chunk.append(segment)
            current_length += len(segment)
            if i == len(document) - 1 or current_length >= target_seq_length:
                if current_chunk:
                    a_end = rng.randint(1, len(current_chunk) - 1) if len(current_chunk) >= 2 else 1
                    tokens_a = [t for seg in current_chunk[:a_end] for t in seg]
                    tokens_b = []
                    if len(current_chunk) == 1 or rng.random() < 0.5:
                        is_random_next = True
                        target_b_length = target_seq_length - len(tokens_a)
                        for _ in range(10):
                            random_document_index = rng.randint(0, len(documents) - 1)
                            if random_document_index != document_index:
                                break
                        random_document = documents[random_document_index]
                        random_start = rng.randint(0, len(random_document) - 1)
                        for j in range(random_start, len(random_document)):
                            tokens_b.extend(random_document[j])
                            if len(tokens_b) >= target_b_length:
                                break
                        i -= len(current_chunk) - a_end  # the unused sentences are put back
                    else:
                        is_random_next = False
                        tokens_b = [t for seg in current_chunk[a_end:] for t in seg]
                    truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                    if tokens_a and tokens_b:  # Google asserts it; an empty random document could break it here
                        instances.append((tokens_a, tokens_b, is_random_next))
                current_chunk, current_length = [], 0
            i += 1
    rng.shuffle(instances)
    return instances


def nsp_blocks(texts: list[str], tokenizer, max_length: int, seed: int) -> list[dict]:
    """The pairs of `texts` as blocks (masking.py's block fields, plus token_type_ids and
    next_sentence_label). Random next sentences come from `texts` only."""
    (before, between, after), (type_a, type_b, t_before, t_between, t_after) = _pair_frame(tokenizer)
    max_num_tokens = max_length - len(before) - len(between) - len(after)
    if max_num_tokens < 2:
        raise ConfigError(f"pretrain.max_length={max_length} leaves no room for a sentence pair.")
    documents = [[list(zip(ids, offs)) for ids, offs in doc] for doc in _tokenized_documents(texts, tokenizer)]
    documents = [d for d in documents if d]
    if len(documents) < 2:
        raise ConfigError(
            f"pretrain.objective=mlm_nsp needs at least 2 documents in each part of the corpus (a random next "
            f"sentence comes from another document); this part has {len(documents)}: give a larger corpus."
        )
    blocks = []
    for index, (a, b, is_random) in enumerate(nsp_pairs(documents, max_num_tokens, random.Random(seed))):
        pieces = [(before, None), ([t[0] for t in a], [t[1] for t in a]), (between, None)]
        pieces += [([t[0] for t in b], [t[1] for t in b]), (after, None)]
        ids, special, offsets = [], [], []
        for piece_ids, piece_offsets in pieces:
            ids += piece_ids
            special += [1 if piece_offsets is None else 0] * len(piece_ids)
            offsets += piece_offsets if piece_offsets is not None else [(0, 0)] * len(piece_ids)
        types = t_before + [type_a] * len(a) + t_between + [type_b] * len(b) + t_after
        blocks.append(
            {
                "index": index,
                "input_ids": ids,
                "special_tokens_mask": special,
                "offset_mapping": offsets,
                "token_type_ids": types,
                "next_sentence_label": RANDOM_NEXT if is_random else IS_NEXT,
            }
        )
    return blocks
