#!/usr/bin/env bash
# The main job on a fresh clone, set-up included: build an offline ERNIE 3.0 Tiny directory from the
# shipped sample, fine-tune JointErnie on it (embedding pruning + export), evaluate the exported static
# model, and print example predictions. SIZE=pico|nano|... (default nano); OUTPUT=output/quickstart.
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
echo "== fine-tune + prune embeddings + export -> $OUTPUT/model (log: $OUTPUT/train.log)"
MODEL=$PRETRAINED OUTPUT=$OUTPUT/model TRAIN=data/sample/train.txt DEV=data/sample/dev.txt LR=1e-3 EPOCHS=30 \
  bash scripts/train.sh --per_device_train_batch_size 32 --evaluation_strategy epoch --save_strategy epoch \
  --logging_steps 50 > "$OUTPUT/train.log" 2>&1 || { tail -n 30 "$OUTPUT/train.log"; exit 1; }
grep -o "eval_accuracy: [0-9.]*, eval_intent_accuracy: [0-9.]*" "$OUTPUT/train.log" | tail -n 1 | sed 's/^/   dynamic graph, best checkpoint: /'
echo "== evaluate the exported static graph on data/sample/dev.txt"
OUTPUT=$OUTPUT/model TEST=data/sample/dev.txt bash scripts/eval.sh 2>/dev/null
echo "== predictions (data/sample/queries.txt)"
OUTPUT=$OUTPUT/model TEST=data/sample/queries.txt DO_EVAL=0 bash scripts/eval.sh 2>/dev/null
