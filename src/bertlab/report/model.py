"""What a report holds, in memory: one `TaskReport` per task (and main metric), in a `Report`.

Its own module so that `build` (which fills these) and `markdown` (which renders them) both
import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bertlab.report.collect import BadRun, Run
from bertlab.report.grouping import Grouping
from bertlab.report.tables import group_keys


@dataclass
class TaskReport:
    name: str  # heading and file stem: the task, or task-metric when a task was run with two main metrics
    task: str
    metric: str
    runs: list[Run]
    grouping: Grouping
    frame: pd.DataFrame  # one row per run (tables.run_frame)
    summary: pd.DataFrame  # one row per setting (tables.summary)
    paired: pd.DataFrame  # tables.paired_comparisons
    threshold_note: str
    threshold_line: float | None  # the failure threshold when one value holds for every run
    variance: pd.DataFrame  # split vs training seed, per setting (variance.decomposition)
    expected: pd.DataFrame  # expected best validation score of n runs, per setting (expected_max.curves)
    figures: dict[str, Path] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return group_keys(self.grouping)


@dataclass
class Report:
    dirs: list[Path]
    threshold: float | None
    tasks: list[TaskReport]
    bad: list[BadRun]
    notes: list[str] = field(default_factory=list)
