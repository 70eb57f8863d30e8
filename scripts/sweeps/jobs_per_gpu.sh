#!/usr/bin/env bash
# docs/sweeps.md, "Filling a GPU": the wall time of 16 MiniLM RTE-1k jobs (paper_1k, model=minilm, seeds 0..15)
# on the gpus launcher at jobs_per_gpu N = 1, 2, 4, 8, on this machine's GPUs; prints the table.
#   GLUE=/data/glue_data scripts/sweeps/jobs_per_gpu.sh            # N = 1 2 4 8
#   GLUE=/data/glue_data NS="1 4" scripts/sweeps/jobs_per_gpu.sh   # some of them
# Extra arguments are Hydra overrides for every sweep (e.g. hydra.launcher.gpus=1 to use one GPU).
# A smoke test without a GPU (logical GPUs, the tiny model):
#   GLUE=../shared/glue JOBS=4 NS="1 2" MODEL=tiny scripts/sweeps/jobs_per_gpu.sh debug=fast hydra.launcher.gpus=2
# Each N sweeps into a fresh folder under multirun/jobs_per_gpu/<time>/ (a re-used folder would skip
# its finished jobs and time nothing); a sweep that does not end with 16 jobs ok stops the script.
source "$(dirname "$0")/_common.sh"
OUT=${SWEEP_DIR:-multirun/jobs_per_gpu/$(date +%Y-%m-%d_%H-%M-%S)}
NS=${NS:-1 2 4 8}
JOBS=${JOBS:-16}
MODEL=${MODEL:-minilm}
mkdir -p "$OUT"
GPUS=$($PYTHON -c "import torch; print(torch.cuda.device_count())")
GPU_NAME=$($PYTHON -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')")
rows=()
for n in $NS; do
    start=$(date +%s.%N)
    $PYTHON train.py -m experiment=paper_1k "${TASK_ARGS[@]}" model="$MODEL" seed="range($JOBS)" \
        logger=csv trainer.enable_progress_bar=false \
        hydra/launcher=gpus hydra.launcher.jobs_per_gpu="$n" hydra.launcher.log_to_driver=false \
        hydra.sweep.dir="$OUT/N$n" "$@" > "$OUT/N$n.log" 2>&1 || { tail -20 "$OUT/N$n.log"; exit 1; }
    wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    grep -q "$JOBS jobs, $JOBS succeeded" "$OUT/N$n.log" || { tail -20 "$OUT/N$n.log"; exit 1; }
    rows+=("$(awk -v n="$n" -v w="$wall" -v j="$JOBS" 'BEGIN { printf "| %d | %.0f | %.1f |", n, w, w / j }')")
    echo "N=$n: $wall s (log: $OUT/N$n.log)" >&2
done
echo "$JOBS $MODEL $TASK-1k jobs (experiment=paper_1k model=$MODEL $*), $GPUS x $GPU_NAME:"
echo "| jobs_per_gpu | wall time (s) | s per job |"
echo "|---|---|---|"
printf '%s\n' "${rows[@]}"
