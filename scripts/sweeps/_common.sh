# Shared by the paper sweeps: where the GLUE files are, which task, which python.
#   GLUE      folder holding RTE/, MRPC/, STS-B/, CoLA/ (a glue_data download, or <cache>/glue from `bertlab prepare`)
#   TASK      conf/task name (rte, mrpc, stsb, cola)       SWEEP_DIR  where the runs go (re-run to resume)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-python}
TASK=${TASK:-rte}
declare -A GLUE_DIRS=([rte]=RTE [mrpc]=MRPC [stsb]=STS-B [cola]=CoLA [sst2]=SST-2 [qnli]=QNLI [qqp]=QQP [mnli]=MNLI)
GLUE=${GLUE:?set GLUE to the folder holding ${GLUE_DIRS[$TASK]}/ (glue_data, or <cache>/glue from bertlab prepare)}
TASK_ARGS=(task="$TASK" task.data_dir="$GLUE/${GLUE_DIRS[$TASK]}")
