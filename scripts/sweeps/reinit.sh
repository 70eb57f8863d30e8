#!/usr/bin/env bash
# Paper sec. 5: re-initialise the pooler and the top L = 0..6 blocks (debiased Adam), 20 seeds: 140 runs.
#   GLUE=/data/glue_data TASK=mrpc scripts/sweeps/reinit.sh hydra/launcher=slurm hydra.launcher.partition=gpu
# Extra arguments are Hydra overrides; re-running the same command resumes (finished runs are skipped).
source "$(dirname "$0")/_common.sh"
exec $PYTHON train.py -m experiment=paper_full "${TASK_ARGS[@]}" \
    optimizer=adamw reinit=0,1,2,3,4,5,6 seed='range(20)' \
    hydra.sweep.dir="${SWEEP_DIR:-multirun/paper/reinit_$TASK}" "$@"
