"""A cloze template with one mask slot and its verbalizer (one label word per class), as token ids.

The template is the task's `task.template`, e.g. RTE's `"{text_a|drop_last}? {mask}, {text_b|lower_first}"`:

    {text_a} {text_b}   the example's texts (the task's text_fields, in order)
    {mask}              the mask slot: the model's mask token, whose masked-LM logits of the label
                        words are the class scores (a demonstration gets its label word there)
    |drop_last          modifier: the text less its last character (LM-BFF's `*sent-_i*`: the final period)
    |lower_first        modifier: the first character lower-cased (LM-BFF's `*sentl_i*`)
    anything else       literal text, kept as written

It is LM-BFF's template language (princeton-nlp/LM-BFF src/dataset.py, tokenize_multipart_input)
in a readable spelling: each part is tokenised on its own and the ids joined, so a text and the
template words never merge into one token. Spaces matter to byte-level BPE (RoBERTa) as they do
in LM-BFF: a literal's trailing space moves onto the slot after it (LM-BFF's `*+sent_i*`, a text
encoded as " " + text), and a label word is always encoded with a leading space, as LM-BFF
encodes its label words (`' ' + word`, one token, or refused). WordPiece ignores both.
The model's own special tokens frame the whole ([CLS] ... [SEP], <s> ... </s>); the rendered
input is one sequence, with token type 0 throughout.

Truncation (PET's `PVP.truncate`, timoschick/pet pet/pvp.py): when the input is longer than
task.max_length, tokens are taken off the end of the longest text, one at a time, until it
fits; the template words, the mask and the label words of demonstrations are never cut. A template
that does not fit even with empty texts is refused with one message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bertlab.core.errors import ConfigError

SLOT = re.compile(r"\{([^{}]*)\}")
TEXTS = ("text_a", "text_b")
MODIFIERS = {
    "drop_last": lambda text: text[:-1],
    "lower_first": lambda text: text[:1].lower() + text[1:],
}
EXAMPLE = "'{text_a} It was {mask}.' or, for pairs, '{text_a|drop_last}? {mask}, {text_b|lower_first}'"


@dataclass(frozen=True)
class Part:
    kind: str  # "literal", "text" or "mask"
    value: str = ""  # the literal's text, or the text slot's name (text_a, text_b)
    modifiers: tuple[str, ...] = ()
    space: bool = False  # a slot after a literal that ended with a space: the space is the slot's


def parse_template(template, pair: bool, key: str = "task.template") -> tuple[Part, ...]:
    """The parts of `template`, checked: one {mask}, {text_a} (and {text_b} exactly when the task
    has two texts), known modifiers only. Every mistake is one message naming `key`."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{key}={template!r} is invalid: approach=prompt needs a template, e.g. {EXAMPLE}.")
    parts: list[Part] = []
    at = 0
    for match in SLOT.finditer(template):
        if match.start() > at:
            parts.append(Part("literal", template[at : match.start()]))
        name, *modifiers = [piece.strip() for piece in match.group(1).split("|")]
        if name == "mask" and not modifiers:
            parts.append(Part("mask"))
        elif name in TEXTS:
            unknown = [m for m in modifiers if m not in MODIFIERS]
            if unknown:
                raise ConfigError(
                    f"{key}={template!r}: unknown modifier '{unknown[0]}' in {match.group(0)}; "
                    f"valid: {', '.join(MODIFIERS)}."
                )
            parts.append(Part("text", name, tuple(modifiers)))
        else:
            raise ConfigError(
                f"{key}={template!r}: unknown slot {match.group(0)}; valid: {{text_a}}, {{text_b}} (pair tasks), "
                f"{{mask}}, and text modifiers |{' |'.join(MODIFIERS)}."
            )
        at = match.end()
    if at < len(template):
        parts.append(Part("literal", template[at:]))
    if "{" in "".join(p.value for p in parts if p.kind == "literal") or "}" in "".join(
        p.value for p in parts if p.kind == "literal"
    ):
        raise ConfigError(f"{key}={template!r}: an unmatched brace; slots are written {{text_a}}, {{mask}}.")
    masks = sum(p.kind == "mask" for p in parts)
    if masks != 1:
        raise ConfigError(f"{key}={template!r} has {masks} {{mask}} slots; a template has exactly one, e.g. {EXAMPLE}.")
    used = {p.value for p in parts if p.kind == "text"}
    wanted = set(TEXTS if pair else TEXTS[:1])
    if used != wanted:
        what = "two texts (sentence pairs)" if pair else "one text"
        raise ConfigError(
            f"{key}={template!r} uses {', '.join(sorted('{' + u + '}' for u in used)) or 'no text'}; this task has "
            f"{what}, so the template uses {' and '.join('{' + w + '}' for w in sorted(wanted))}, each once or more."
        )
    return _move_spaces(parts)


def _move_spaces(parts: list[Part]) -> tuple[Part, ...]:
    """A literal's trailing whitespace becomes the next slot's leading space (see the docstring)."""
    moved: list[Part] = []
    for i, part in enumerate(parts):
        following = parts[i + 1] if i + 1 < len(parts) else None
        if part.kind == "literal" and following is not None and part.value != part.value.rstrip():
            part = Part("literal", part.value.rstrip())
            following_space = True
        else:
            following_space = False
        if part.kind != "literal" or part.value:
            moved.append(part)
        if following_space:
            parts[i + 1] = Part(following.kind, following.value, following.modifiers, space=True)
    return tuple(moved)


def label_word_list(label_words, labels: Sequence | None, kind: str, key: str = "task.label_words") -> list[str]:
    """The label words in class order: a list (task.labels' order), or a mapping label -> word.
    Regression (`kind`, the task's Problem's): two words, the low pole then the high pole (LM-BFF's STS-B: No, Yes)."""
    if kind == "regression":
        names, count = ["low", "high"], 2
    else:
        names, count = [str(label) for label in labels or []], len(labels or [])
    if isinstance(label_words, Mapping):
        words = {str(k): v for k, v in label_words.items()}
        missing = [n for n in names if n not in words]
        extra = [k for k in words if k not in names]
        if missing or extra:
            raise ConfigError(
                f"{key}={dict(words)}: its keys must be the task's labels {names}"
                f"{'; missing ' + ', '.join(missing) if missing else ''}{'; unknown ' + ', '.join(extra) if extra else ''}."
            )
        words = [words[n] for n in names]
    elif isinstance(label_words, Sequence) and not isinstance(label_words, str):
        words = list(label_words)
    else:
        raise ConfigError(
            f"{key}={label_words!r} is invalid: approach=prompt needs one label word per class, a list in "
            f"task.labels' order or a mapping label: word (regression: [low_word, high_word], e.g. [No, Yes])."
        )
    if len(words) != count:
        what = "2 (the low and the high pole, e.g. [No, Yes])" if kind == "regression" else f"{count} ({names})"
        raise ConfigError(f"{key}={words} has {len(words)} words; this task needs {what}.")
    bad = [w for w in words if not isinstance(w, str) or not w.strip()]
    if bad:
        raise ConfigError(f"{key}: label word {bad[0]!r} is not a word.")
    if len(set(words)) != len(words):
        raise ConfigError(f"{key}={words}: two classes share a label word; each class needs its own.")
    return [w.strip() for w in words]


def label_word_ids(words: list[str], tokenizer, key: str = "task.label_words") -> list[int]:
    """One vocabulary id per label word, encoded with a leading space as LM-BFF does; a word that
    is not one token (or is the unknown token) is refused with the pieces it became."""
    ids = []
    for word in words:
        pieces = tokenizer.tokenize(" " + word)
        piece_ids = tokenizer.convert_tokens_to_ids(pieces)
        if len(pieces) != 1 or piece_ids[0] == tokenizer.unk_token_id:
            became = f"the pieces {pieces}" if len(pieces) != 1 else f"the unknown token {pieces}"
            raise ConfigError(
                f"{key}: the label word '{word}' is not one token of this model's vocabulary: it became {became}; "
                "the class score is the masked-LM logit of one token, so pick a word the vocabulary holds whole "
                "(a shorter or more common word)."
            )
        ids.append(piece_ids[0])
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{key}={words}: two label words become the same token; each class needs its own.")
    return ids


@dataclass
class Rendered:
    """One encoded input: ids with the model's special tokens, the mask's position, and which
    positions are not text (special tokens, the mask slot, demonstrations' label words): the
    auxiliary masked-LM loss never masks those."""

    input_ids: list[int]
    mask_pos: int
    special: list[int]


class PromptFormat:
    """The template, the label words and the tokenizer: examples -> model inputs."""

    def __init__(self, parts: tuple[Part, ...], word_ids: list[int], tokenizer, max_length: int):
        self.parts, self.word_ids, self.tokenizer, self.max_length = parts, word_ids, tokenizer, max_length
        self.frame = _special_frame(tokenizer)
        self.budget = max_length - len(self.frame[0]) - len(self.frame[1])
        self.literals = {
            p.value: tokenizer.encode(p.value, add_special_tokens=False) for p in parts if p.kind == "literal"
        }
        self.separator = [tokenizer.sep_token_id] if tokenizer.sep_token_id is not None else []

    def _segments(self, texts: dict, fill: int | None) -> list[tuple[list[int], bool, bool]]:
        """(ids, is_text, is_special) per part; `fill`: the id in the mask slot (None: the mask token)."""
        segments = []
        for part in self.parts:
            if part.kind == "literal":
                segments.append((list(self.literals[part.value]), False, False))
            elif part.kind == "mask":
                segments.append(([self.tokenizer.mask_token_id if fill is None else fill], False, True))
            else:
                text = texts[part.value] or ""
                for modifier in part.modifiers:
                    text = MODIFIERS[modifier](text)
                text = (" " if part.space else "") + text
                # verbose=False: a long article is expected here, it is cut below (no "longer than" warning)
                ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
                segments.append((ids, True, False))
        return segments

    def render(self, example, demonstrations: Sequence = (), demo_classes: Sequence[int] = ()) -> Rendered:
        """`example` (text_a, text_b) with its mask; then each demonstration (an example with
        the label word of its class in the mask slot), after a separator token, as LM-BFF appends them."""
        segments = self._segments({"text_a": example.text_a, "text_b": example.text_b}, None)
        for demo, cls in zip(demonstrations, demo_classes):
            segments.append((list(self.separator), False, True))
            segments += self._segments({"text_a": demo.text_a, "text_b": demo.text_b}, self.word_ids[cls])
        self._truncate(segments)
        before, after = self.frame
        ids, special, mask_pos = list(before), [1] * len(before), None
        for i, (seg_ids, _, is_special) in enumerate(segments):
            if i == self._mask_index:
                mask_pos = len(ids)
            ids += seg_ids
            special += [1 if is_special else 0] * len(seg_ids)
        ids += after
        special += [1] * len(after)
        return Rendered(ids, mask_pos, special)

    @property
    def _mask_index(self) -> int:
        return next(i for i, p in enumerate(self.parts) if p.kind == "mask")

    def _truncate(self, segments: list) -> None:
        """PET's rule: take the last token off the longest text until the whole fits (in place)."""
        excess = sum(len(s[0]) for s in segments) - self.budget
        while excess > 0:
            texts = [i for i, s in enumerate(segments) if s[1] and s[0]]
            if not texts:
                fixed = sum(len(s[0]) for s in segments)
                raise ConfigError(
                    f"task.template with its label words and demonstrations takes {fixed} tokens with empty texts, "
                    f"more than task.max_length={self.max_length} leaves ({self.budget} besides the special tokens); "
                    "raise task.max_length or shorten the template (or use approach.demonstrations=none)."
                )
            # the longest text; on a tie the later one, as PET's truncate takes from text_b then
            longest = max(texts, key=lambda i: (len(segments[i][0]), i))
            segments[longest][0].pop()
            excess -= 1


def _special_frame(tokenizer) -> tuple[list[int], list[int]]:
    # the pre-training stage's reading of the model's special tokens around one text
    from bertlab.pretrain.masking import _special_frame as frame

    return frame(tokenizer)
