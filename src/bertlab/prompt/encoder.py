"""approach=prompt's encoder for FewSampleDataModule: each example rendered through the template
(with its demonstrations), its mask position and its label (an Encoder, data/encoder.py:
cache_tag, encode, collate)."""

from __future__ import annotations

import hashlib
import json

from transformers import DataCollatorWithPadding

from bertlab.data.encoder import Encoder
from bertlab.prompt import demonstrations
from bertlab.prompt.template import PromptFormat


class PromptEncoder(Encoder):
    def __init__(self, prompt: PromptFormat, train: list, kind: str, how: str, seed: int, embed=None, bounds=None):
        # kind: the task's Problem's (problems/problem.py): "regression" labels are numbers
        self.prompt, self.train, self.kind, self.how, self.seed, self.embed = (
            prompt,
            train,
            kind,
            how,
            seed,
            embed,
        )
        # a regression's demonstrations: the pole each is nearer (bounds: task.score_range)
        self.classes = demonstrations.demo_classes(train, kind, bounds) if how != "none" else []
        self.collate = DataCollatorWithPadding(prompt.tokenizer)
        self.token_types = "token_type_ids" in prompt.tokenizer.model_input_names

    def cache_tag(self, split: str) -> str:
        """What else than the examples decides the items: the template, the words, the demonstrations
        (their kind, the seed that draws them and the training split they come from)."""
        state = {
            "parts": [p.__dict__ for p in self.prompt.parts],
            "words": self.prompt.word_ids,
            "how": self.how,
            "split": split,
        }
        if self.how != "none":
            state["seed"] = self.seed
            state["train"] = [(e.text_a, e.text_b, e.label) for e in self.train]
        return "prompt:" + hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()[:16]

    def encode(self, examples: list, split: str) -> list[dict]:
        chosen = demonstrations.choose(examples, self.train, self.classes, self.how, self.seed, split, self.embed)
        label_type = float if self.kind == "regression" else int
        items = []
        for example, demo_ids in zip(examples, chosen):
            rendered = self.prompt.render(
                example, [self.train[i] for i in demo_ids], [self.classes[i] for i in demo_ids]
            )
            item = {
                "input_ids": rendered.input_ids,
                "attention_mask": [1] * len(rendered.input_ids),
                "mask_pos": rendered.mask_pos,
                "labels": label_type(example.label),
            }
            if self.token_types:  # one sequence: token type 0 throughout (LM-BFF's BERT demonstrations differ)
                item["token_type_ids"] = [0] * len(rendered.input_ids)
            items.append(item)
        return items
