"""The encoder families every model-dependent test runs on (tiny random models: bertlab.model.tiny)."""

ENCODER_FAMILIES = ("bert", "roberta", "distilbert", "electra", "albert", "deberta-v2")
