"""The names of the task metrics, by problem: the one list `metrics.py` computes from and the
report reads (which loss a curve shows, which baseline a table names).

Names only, no torch: the report imports this and stays light.
"""

CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
# entity-level scores (seqeval) and word accuracy: problems/token_classification/metrics.py
TOKEN_CLASSIFICATION_METRICS = ("entity_f1", "entity_precision", "entity_recall", "token_accuracy")
# SQuAD exact match and the F1 of the answer's words (problems/question_answering/metrics.py); not "f1", which is the
# positive class's F1 of classification: W&B keys and the report's labels stay unambiguous across tasks
QUESTION_ANSWERING_METRICS = ("exact_match", "answer_f1")
# accuracy over the N choices' scores (problems/metrics.py with N classes)
MULTIPLE_CHOICE_METRICS = ("accuracy",)
METRICS_BY_PROBLEM = {
    "classification": CLASSIFICATION_METRICS,
    "regression": REGRESSION_METRICS,
    "token_classification": TOKEN_CLASSIFICATION_METRICS,
    "question_answering": QUESTION_ANSWERING_METRICS,
    "multiple_choice": MULTIPLE_CHOICE_METRICS,
}
