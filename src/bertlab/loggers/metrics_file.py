"""The name of the CSV logger's file in the run folder, for those that read it back (the
report's curves, the rows a resumed run sets aside and merges).

It is Lightning's CSVLogger's own name for the file (`ExperimentWriter.NAME_METRICS_FILE`),
written out here so that its readers need not import Lightning; `build.py` checks the two agree.
"""

METRICS_FILE = "metrics.csv"
