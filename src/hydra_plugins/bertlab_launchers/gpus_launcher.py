"""`hydra/launcher=gpus`: run a multirun as a pool over GPUs, on Ray.

Each job is a Ray task that reserves `gpus_per_job` GPUs, or 1/`jobs_per_gpu` of one (Ray sets
its CUDA_VISIBLE_DEVICES; N jobs share a GPU at once), jobs queue until a GPU frees, and every job runs in a fresh worker process (`max_calls=1`): no CUDA
or W&B state leaks from one job to the next. Locally the pool is the GPUs present, or
`gpus=N` logical GPUs (on a CPU-only machine too, for testing); with `address=` it joins an
existing Ray cluster and the pool is that cluster's GPUs.

Why a thin launcher of ours and not `hydra-ray-launcher`: that plugin pins cloudpickle<3, which
conflicts with joblib>=1.6 (docs/design.md#gpu-pool-launcher); this one is the same few Ray calls.
A job whose worker dies (killed, out of memory) gets a `result.json` with status `failed` here,
since it could not write one itself; the sweep goes on either way.
"""

import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


@dataclass
class GpusLauncherConf:
    _target_: str = "hydra_plugins.bertlab_launchers.gpus_launcher.GpusLauncher"
    # pool size: null = the GPUs present; N on a machine without GPUs declares N logical GPUs
    gpus: int | None = None
    gpus_per_job: float = 1
    # N jobs share each GPU at once (Ray's fractional GPUs: each reserves 1/N of one GPU, Ray sets its
    # CUDA_VISIBLE_DEVICES to that GPU); each is still a fresh process. A few-sample run of a small
    # model uses a sliver of a GPU. With gpus_per_job != 1: refused, set one of the two.
    jobs_per_gpu: int = 1
    cpus_per_job: float = 1
    # an existing Ray cluster ("auto", "host:6379", "ray://head:10001"); null starts a fresh local one
    address: str | None = None
    # re-runs of a job whose worker died; 0: a crash is recorded as failed (an OOM would repeat)
    max_retries: int = 0
    # forward the jobs' stdout/stderr to this terminal
    log_to_driver: bool = True
    # passed to ray.init, e.g. {pip: [...], env_vars: {...}} for a cluster
    runtime_env: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/launcher", name="gpus", node=GpusLauncherConf, provider="bertlab")


def execute_job(
    cwd: str,
    idx: int,
    overrides: list[str],
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
) -> JobReturn:
    """One job, in its own Ray worker process (as hydra's joblib launcher does it)."""
    if os.path.isdir(cwd):  # relative sweep dirs resolve where the sweep was started
        os.chdir(cwd)
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    return run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def job_dir(config: DictConfig, hydra_context: HydraContext, idx: int, overrides: Sequence[str]) -> Path:
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.num = idx
    return Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)


def record_crash(directory: Path, overrides: Sequence[str], err: BaseException) -> None:
    """A failed result.json for a job that could not write its own (its process died)."""
    from bertlab.core.record import RESULT_FILE, read_result, write_json_atomic

    previous = read_result(directory) or {}
    if previous.get("status") in (None, "running"):
        try:
            write_json_atomic(
                directory / RESULT_FILE,
                {
                    **previous,
                    "status": "failed",
                    "overrides": list(overrides),
                    "run_dir": str(directory),
                    "error": f"the job's worker process died: {err.__class__.__name__}: {str(err)[:2000]}",
                },
            )
        except OSError as why:  # its folder cannot be written either: the summary says so; the sweep goes on
            log.error(f"{directory / RESULT_FILE} not written: {why}")


def gpu_share(p: GpusLauncherConf) -> float:
    """The GPUs one job reserves, from gpus_per_job and jobs_per_gpu; exits with one message when
    they are bad or conflict."""
    n = p.jobs_per_gpu
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        sys.exit(f"error: hydra.launcher.jobs_per_gpu={n}: needs an integer >= 1 (the jobs run at once on each GPU).")
    if n > 1 and p.gpus_per_job != 1:
        sys.exit(
            f"error: hydra.launcher.jobs_per_gpu={n} and hydra.launcher.gpus_per_job={p.gpus_per_job:g} both set "
            f"a job's share of a GPU: set one of them. jobs_per_gpu={n} is gpus_per_job=1/{n} and runs "
            f"{n} jobs on each GPU; gpus_per_job > 1 gives a job several whole GPUs."
        )
    return 1 / n if n > 1 else p.gpus_per_job


def at_a_time(gpus: float, p: GpusLauncherConf) -> int:
    """How many jobs run at once on `gpus` GPUs (whole numbers: 1 // (1/3) is 2.0 in floats)."""
    return int(gpus) * p.jobs_per_gpu if p.jobs_per_gpu > 1 else int(gpus // p.gpus_per_job)


class GpusLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        self.params = GpusLauncherConf(
            **{
                k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
                for k, v in params.items()
                if k != "_target_"
            }
        )
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def start_ray(self) -> bool:
        """Start or join Ray; True when this launcher started it (and so shuts it down)."""
        import ray

        if ray.is_initialized():
            return False
        p = self.params
        common = dict(include_dashboard=False, log_to_driver=p.log_to_driver, runtime_env=p.runtime_env or None)
        if p.address:
            ray.init(address=p.address, **common)
        elif p.gpus is None:  # "local": a fresh Ray of our own, never one left running on this node
            ray.init(address="local", **common)  # Ray detects the GPUs present
        else:
            import torch

            present = torch.cuda.device_count()
            if present and p.gpus > present:  # logical GPUs are for machines without any
                sys.exit(
                    f"hydra.launcher.gpus={p.gpus} but this machine has {present} GPUs: jobs given a GPU "
                    f"that does not exist would run on the CPU. Use hydra.launcher.gpus={present} or leave it unset."
                )
            # the GPUs drive the pool: never let the CPU count throttle it below `gpus` jobs
            cpus = max(os.cpu_count() or 1, math.ceil(at_a_time(p.gpus, p) * p.cpus_per_job))
            ray.init(address="local", num_gpus=p.gpus, num_cpus=cpus, **common)
        return True

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        p = self.params
        share = gpu_share(p)  # before Ray starts: a bad setting costs nothing
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        started = self.start_ray()
        try:
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus < share:
                # one message, no traceback: nothing ran yet
                sys.exit(
                    f"hydra/launcher=gpus: the Ray cluster has {gpus:g} GPUs, a job needs {share:g}. "
                    "On a machine without GPUs declare logical ones for testing: hydra.launcher.gpus=2."
                )
            log.info(
                f"Launching {len(job_overrides)} jobs on Ray: {gpus:g} GPUs, "
                f"{share:g} per job, at most {at_a_time(gpus, p)} at a time"
            )
            remote = ray.remote(num_gpus=share, num_cpus=p.cpus_per_job, max_calls=1, max_retries=p.max_retries)(
                execute_job
            )
            # the context and config go to the object store once, not once per job
            shared = [ray.put(x) for x in (self.hydra_context, self.config, self.task_function, Singleton.get_state())]
            jobs = []
            for offset, overrides in enumerate(job_overrides):
                idx = initial_job_idx + offset
                log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
                jobs.append((idx, list(overrides), remote.remote(os.getcwd(), idx, list(overrides), *shared)))
            return [self.collect(idx, overrides, ref) for idx, overrides, ref in jobs]
        finally:
            if started:
                ray.shutdown()

    def collect(self, idx: int, overrides: list[str], ref: Any) -> JobReturn:
        import ray

        try:
            return ray.get(ref)
        except Exception as err:  # the worker died or hydra failed around the job: record it, go on
            assert self.config is not None and self.hydra_context is not None
            directory = job_dir(self.config, self.hydra_context, idx, overrides)
            log.error(f"job #{idx} ({' '.join(overrides)}) died: {err.__class__.__name__}")
            record_crash(directory, overrides, err)
            ret = JobReturn(overrides=overrides, working_dir=str(directory), status=JobStatus.COMPLETED)
            ret.return_value = None
            return ret
