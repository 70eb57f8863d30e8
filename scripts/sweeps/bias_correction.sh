#!/usr/bin/env bash
# Paper sec. 4: BERTAdam (no bias correction) vs debiased Adam, 50 seeds: 100 runs.
#   GLUE=/data/glue_data scripts/sweeps/bias_correction.sh hydra/launcher=gpus
# Extra arguments are Hydra overrides; re-running the same command resumes (finished runs are skipped).
source "$(dirname "$0")/_common.sh"
exec $PYTHON train.py -m experiment=paper_full "${TASK_ARGS[@]}" \
    optimizer=bertadam,adamw seed='range(50)' \
    hydra.sweep.dir="${SWEEP_DIR:-multirun/paper/bias_correction_$TASK}" "$@"
