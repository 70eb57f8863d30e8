"""The names of the task metrics, by problem: the one list `metrics.py` computes from and the
report reads (which loss a curve shows, which baseline a table names).

Names only, no torch: the report imports this and stays light.
"""

CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
