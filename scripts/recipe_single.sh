#!/usr/bin/env bash
# The best single-utterance recipe measured from random initialisation (README, "Accuracy recipes"): masked-LM
# pretraining of the encoder on TRAIN's queries (MLM_EPOCHS, default 20; 0 skips it), then 4 epochs at lr 1e-3
# with a CRF slot head and R-Drop (weight 1.0), the last two epochs averaged, CRF (Viterbi) slot decoding under
# the intent/BIO/word constraints. Extra flags go to the fine-tuning.
#   MODEL=work/pretrained/ernie-3.0-tiny-nano-v2-zh TRAIN=work/nlpcc/train.txt DEV=work/nlpcc/dev.txt \
#     OUTPUT=output/nano_recipe bash scripts/recipe_single.sh
# The model to use is $OUTPUT/averaged (exported; deploy it like any run_train.py output).
set -euo pipefail
source "$(dirname "$0")/common.sh"
MODEL=${MODEL:-ernie-3.0-tiny-nano-v2-zh}
OUTPUT=${OUTPUT:-output/nano_recipe}
TRAIN=${TRAIN:-data/train.txt}
DEV=${DEV:-data/dev.txt}
MLM_EPOCHS=${MLM_EPOCHS:-20}
export MODEL OUTPUT TRAIN DEV MLM_EPOCHS
train_recipe --use_crf --slot_decoding crf --rdrop_alpha 1.0 "$@"
