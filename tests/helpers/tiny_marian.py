"""A tiny random MarianMT model and its tokenizer, built offline (for the back-translation pipeline).

MarianTokenizer reads two SentencePiece models (source.spm, target.spm) and a vocab.json; a
SentencePiece model trained here on a few sentences stands in for Helsinki-NLP's. Random weights
translate into gibberish: the tests check the pipeline, not the quality.
"""

import io
import json
from pathlib import Path

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a man is walking in the park with his dog",
    "der schnelle braune fuchs springt ueber den faulen hund",
    "antibiotics are losing their effectiveness against illness",
] * 10


def write_tiny_marian(out: Path, seed: int = 0) -> Path:
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=48, hard_vocab_limit=False, minloglevel=2
    )
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes(model.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = {"</s>": 0, "<unk>": 1}  # Marian's order: eos first, pad last
    for i in range(pieces.get_piece_size()):
        vocab.setdefault(pieces.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(str(out / "source.spm"), str(out / "target.spm"), str(out / "vocab.json"))
    tokenizer.save_pretrained(out)
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=24,  # short gibberish: generation stops there
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,  # as Helsinki-NLP's models
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    MarianMTModel(config).save_pretrained(out)
    return out
