#!/usr/bin/env bash
# Upstream README's static-graph evaluation command. Without DO_EVAL=1 it prints predictions.
#   OUTPUT=output/nano TEST=data/dev.txt bash scripts/eval.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUTPUT=${OUTPUT:-output/BS64_LR5e-5_EPOCHS30}
MODEL_DIR=${MODEL_DIR:-$OUTPUT}
INFER_PREFIX=${INFER_PREFIX:-$OUTPUT/infer_model}
TEST=${TEST:-data/dev.txt}
DEVICE=${DEVICE:-cpu}
EVAL_FLAG=(--do_eval); [ "${DO_EVAL:-1}" = 1 ] || EVAL_FLAG=()
"$PY" run_eval.py \
    --device "$DEVICE" \
    --model_name_or_path "$MODEL_DIR" \
    --infer_prefix "$INFER_PREFIX" \
    --output_dir "$OUTPUT" \
    --test_path "$TEST" \
    --intent_label_path data/intent_label.txt \
    --slot_label_path data/slot_label.txt \
    --max_seq_length 16 \
    --per_device_eval_batch_size 512 \
    "${EVAL_FLAG[@]}" "$@"
