"""LM-BFF's demonstrations: one training example per class appended to each input (Gao et al. 2021, sec. 6).

`approach.demonstrations`:
- none: the template alone;
- random: for each class, one training example of that class drawn at random;
- similar: the same, drawn from the half of that class's training examples most similar to the
  input (LM-BFF's `demo_filter` with `demo_filter_rate` 0.5), by the cosine of sentence
  embeddings (approach.similarity_model, the packaged MiniLM by default: a sentence encoder,
  mean-pooled and normalised as all-MiniLM-L6-v2 is used; LM-BFF uses SBERT).

Demonstrations come from the training split only, for every split (an example never shows
itself: a training input's own index is left out). Regression: the classes are the two poles,
a label above the middle of task.score_range is the high one (LM-BFF's `median_mapping`: 2.5 for
STS-B's [0, 5], `label <= 2.5` the low pole).

Departures, both to keep one forward per example: LM-BFF re-draws the demonstrations of a
training example every time it is seen and, at test time, averages the predictions over 16 draws
(`num_sample`); here each example gets one fixed draw (seeded by the run's seed and its index),
so the split is tokenised once (token cache) and a resumed run sees the same inputs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

DEMONSTRATIONS = ("none", "random", "similar")


def demo_classes(train: Sequence, kind: str, bounds: tuple[float, float] | None = None) -> list[int]:
    """The class of each training example, as demonstrations group them (`kind` regression: the pole)."""
    if kind != "regression":
        return [int(e.label) for e in train]
    middle = (bounds[0] + bounds[1]) / 2
    return [int(float(e.label) > middle) for e in train]


def choose(
    queries: Sequence,
    train: Sequence,
    classes: list[int],
    how: str,
    seed: int,
    split: str,
    embed: Callable[[list], object] | None = None,
) -> list[list[int]]:
    """For each query, the indices into `train` of its demonstrations, one per class (class order);
    a class with no other training example is left out."""
    if how == "none":
        return [[] for _ in queries]
    by_class: dict[int, list[int]] = {}
    for index, cls in enumerate(classes):
        by_class.setdefault(cls, []).append(index)
    similarity = None
    if how == "similar":
        train_vectors = embed(list(train))
        query_vectors = train_vectors if split == "train" else embed(list(queries))
        similarity = query_vectors @ train_vectors.T  # cosine: the vectors are normalised
    chosen = []
    for q in range(len(queries)):
        rng = random.Random(f"{seed}/{split}/{q}")
        picks = []
        for cls in sorted(by_class):
            pool = [i for i in by_class[cls] if not (split == "train" and i == q)]
            if not pool:
                continue
            if similarity is not None:  # the most similar half (at least one), LM-BFF's filter rate 0.5
                pool = sorted(pool, key=lambda i: -float(similarity[q, i]))[: max(1, len(pool) // 2)]
            picks.append(rng.choice(pool))
        chosen.append(picks)
    return chosen


def sentence_embedder(name_or_path: str, batch_size: int = 64) -> Callable[[list], object]:
    """examples -> normalised mean-pooled embeddings (a torch tensor), of text_a + ' ' + text_b.
    The encoder loads on the first call and is kept for the next (every split ranks against train)."""
    loaded: list = []

    def embed(examples: list):
        import torch
        from transformers import AutoModel, AutoTokenizer

        from bertlab.model.load import _quiet_transformers, resolve_model_path

        if not loaded:
            path = resolve_model_path(name_or_path)
            with _quiet_transformers():
                loaded.extend([AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).float().eval()])
        tokenizer, model = loaded
        texts = [e.text_a if e.text_b is None else f"{e.text_a} {e.text_b}" for e in examples]
        vectors = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors.append(torch.nn.functional.normalize(mean, dim=-1))
        return torch.cat(vectors)

    return embed
