"""The Hydra application: composes the config from bertlab/conf and runs one job per composition
(one for a single run, one per swept combination with -m)."""

import hydra
from omegaconf import DictConfig

from bertlab.core.paths import CONF_DIR
from bertlab.run.job import run_job


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    return run_job(cfg)
