"""The CSV logger that writes `metrics.csv` straight into the run folder.

Lightning's CSVLogger warns "Experiment logs directory ... exists and is not empty. Previous log
files in this directory will be deleted" whenever its folder holds any file: a stand-in for "a
metrics.csv from before is about to be replaced". Our folder is the run folder, which Hydra has
already filled (.hydra/, the job log), so the warning came on every fresh run. This one checks the
file itself: the warning, and the deletion, happen only when a metrics.csv is really there.
"""

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment


class RunFolderWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):  # Lightning's own check then warns and deletes it
            super()._check_log_dir_exists()


class RunFolderCSVLogger(CSVLogger):
    """CSVLogger(save_dir=run_dir, name="", version=""): metrics.csv directly in the run folder."""

    def __init__(self, run_dir: str):
        super().__init__(save_dir=run_dir, name="", version="")

    @property
    @rank_zero_experiment
    def experiment(self) -> RunFolderWriter:
        # CSVLogger.experiment, with our writer
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = RunFolderWriter(log_dir=self.log_dir)
        return self._experiment
