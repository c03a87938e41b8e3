#!/usr/bin/env bash
# Upstream README's static-graph evaluation command; tokenizer, labels and max length come from the exported
# directory's deploy_config.json. Without DO_EVAL=1 it prints predictions.
#   OUTPUT=output/nano TEST=data/dev.txt bash scripts/eval.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
OUTPUT=${OUTPUT:-output/BS64_LR5e-5_EPOCHS30}
INFER_PREFIX=${INFER_PREFIX:-$OUTPUT/infer_model}
TEST=${TEST:-data/dev.txt}
DEVICE=${DEVICE:-cpu}
EVAL_FLAG=(--do_eval); [ "${DO_EVAL:-1}" = 1 ] || EVAL_FLAG=()
"$PY" run_eval.py \
    --device "$DEVICE" \
    --infer_prefix "$INFER_PREFIX" \
    --output_dir "$OUTPUT" \
    --test_path "$TEST" \
    --per_device_eval_batch_size 512 \
    "${EVAL_FLAG[@]}" "$@"
