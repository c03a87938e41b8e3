#!/usr/bin/env bash
# The main job on a fresh clone, set-up included: the project's best single-utterance recipe (recipe_single.sh:
# masked LM, CRF slot head, R-Drop, the last two epochs averaged, CRF decoding under constraints) on the shipped
# toy sample, from an offline ERNIE 3.0 Tiny built from it; then the exported model's dev report and its answers
# to data/sample/queries.txt. A toy model of 383 training queries: the recipe, not the accuracy, is the point.
# SIZE=pico|nano|... (default nano); OUTPUT=output/quickstart.
set -euo pipefail
bash "$(dirname "$0")/setup.sh"
source "$(dirname "$0")/common.sh"
SIZE=${SIZE:-nano}
OUTPUT=${OUTPUT:-output/quickstart}
PRETRAINED=$OUTPUT/pretrained/ernie-3.0-tiny-$SIZE-v2-zh
if [ ! -f "$PRETRAINED/model_state.pdparams" ]; then
  echo "== offline initialisation of ernie-3.0-tiny-$SIZE-v2-zh (no download)"
  "$PY" scripts/init_offline_model.py --name "ernie-3.0-tiny-$SIZE-v2-zh" \
      --corpus data/sample/train.txt data/sample/dev.txt --output_dir "$PRETRAINED" 2>&1 | tail -n 1
fi
echo "== masked LM, fine-tune (CRF, R-Drop), average, export -> $OUTPUT/model/averaged (log: $OUTPUT/train.log)"
# 30 epochs of 12 steps: the sample is small; queries of up to 30 tokens (the song titles in English are long)
MODEL=$PRETRAINED OUTPUT=$OUTPUT/model TRAIN=data/sample/train.txt DEV=data/sample/dev.txt MLM_EPOCHS=20 EPOCHS=30 \
  bash scripts/recipe_single.sh --per_device_train_batch_size 32 --max_seq_length 32 > "$OUTPUT/train.log" 2>&1 \
  || { tail -n 30 "$OUTPUT/train.log"; exit 1; }
echo "== the exported model on data/sample/dev.txt"
OUTPUT=$OUTPUT/model/averaged TEST=data/sample/dev.txt bash scripts/eval.sh 2>/dev/null
echo "== predictions (data/sample/queries.txt)"
OUTPUT=$OUTPUT/model/averaged TEST=data/sample/queries.txt DO_EVAL=0 bash scripts/eval.sh 2>/dev/null
