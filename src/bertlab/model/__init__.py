"""Models: loading from the hub or disk, one description of each family's anatomy (embeddings, blocks, pooler, head), tiny test models."""
