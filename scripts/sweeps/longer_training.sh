#!/usr/bin/env bash
# Paper sec. 6: train longer than 3 epochs (1k samples at batch 32: ~94 steps). Fixed step budgets
# 200..3200 (the paper's range), standard vs Re-init (top 5 blocks), 20 seeds: 200 runs.
# trainer.max_epochs=-1: Lightning stops at whichever of max_epochs / max_steps comes first.
#   GLUE=/data/glue_data scripts/sweeps/longer_training.sh hydra/launcher=gpus
# Extra arguments are Hydra overrides; re-running the same command resumes (finished runs are skipped).
source "$(dirname "$0")/_common.sh"
exec $PYTHON train.py -m experiment=paper_1k "${TASK_ARGS[@]}" \
    optimizer=adamw trainer.max_epochs=-1 trainer.max_steps=200,400,800,1600,3200 reinit=0,5 seed='range(20)' \
    hydra.sweep.dir="${SWEEP_DIR:-multirun/paper/longer_training_$TASK}" "$@"
