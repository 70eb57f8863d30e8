"""A tiny random BERT (2 layers, hidden 32) built from the packaged MiniLM vocabulary.

Used by the tests and by `model=tiny` so the whole path (tokenizer included) is exercised in
seconds without downloading anything.
"""

from pathlib import Path

from transformers import AutoTokenizer, BertConfig, BertModel

from bertlab.paths import minilm_dir


def write_tiny_bert(directory: str | Path, num_layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """Save a randomly initialised BertModel plus the packaged tokenizer into `directory`."""
    import torch

    directory = Path(directory)
    if (directory / "config.json").exists():
        return directory
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
