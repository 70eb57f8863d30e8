"""approach=prompt (src/bertlab/prompt/): template rendering and truncation on hand cases, label
words, the class scores against a direct masked-LM forward (every family), the regression poles
and their loss against the formula, demonstrations from the training split only, the auxiliary
masked-LM loss's weight, and the config's messages. In-process, on tiny models."""

import math

import pytest
import torch
import transformers
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from bertlab.core.errors import ConfigError
from bertlab.core.paths import minilm_dir
from bertlab.data.readers import Example
from bertlab.model.tiny import _config, _tokenizer
from bertlab.prompt import demonstrations
from bertlab.prompt.aux_mlm import AuxiliaryMLM, unlabeled_pool
from bertlab.prompt.encoder import PromptEncoder
from bertlab.prompt.model import as_prompt_model
from bertlab.prompt.template import PromptFormat, label_word_ids, label_word_list, parse_template
from bertlab.run.checks import check_config

RTE = "{text_a|drop_last}?{mask}, {text_b|lower_first}"


@pytest.fixture(scope="module")
def wordpiece():
    return AutoTokenizer.from_pretrained(str(minilm_dir()))


def fmt(tokenizer, template=RTE, words=("yes", "no"), max_length=128, pair=True):
    parts = parse_template(template, pair)
    return PromptFormat(parts, label_word_ids(list(words), tokenizer), tokenizer, max_length)


# --- the template ---------------------------------------------------------------------------


def test_rte_template_renders_as_lm_bff_writes_it(wordpiece):
    prompt = fmt(wordpiece)
    rendered = prompt.render(Example("The cat sat.", "The dog ran.", 0))
    # LM-BFF's *cls**sent-_0*?*mask*,*+sentl_1**sep+*: text_a less its period, "?", the mask, ",", text_b
    expected = wordpiece("The cat sat? [MASK], the dog ran.")["input_ids"]
    assert rendered.input_ids == expected
    assert rendered.input_ids[rendered.mask_pos] == wordpiece.mask_token_id
    assert rendered.special == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]  # [CLS], the mask slot, [SEP]


def test_single_text_template_and_literal_words(wordpiece):
    prompt = fmt(wordpiece, "{text_a} It was {mask}.", ("terrible", "great"), pair=False)
    rendered = prompt.render(Example("A fine film", None, 1))
    assert rendered.input_ids == wordpiece("A fine film It was [MASK].")["input_ids"]
    assert wordpiece.decode(rendered.input_ids) == "[CLS] a fine film it was [MASK]. [SEP]"


def test_truncation_cuts_the_longest_text_never_the_template_or_mask(wordpiece):
    prompt = fmt(wordpiece, max_length=20)
    long_a = " ".join(f"w{i}" for i in range(40))  # wordpiece: 'w', '##0', ... several pieces each
    rendered = prompt.render(Example(long_a + ".", "Short one.", 0))
    assert len(rendered.input_ids) == 20
    words = wordpiece.convert_ids_to_tokens(rendered.input_ids)
    assert words[-6:] == ["[MASK]", ",", "short", "one", ".", "[SEP]"]  # text_b whole, the template whole
    assert words[-7] == "?" and words[0] == "[CLS]"
    assert rendered.input_ids[rendered.mask_pos] == wordpiece.mask_token_id
    # both long: PET takes from the longer until they are equal, so they end within one token
    both = prompt.render(Example(long_a + ".", long_a + ".", 0))
    ids = both.input_ids
    question, comma = ids.index(wordpiece.convert_tokens_to_ids("?")), both.mask_pos + 1
    len_a, len_b = question - 1, len(ids) - 1 - (comma + 1)
    assert len(ids) == 20 and abs(len_a - len_b) <= 1


def test_a_template_longer_than_max_length_is_refused(wordpiece):
    prompt = fmt(wordpiece, "{text_a} it was one of the many words here {mask}.", ("bad", "good"), 8, pair=False)
    with pytest.raises(ConfigError, match=r"takes \d+ tokens with empty texts, more than task.max_length=8"):
        prompt.render(Example("anything", None, 0))


@pytest.mark.parametrize(
    "template, pair, message",
    [
        ("{text_a} It was.", False, r"has 0 \{mask\} slots"),
        ("{mask} {text_a} {mask}", False, r"has 2 \{mask\} slots"),
        ("{text_a} {masque}", False, r"unknown slot \{masque\}"),
        ("{text_a|upper} {mask}", False, "unknown modifier 'upper'"),
        ("{text_a} {mask} {text_b}", False, r"this task has one text, so the template uses \{text_a\}"),
        ("{text_a} {mask}", True, r"this task has two texts .* uses \{text_a\} and \{text_b\}"),
        ("{text_a {mask}", False, "unmatched brace|unknown slot"),
        (None, False, "approach=prompt needs a template"),
    ],
)
def test_bad_templates_one_message(template, pair, message):
    with pytest.raises(ConfigError, match=message):
        parse_template(template, pair)


def test_label_words_list_mapping_and_multi_piece(wordpiece):
    assert label_word_list({"b": "no", "a": "yes"}, ["a", "b"], "classification") == ["yes", "no"]
    with pytest.raises(ConfigError, match=r"its keys must be the task's labels \['a', 'b'\]; missing b"):
        label_word_list({"a": "yes"}, ["a", "b"], "classification")
    with pytest.raises(ConfigError, match="needs 2 \\(the low and the high pole"):
        label_word_list(["no"], None, "regression")
    with pytest.raises(ConfigError, match="two classes share a label word"):
        label_word_list(["yes", "yes"], ["a", "b"], "classification")
    with pytest.raises(ConfigError) as err:
        label_word_ids(["yes", "hippopotamus"], wordpiece)
    pieces = wordpiece.tokenize(" hippopotamus")
    assert len(pieces) > 1
    assert "the label word 'hippopotamus' is not one token" in str(err.value)
    assert str(pieces) in str(err.value)


# --- the model: class scores, regression ---------------------------------------------------

FAMILIES = ("bert", "roberta", "distilbert", "electra", "deberta-v2")


def tiny_mlm(family: str, num_labels: int = 2, problem: str = "classification"):
    tokenizer = _tokenizer(family)
    config = _config(family, len(tokenizer), 2, 32, tokenizer)
    config.num_labels, config.problem_type = (
        num_labels,
        ("regression" if problem == "regression" else "single_label_classification"),
    )
    torch.manual_seed(0)
    return tokenizer, transformers.AutoModelForMaskedLM.from_config(config).eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_class_scores_are_the_mlm_logits_of_the_label_words_at_the_mask(family):
    tokenizer, reference = tiny_mlm(family)
    import copy

    model = as_prompt_model(copy.deepcopy(reference), [7, 11], None).eval()
    input_ids = torch.randint(5, 60, (3, 9))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 7:] = 0
    mask_pos = torch.tensor([2, 5, 6])
    input_ids[torch.arange(3), mask_pos] = tokenizer.mask_token_id
    labels = torch.tensor([0, 1, 1])
    out = model(input_ids=input_ids, attention_mask=attention_mask, mask_pos=mask_pos, labels=labels)
    with torch.no_grad():
        full = reference(input_ids=input_ids, attention_mask=attention_mask).logits
    expected = full[torch.arange(3), mask_pos][:, [7, 11]]
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(expected, labels), rtol=1e-5, atol=1e-6)


def test_regression_is_the_interpolation_of_the_poles_and_its_loss_the_kl_formula():
    tokenizer, reference = tiny_mlm("bert", 1, "regression")
    import copy

    low, high = 0.0, 5.0
    model = as_prompt_model(copy.deepcopy(reference), [7, 11], (low, high)).eval()
    input_ids = torch.randint(5, 60, (4, 8))
    mask_pos = torch.tensor([1, 2, 3, 4])
    input_ids[torch.arange(4), mask_pos] = tokenizer.mask_token_id
    labels = torch.tensor([0.0, 1.25, 5.0, 3.0])
    out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), mask_pos=mask_pos, labels=labels)
    with torch.no_grad():
        pole_logits = reference(input_ids=input_ids).logits[torch.arange(4), mask_pos][:, [7, 11]]
    loss, predictions = 0.0, []
    for row, y in zip(pole_logits.tolist(), labels.tolist()):
        p_high = math.exp(row[1]) / (math.exp(row[0]) + math.exp(row[1]))
        predictions.append(low + (high - low) * p_high)
        t = (y - low) / (high - low)
        # KL(target || p) = sum_c t_c (log t_c - log p_c), 0 log 0 = 0; averaged over the batch
        loss += sum(tc * (math.log(tc) - math.log(pc)) for tc, pc in ((1 - t, 1 - p_high), (t, p_high)) if tc > 0)
    assert out.logits.shape == (4, 1)
    torch.testing.assert_close(out.logits[:, 0], torch.tensor(predictions), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.loss, torch.tensor(loss / 4), rtol=1e-5, atol=1e-6)


# --- demonstrations ----------------------------------------------------------------------


def examples(prefix: str, n: int, classes: int = 2):
    return [Example(f"{prefix} text number {i}.", f"{prefix} second {i}.", i % classes) for i in range(n)]


@pytest.mark.parametrize("how", ["random", "similar"])
def test_demonstrations_come_from_the_training_split_only(wordpiece, how):
    train, val, test = examples("train", 8), examples("val", 6), examples("test", 6)

    def embed(batch):  # a stand-in sentence encoder: any normalised vectors
        vectors = torch.tensor([[float(len(e.text_a)), float(hash(e.text_a) % 97), 1.0] for e in batch])
        return torch.nn.functional.normalize(vectors, dim=-1)

    encoder = PromptEncoder(fmt(wordpiece, max_length=256), train, "classification", how, seed=3, embed=embed)
    classes = demonstrations.demo_classes(train, "classification")
    for split, queries in (("train", train), ("val", val), ("test", test)):
        chosen = demonstrations.choose(queries, train, classes, how, 3, split, embed)
        for q, picks in enumerate(chosen):
            assert [classes[i] for i in picks] == [0, 1]  # one per class, in class order
            if split == "train":
                assert q not in picks  # never itself
        items = encoder.encode(queries, split)
        for item in items:
            text = wordpiece.decode(item["input_ids"])
            assert "train" in text  # the demonstrations
            other = {"train": ("val", "test"), "val": ("test",), "test": ("val",)}[split]
            assert not any(word in text for word in other)
            assert text.count("[MASK]") == 1 and item["input_ids"][item["mask_pos"]] == wordpiece.mask_token_id


def test_regression_demonstrations_split_at_the_middle_of_the_score_range():
    # LM-BFF's median_mapping for STS-B: 2.5, a label <= 2.5 is the low pole
    train = [Example("a", "b", y) for y in (0.0, 2.5, 2.6, 5.0, 1.0)]
    assert demonstrations.demo_classes(train, "regression", (0.0, 5.0)) == [0, 0, 1, 1, 0]


def test_demonstrations_carry_their_label_word(wordpiece):
    train = [Example("alpha", "beta", 0), Example("gamma", "delta", 1)]
    prompt = fmt(wordpiece)
    rendered = prompt.render(Example("query one.", "query two.", 0), train, [0, 1])
    text = wordpiece.decode(rendered.input_ids)
    assert text == "[CLS] query one? [MASK], query two. [SEP] alph? yes, beta [SEP] gamm? no, delta [SEP]"


# --- PET's auxiliary masked-LM loss -------------------------------------------------------


def test_auxiliary_loss_weight_mixes_as_pet():
    tokenizer, reference = tiny_mlm("bert")
    model = as_prompt_model(reference, [7, 11], None)
    prompt = fmt(AutoTokenizer.from_pretrained(str(minilm_dir())), max_length=64)
    pool = examples("pool", 12)
    task_loss = torch.tensor(0.7)
    for weight in (0.0, 1e-4, 0.5):
        aux = AuxiliaryMLM(weight, pool, prompt, prompt.tokenizer, batch_size=4, seed=0)
        mixed = aux(model, task_loss, step=2)
        if weight == 0:
            assert mixed is task_loss
            continue
        indices, pass_ = aux.batch_indices(2)
        batch = aux.masker.collate([aux.block(i) for i in indices], epoch=pass_)
        assert (batch["labels"] != -100).any()
        # the template's mask slot and the special tokens are never masked
        for row, i in enumerate(indices):
            special = torch.tensor(aux.block(i)["special_tokens_mask"]).bool()
            assert (batch["labels"][row, : len(special)][special] == -100).all()
        mlm = model.mlm_loss(batch["input_ids"], batch["attention_mask"], batch["labels"])
        torch.testing.assert_close(mixed, (1 - weight) * task_loss + weight * mlm)
    # every pool example once per pass, a function of the step alone
    seen = [i for step in range(3) for i in aux.batch_indices(step)[0]]
    assert sorted(seen) == list(range(12))


def test_unlabeled_pool_leaves_out_validation_and_test():
    pools = {"train": examples("a", 10)}
    splits = {"train": pools["train"][:2], "val": pools["train"][2:4], "test": examples("t", 3)}
    pool = unlabeled_pool(pools, splits, 100, 0)
    assert all(e not in splits["val"] for e in pool) and len(pool) == 8
    assert len(unlabeled_pool(pools, splits, 5, 0)) == 5


# --- the config --------------------------------------------------------------------------


def check(compose_train, *overrides):
    cfg = compose_train("approach=prompt", *overrides)
    OmegaConf.set_struct(cfg, False)
    check_config(cfg)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["approach.demonstrations=nearest"],
            "approach.demonstrations=nearest is invalid; valid: none, random, similar",
        ),
        (["approach.aux_mlm_weight=1.5"], r"approach.aux_mlm_weight=1.5 is invalid: a number in \[0, 1\)"),
        (["head=cls"], "head=cls does not apply to approach=prompt"),
        (["distill=self"], "distill=self does not apply to approach=prompt"),
        (["task=conll2003"], "task.problem=token_classification is not one: use approach=finetune"),
        (["task=stsb", "task.score_range=null"], r"task.score_range=None is invalid.*task.score_range=\[0,5\]"),
        (["task=rte", "task.label_words=[yes]"], r"task.label_words=\['yes'\] has 1 words; this task needs 2"),
        (
            [
                "task=csv",
                "task.text_fields=[t]",
                "task.data_dir=x",
                "task.train_file=a.csv",
                "task.dev_file=b.csv",
                "task.label_field=l",
            ],
            "task.template=None is invalid: approach=prompt needs a template",
        ),
    ],
)
def test_config_messages(compose_train, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check(compose_train, *overrides)


def test_every_packaged_sequence_task_has_a_valid_preset(compose_train):
    for task in ("rte", "mrpc", "stsb", "cola", "sst2", "qnli", "qqp", "mnli", "bbcnews"):
        check(compose_train, f"task={task}")


# --- the masked-LM head and the methods ------------------------------------------------------


def test_a_checkpoint_without_mlm_head_gets_a_tied_fresh_one_said_in_one_line(tiny_bert_dir, said):
    from bertlab.methods.mixout import MixLinear, apply_mixout
    from bertlab.methods.reinit import reinit_top_layers
    from bertlab.prompt.model import load_prompt_model

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    model = load_prompt_model(str(tiny_bert_dir), 2, "classification", None, [7, 11], None, tokenizer)
    assert model.head_origin.startswith(f"new masked-LM head: {tiny_bert_dir} has no weights for it")
    assert model.head_origin.endswith("decoder tied to the input embeddings")
    assert f"model: {model.head_origin}" in said()
    head_before = {k: v.clone() for k, v in model.cls.state_dict().items()}
    touched = reinit_top_layers(model, 2, reinit_pooler=True)
    assert touched == ["bert.encoder.layer.0", "bert.encoder.layer.1"]  # blocks only: the head is not one
    for key, value in model.cls.state_dict().items():
        assert torch.equal(value, head_before[key]), f"re-init changed the masked-LM head's {key}"
    apply_mixout(model, 0.1)
    assert not any(isinstance(m, MixLinear) for m in model.cls.modules())  # the head stays plain Linears
    assert isinstance(model.bert.encoder.layer[0].attention.self.query, MixLinear)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied
