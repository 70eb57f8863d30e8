"""Tiny random models (2 layers, hidden 32) of each encoder family, built offline.

Used by the tests and by `model=tiny` so the whole path (tokenizer included) is exercised in
seconds without downloading anything. WordPiece families use the packaged MiniLM vocabulary;
RoBERTa and GPT-2 get a byte-level BPE tokenizer of their own class with no merges (every byte
is a token), so their special tokens, pad id and position offset are the real ones.
"""

from pathlib import Path

import transformers
from transformers import AutoTokenizer

from bertlab.core.paths import minilm_dir

FAMILIES = ("bert", "roberta", "distilbert", "electra", "albert", "deberta-v2", "gpt2")


def _wordpiece(tokenizer_class: str):
    minilm = AutoTokenizer.from_pretrained(str(minilm_dir()))
    if tokenizer_class == "BertTokenizer":
        return minilm
    return getattr(transformers, tokenizer_class)(vocab=dict(minilm.get_vocab()), do_lower_case=True)


def _byte_bpe(tokenizer_class: str, specials: list[str], **kwargs):
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {token: i for i, token in enumerate(specials)}
    for char in sorted(ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
    return getattr(transformers, tokenizer_class)(vocab=vocab, merges=[], **kwargs)


def _config(family: str, vocab_size: int, num_layers: int, hidden: int, tokenizer):
    common = dict(
        vocab_size=vocab_size,
        num_hidden_layers=num_layers,
        hidden_size=hidden,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    if family == "bert":
        return transformers.BertConfig(**common)
    if family == "roberta":  # as roberta-base: positions start after the pad id, so 514 = 512 tokens
        return transformers.RobertaConfig(
            **{**common, "max_position_embeddings": 514},
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    if family == "distilbert":
        return transformers.DistilBertConfig(
            vocab_size=vocab_size,
            n_layers=num_layers,
            dim=hidden,
            n_heads=2,
            hidden_dim=hidden * 2,
            max_position_embeddings=512,
        )
    if family == "electra":  # embedding_size != hidden_size, as the small ELECTRA: embeddings_project
        return transformers.ElectraConfig(**common, embedding_size=hidden // 2)
    if family == "albert":  # one shared layer group for all layers, as every released ALBERT
        return transformers.AlbertConfig(**common, embedding_size=hidden // 2, num_hidden_groups=1)
    if family == "deberta-v2":  # as DeBERTa-v3: relative attention, no absolute positions
        return transformers.DebertaV2Config(
            **common,
            relative_attention=True,
            position_buckets=64,
            norm_rel_ebd="layer_norm",
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            type_vocab_size=0,
            pad_token_id=tokenizer.pad_token_id,
        )
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab_size,
            n_layer=num_layers,
            n_embd=hidden,
            n_head=2,
            n_positions=512,
            bos_token_id=0,
            eos_token_id=0,
        )
    raise ValueError(f"no tiny {family}; known: {', '.join(FAMILIES)}")


def _tokenizer(family: str):
    if family == "roberta":
        return _byte_bpe("RobertaTokenizer", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    if family == "gpt2":
        return _byte_bpe("GPT2Tokenizer", ["<|endoftext|>"])
    return _wordpiece({"distilbert": "DistilBertTokenizer", "electra": "ElectraTokenizer"}.get(family, "BertTokenizer"))


def write_tiny(
    family: str,
    directory: str | Path,
    num_layers: int = 2,
    hidden: int = 32,
    seed: int = 0,
    dtype=None,
    masked_lm: bool = False,
    tokenizer=None,
) -> Path:
    """Save a randomly initialised base model of `family` plus its tokenizer into `directory`
    (kept if already there). `dtype` (e.g. torch.bfloat16): the dtype the weights are saved in.
    `masked_lm`: the family's *ForMaskedLM instead (its masked-LM head saved too, as a hub
    checkpoint such as bert-base-uncased has it); `tokenizer`: one of the caller's, else the family's."""
    import torch

    directory = Path(directory)
    if (directory / "config.json").exists():
        return directory
    tokenizer = tokenizer or _tokenizer(family)
    config = _config(family, len(tokenizer), num_layers, hidden, tokenizer)
    torch.manual_seed(seed)
    auto_class = transformers.AutoModelForMaskedLM if masked_lm else transformers.AutoModel
    model = auto_class.from_config(config)
    if dtype is not None:
        model.to(dtype)
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def write_tiny_bert(directory: str | Path, num_layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Save a randomly initialised BertModel plus the packaged tokenizer into `directory`."""
    return write_tiny("bert", directory, num_layers, hidden, seed)
