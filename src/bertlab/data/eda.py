"""EDA, "Easy Data Augmentation" (Wei & Zou, 2019): the four operations of jasonwei20/eda_nlp's
code/eda.py, reproduced with its counts, its stop words and its order of draws.

- synonym replacement: n = max(1, int(alpha_sr * words)) distinct non-stop words, each replaced
  (every occurrence) by a random synonym;
- random insertion: n = max(1, int(alpha_ri * words)) times, a synonym of a random word (up to 10
  tries for one that has synonyms) is inserted at a random position;
- random swap: n = max(1, int(alpha_rs * words)) swaps of two random positions;
- random deletion: each word deleted with probability p_rd; never all of them.

Where we depart from eda.py, and why:
- No cleaning: eda.py lower-cases the sentence and keeps only a-z and spaces (its
  `get_only_chars`), also for the original it keeps. Ours splits on whitespace and leaves case,
  digits and punctuation as they are: the tokenizer sees the original training examples, the
  validation and test sets exactly as written, and augmented copies in another form would add a
  difference between them that EDA does not mean to add (uncased models lower-case anyway).
  Stop words and synonym look-ups use a word's lower-cased core (its punctuation stripped); a
  replaced word keeps its punctuation ("dog," -> "hound,").
- One seeded `random.Random` per example (data/augment.py seeds it from task.data_seed and the
  text), not the global `random` seeded once: an example's copies do not depend on which other
  examples were drawn or in which order. Sets that eda.py turns into lists (in hash order, which
  changes between processes) are in first-seen or sorted order here, so a seed gives the same copies
  in every process.
- Copies per operation: eda.py makes int(num_aug / 4) + 1 per operation; ours int(num_aug / k) + 1
  for the k operations used (the same with all four), so that num_aug copies result with fewer.
- num_aug is an integer >= 1: eda.py's fractional num_aug (keep each copy with that probability)
  shrinks the set, and a few-sample training set is what we grow.
"""

from __future__ import annotations

import random
import string

from bertlab.data.synonyms import Synonyms

# eda.py's list, as it is (it includes '' there; an empty word never occurs here)
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
    her hers herself it its itself they them their theirs themselves what which who whom this that
    these those am is are was were be been being have has had having do does did doing a an the and
    but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here
    there when where why how all any both each few more most other some such no nor not only own same
    so than too very s t can will just don should now""".split()
)

OPERATIONS = ("synonym", "insertion", "swap", "deletion")
NEEDS_SYNONYMS = ("synonym", "insertion")


def core(word: str) -> str:
    """The word for stop-word and synonym look-ups: lower case, its surrounding punctuation stripped."""
    return word.strip(string.punctuation).lower()


def edits(alpha: float, num_words: int) -> int:
    """eda.py's number of edits: n = max(1, int(alpha * words))."""
    return max(1, int(alpha * num_words))


def _resplit(words: list[str]) -> list[str]:
    # a synonym of several words ("ice cream") becomes several words, as eda.py's re-split does
    return " ".join(words).split()


def synonym_replacement(words: list[str], n: int, synonyms: Synonyms, rng: random.Random) -> list[str]:
    new_words = list(words)
    candidates = list(dict.fromkeys(c for c in map(core, words) if c and c not in STOP_WORDS))
    rng.shuffle(candidates)
    replaced = 0
    for candidate in candidates:
        found = synonyms.synonyms(candidate)
        if found:
            synonym = rng.choice(found)
            new_words = [_replace_core(w, synonym) if core(w) == candidate else w for w in new_words]
            replaced += 1
        if replaced >= n:
            break
    return _resplit(new_words)


def _replace_core(word: str, synonym: str) -> str:
    """`synonym` in place of the word, keeping the punctuation around it."""
    start = len(word) - len(word.lstrip(string.punctuation))
    end = len(word.rstrip(string.punctuation))
    return word[:start] + synonym + word[end:]


def random_insertion(words: list[str], n: int, synonyms: Synonyms, rng: random.Random) -> list[str]:
    new_words = list(words)
    for _ in range(n):
        _add_word(new_words, synonyms, rng)
    return _resplit(new_words)


def _add_word(new_words: list[str], synonyms: Synonyms, rng: random.Random) -> None:
    found: list[str] = []
    tries = 0
    while not found:
        found = synonyms.synonyms(core(new_words[rng.randint(0, len(new_words) - 1)]))
        tries += 1
        if tries >= 10:  # eda.py gives up after 10 words without synonyms
            return
    # eda.py inserts the first synonym at randint(0, len - 1): never after the last word
    new_words.insert(rng.randint(0, len(new_words) - 1), found[0])


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    new_words = list(words)
    for _ in range(n):
        _swap_word(new_words, rng)
    return new_words


def _swap_word(new_words: list[str], rng: random.Random) -> None:
    i = rng.randint(0, len(new_words) - 1)
    j, tries = i, 0
    while j == i:
        j = rng.randint(0, len(new_words) - 1)
        tries += 1
        if tries > 3:  # eda.py: a one-word sentence (or bad luck) leaves it as it is
            return
    new_words[i], new_words[j] = new_words[j], new_words[i]


def random_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    if len(words) == 1:
        return list(words)
    kept = [w for w in words if rng.uniform(0, 1) > p]
    return kept or [words[rng.randint(0, len(words) - 1)]]  # never an empty sentence


def eda(
    sentence: str,
    rng: random.Random,
    num_aug: int,
    alpha_sr: float = 0.1,
    alpha_ri: float = 0.1,
    alpha_rs: float = 0.1,
    p_rd: float = 0.1,
    operations: tuple[str, ...] = OPERATIONS,
    synonyms: Synonyms | None = None,
) -> list[str]:
    """num_aug augmented copies of the sentence (the original is not among them), as eda.py's
    `eda` makes them: each operation used (in `operations` and its alpha > 0) makes
    int(num_aug / k) + 1 copies, which are shuffled and cut to num_aug."""
    words = sentence.split()
    if not words:
        return []
    rates = {"synonym": alpha_sr, "insertion": alpha_ri, "swap": alpha_rs, "deletion": p_rd}
    used = [op for op in OPERATIONS if op in operations and rates[op] > 0]
    if not used:
        return []
    if synonyms is None and any(op in NEEDS_SYNONYMS for op in used):
        raise ValueError("synonym replacement and random insertion need a synonyms provider")
    per_operation = int(num_aug / len(used)) + 1
    copies = []
    for op in used:
        for _ in range(per_operation):
            if op == "synonym":
                new = synonym_replacement(words, edits(alpha_sr, len(words)), synonyms, rng)
            elif op == "insertion":
                new = random_insertion(words, edits(alpha_ri, len(words)), synonyms, rng)
            elif op == "swap":
                new = random_swap(words, edits(alpha_rs, len(words)), rng)
            else:
                new = random_deletion(words, p_rd, rng)
            copies.append(" ".join(new))
    rng.shuffle(copies)
    return copies[:num_aug]
