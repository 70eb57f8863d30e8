"""The Hydra application: composes the config from conf/ (bertlab.conf) and runs one job per composition
(one for a single run, one per swept combination with -m)."""

import hydra
from omegaconf import DictConfig

from bertlab.core.paths import CONF_DIR
from bertlab.loggers.console import quiet_libraries
from bertlab.run.job import run_job


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    quiet_libraries()  # before any library prints: the noise is silenced at its source (console.py)
    return run_job(cfg)
