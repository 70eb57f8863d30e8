"""Build a csv task with side features from the packaged BBC News corpus (knowledge injection,
docs/knowledge-injection.md):

    python scripts/bbcnews_features.py data/bbcnews_features

writes `train.jsonl` and `dev.jsonl` (the reader's own pools: the fixed 20% held out per class is
the dev file) with the columns `id`, `text` (the whole article, as task=bbcnews reads it),
`title`, `class`, `words` (the article's length in words, a numeric side feature) and
`title_words`; and `title_embedding.npy`, row i = the MiniLM sentence embedding (mean pooling, as
sentence-transformers computes it) of the title of the example with id i: a vector feature for
task.feature_file. Then, e.g.:

    python train.py task=csv task.data_dir=data/bbcnews_features task.train_file=train.jsonl \\
      task.dev_file=dev.jsonl task.text_fields=[text] task.label_field=class task.n_train=200 \\
      task.n_val=100 'task.feature_fields={words: numeric}' features=last_layer
"""

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from bertlab.core.paths import CONF_DIR
from bertlab.data.readers import read_bbcnews


def main(out: Path, embed: bool = True) -> None:
    task = OmegaConf.load(CONF_DIR / "task" / "bbcnews.yaml")
    pools = read_bbcnews(task)
    out.mkdir(parents=True, exist_ok=True)
    titles = []
    for pool in ("train", "dev"):
        with open(out / f"{pool}.jsonl", "w", encoding="utf-8") as f:
            for example in pools[pool]:
                title = example.text_a.split("\n", 1)[0].strip()
                row = {
                    "id": len(titles),
                    "text": example.text_a,
                    "title": title,
                    "class": task.labels[example.label],
                    "words": len(example.text_a.split()),
                    "title_words": len(title.split()),
                }
                titles.append(title)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if embed:
        import numpy as np
        from sentence_transformers import SentenceTransformer

        from bertlab.model.load import resolve_model_path

        model = SentenceTransformer(resolve_model_path("packaged:minilm"), device="cpu")
        vectors = model.encode(titles, batch_size=64, show_progress_bar=False)
        np.save(out / "title_embedding.npy", np.asarray(vectors, dtype=np.float32))
    print(f"{out}: {len(pools['train'])} train, {len(pools['dev'])} dev articles")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/bbcnews_features"), embed="--no-embedding" not in sys.argv)
