#!/usr/bin/env bash
# Upstream README's training command (fine-tune + prune embeddings + export), with --device cpu and variables
# for the paths; the flags it shares with compress.sh are in common.sh (trainer_args). Extra flags are appended
# and win: bash scripts/train.sh --max_steps 10
# A run stopped part-way (kill, crash, power) resumes from its last complete checkpoint when the same command is
# run again; --overwrite_output_dir starts afresh (the earlier checkpoints are removed).
# MODEL: a PaddleNLP name (needs internet) or a local directory from scripts/init_offline_model.py.
# Data parallel: NPROC=2 (processes on this CPU), GPUS=0,1 (one per GPU), LAUNCH_ARGS for several machines
# (see common.sh, launcher). --per_device_train_batch_size is per process.
set -euo pipefail
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-ernie-3.0-tiny-nano-v2-zh}
OUTPUT=${OUTPUT:-output/BS64_LR5e-5_EPOCHS30}
TRAIN=${TRAIN:-data/train.txt}
DEV=${DEV:-data/dev.txt}
DEVICE=${DEVICE:-cpu}
LR=${LR:-5e-5}
EPOCHS=${EPOCHS:-30}
launcher
trainer_args
mkdir -p "$OUTPUT"
"${LAUNCH[@]}" run_train.py "${TRAINER_ARGS[@]}" \
    --do_train \
    --do_eval \
    --do_export \
    --prune_embeddings \
    --max_vocab_size 6000 \
    --max_seq_length 16 \
    --load_best_model_at_end True \
    "$@"
