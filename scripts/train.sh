#!/usr/bin/env bash
# Upstream README's training command (fine-tune + prune embeddings + export), with --device cpu,
# the data paths and the model as variables. Extra flags are appended: bash scripts/train.sh --max_steps 10
# MODEL: a PaddleNLP name (needs internet) or a local directory from scripts/init_offline_model.py.
set -euo pipefail
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-ernie-3.0-tiny-nano-v2-zh}
OUTPUT=${OUTPUT:-output/BS64_LR5e-5_EPOCHS30}
TRAIN=${TRAIN:-data/train.txt}
DEV=${DEV:-data/dev.txt}
DEVICE=${DEVICE:-cpu}
LR=${LR:-5e-5}
EPOCHS=${EPOCHS:-30}
mkdir -p "$OUTPUT"
"$PY" run_train.py \
    --device "$DEVICE" \
    --logging_steps 100 \
    --save_steps 100 \
    --eval_steps 100 \
    --model_name_or_path "$MODEL" \
    --num_train_epochs "$EPOCHS" \
    --per_device_eval_batch_size 64 \
    --per_device_train_batch_size 64 \
    --learning_rate "$LR" \
    --prune_embeddings \
    --max_vocab_size 6000 \
    --max_seq_length 16 \
    --output_dir "$OUTPUT" \
    --train_path "$TRAIN" \
    --dev_path "$DEV" \
    --intent_label_path data/intent_label.txt \
    --slot_label_path data/slot_label.txt \
    --label_names 'intent_label' 'slot_label' \
    --weight_decay 0.01 \
    --warmup_ratio 0.1 \
    --do_train \
    --do_eval \
    --do_export \
    --input_dtype "int32" \
    --disable_tqdm True \
    --overwrite_output_dir \
    --load_best_model_at_end True \
    --save_total_limit 1 \
    --metric_for_best_model eval_accuracy \
    "$@"
