"""The sweep report: `bertlab report <sweep_dir> ...` -> report.md, figures, runs.csv.

collect (find runs, read result.json / metrics.csv) -> grouping (which settings are row keys)
-> tables (failure, statistics, paired comparisons) -> model (Report, TaskReport) -> figures /
markdown -> build (assembly).
"""

from bertlab.report.build import NoRunsError, build_report, write_report
from bertlab.report.markdown import render_terminal
from bertlab.report.model import Report, TaskReport

__all__ = ["NoRunsError", "Report", "TaskReport", "build_report", "render_terminal", "write_report"]
