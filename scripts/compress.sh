#!/usr/bin/env bash
# Upstream README's compression command with --device cpu and variables for the paths; extra flags are
# appended (e.g. --width_mult_list 1/2 --max_steps 20). MODEL: the fine-tuned directory (run_train.py
# --do_train output); OUTPUT: where width_mult_*/ and compress_report.* go (upstream: the same directory).
set -euo pipefail
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-output/BS64_LR5e-5_EPOCHS30}
OUTPUT=${OUTPUT:-$MODEL}
TRAIN=${TRAIN:-data/train.txt}
DEV=${DEV:-data/dev.txt}
DEVICE=${DEVICE:-cpu}
LR=${LR:-5e-5}
EPOCHS=${EPOCHS:-10}
"$PY" run_train.py \
    --do_compress \
    --strategy 'dynabert+qat+embeddings' \
    --num_train_epochs "$EPOCHS" \
    --model_name_or_path "$MODEL" \
    --output_dir "$OUTPUT" \
    --max_seq_length 16 \
    --per_device_eval_batch_size 64 \
    --per_device_train_batch_size 64 \
    --learning_rate "$LR" \
    --train_path "$TRAIN" \
    --dev_path "$DEV" \
    --intent_label_path data/intent_label.txt \
    --slot_label_path data/slot_label.txt \
    --label_names 'intent_label' 'slot_label' \
    --weight_decay 0.01 \
    --warmup_ratio 0.1 \
    --input_dtype "int32" \
    --device "$DEVICE" \
    --logging_steps 100 \
    --save_steps 100 \
    --eval_steps 100 \
    --disable_tqdm True \
    --save_total_limit 1 \
    --metric_for_best_model eval_accuracy \
    "$@"
