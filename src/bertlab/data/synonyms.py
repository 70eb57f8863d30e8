"""Where EDA's synonyms come from (data/eda.py): WordNet, or a small table of the user's own.

A provider is anything with `synonyms(word) -> list[str]`: the synonyms of a lower-case word, in
a fixed order (sorted, so that a seeded draw from them is the same in every process), without
the word itself. EDA reads WordNet through nltk (jasonwei20/eda_nlp, `get_synonyms`); WordNet is
not shipped with nltk and this machine has no network, so it is fetched once on a machine that
has (`bertlab prepare --wordnet --out DIR`) and read from that folder (`augment.wordnet_dir=DIR`).
A table (`augment.synonyms_file=FILE`, a JSON object {word: [synonyms]}) replaces WordNet: the
tests use one, and so can a language WordNet lacks.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Protocol

from bertlab.core.errors import ConfigError, DataError
from bertlab.core.extras import require


def wordnet_help(why: str) -> str:
    """The one message for a missing WordNet: why, and the two commands that fix it."""
    return (
        f"{why}. EDA's synonym replacement and random insertion read WordNet, which is not shipped with "
        "bertlab: run `bertlab prepare --wordnet --out DIR` on a machine with network, then add "
        "augment.wordnet_dir=DIR (or augment.synonyms_file=FILE, a JSON object {word: [synonyms]}); "
        "random swap and deletion need no WordNet: augment.operations=[swap,deletion]."
    )


class Synonyms(Protocol):
    def synonyms(self, word: str) -> list[str]: ...


def clean_synonym(name: str) -> str:
    """EDA's cleaning of a WordNet lemma name: `_` and `-` become spaces, lower case, letters and
    spaces only (ours keeps non-ASCII letters: `isalpha`, where EDA keeps a-z)."""
    text = name.replace("_", " ").replace("-", " ").lower()
    return " ".join("".join(ch for ch in text if ch.isalpha() or ch == " ").split())


class TableSynonyms:
    """Synonyms from a dict {word: [synonyms]} (keys matched in lower case)."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = {str(k).lower(): [clean_synonym(str(s)) for s in v] for k, v in table.items()}

    def synonyms(self, word: str) -> list[str]:
        return sorted({s for s in self.table.get(word, []) if s and s != word})

    @classmethod
    def from_file(cls, path: str | Path, key: str = "augment.synonyms_file") -> TableSynonyms:
        path = Path(path).expanduser()
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ConfigError(f"{key}={path}: cannot be read ({err.strerror or err}).") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(
                f"{key}={path}: not valid JSON ({err}); it must be an object {{word: [synonyms]}}."
            ) from None
        valid = isinstance(table, dict) and all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in table.values()
        )
        if not valid:
            raise DataError(f"{key}={path}: it must be a JSON object {{word: [synonyms, ...]}} of strings.")
        return cls(table)


class WordNetSynonyms:
    """EDA's `get_synonyms`: the lemma names of every synset of the word, cleaned (clean_synonym)."""

    def __init__(self, wordnet_dir: str | Path):
        require("augment.wordnet_dir")  # nltk, an extra (core/extras.py)
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        folder = Path(wordnet_dir).expanduser().resolve()
        # nltk reads corpora only below the folders of its data path (nltk.pathsec), and its WordNet
        # reader looks itself up there (its version mapping): the folder joins the path
        if str(folder) not in nltk.data.path:
            nltk.data.path.insert(0, str(folder))
        try:  # as nltk's downloader leaves it: the folder unpacked, or its zip (as nltk's own loader looks)
            try:
                root = nltk.data.find("corpora/wordnet", paths=[str(folder)])
            except LookupError:
                root = nltk.data.find("corpora/wordnet.zip/wordnet/", paths=[str(folder)])
        except LookupError:
            raise ConfigError(
                wordnet_help(f"augment.wordnet_dir={wordnet_dir} holds no WordNet (no corpora/wordnet in it)")
            ) from None
        with warnings.catch_warnings():  # "no Open Multilingual Wordnet": English only is all EDA reads
            warnings.simplefilter("ignore")
            self.wordnet = WordNetCorpusReader(root, None)
        self._cache: dict[str, list[str]] = {}

    def synonyms(self, word: str) -> list[str]:
        if word not in self._cache:
            names = {clean_synonym(lemma.name()) for synset in self.wordnet.synsets(word) for lemma in synset.lemmas()}
            self._cache[word] = sorted(n for n in names if n and n != word)
        return self._cache[word]


def load_synonyms(augment) -> Synonyms:
    """The provider the augment config names; a ConfigError with the way to get WordNet when none."""
    if augment.synonyms_file is not None:
        return TableSynonyms.from_file(augment.synonyms_file)
    if augment.wordnet_dir is not None:
        return WordNetSynonyms(augment.wordnet_dir)
    ops = [op for op in augment.operations if op in ("synonym", "insertion")]
    raise ConfigError(wordnet_help(f"augment.operations has {', '.join(ops)} but no WordNet is set"))


def download_wordnet(out: str | Path) -> Path:
    """`bertlab prepare --wordnet --out DIR`: nltk's downloader puts WordNet under DIR/corpora."""
    require("bertlab prepare --wordnet")
    import nltk

    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:  # nltk would print its error too, which ours repeats: one message
        nltk.download("wordnet", download_dir=str(out), quiet=True, raise_on_error=True, print_error_to=io.StringIO())
    except ValueError as err:  # nltk's error for a failed download (no network, no such package)
        raise ConfigError(f"could not download WordNet into {out} (this needs network): {err}") from None
    WordNetSynonyms(out)  # readable as training will read it
    return out
