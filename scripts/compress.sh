#!/usr/bin/env bash
# Upstream README's compression command with --device cpu and variables for the paths; the flags it shares with
# train.sh are in common.sh (trainer_args). Extra flags are appended and win (e.g. --width_mult_list 1/2
# --max_steps 20). MODEL: the fine-tuned directory (train.sh's OUTPUT), whose deploy_config.json gives the max
# length; OUTPUT: where width_mult_*/ and compress_report.* go (upstream: the same directory). One change from
# upstream: QAT also distils from the width-pruned FP32 model (--qat_distill_alpha 0.5; measured in
# docs/experiments.md, twelfth amendment); --qat_distill_alpha 0 gives upstream's QAT on the gold labels alone.
set -euo pipefail
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-output/BS64_LR5e-5_EPOCHS30}
OUTPUT=${OUTPUT:-$MODEL}
TRAIN=${TRAIN:-data/train.txt}
DEV=${DEV:-data/dev.txt}
DEVICE=${DEVICE:-cpu}
LR=${LR:-5e-5}
EPOCHS=${EPOCHS:-10}
trainer_args
"$PY" compress.py "${TRAINER_ARGS[@]}" \
    --strategy 'dynabert+qat+embeddings' \
    --qat_distill_alpha 0.5 \
    "$@"
