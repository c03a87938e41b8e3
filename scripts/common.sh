# Sourced by the other scripts: repository root, venv python, and no model hub.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
export PPNLP_HOME="${PPNLP_HOME:-$ROOT/work/ppnlp_home}"   # PaddleNLP cache; nothing is downloaded into it
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONUNBUFFERED=1 GLOG_minloglevel=2 FLAGS_call_stack_level=1

# Paddle's CPU kernels run one thread per process unless OMP_NUM_THREADS says otherwise; two threads train nano
# about 1.5 times as fast on 2 cores (docs/environment.md). Training commands (train.sh, compress.sh, the recipes)
# give each of the NPROC processes an equal share of the cores. Only they: with OMP_NUM_THREADS above 1 Paddle
# prints a two-line warning at every start, which would bury run_eval.py's one-line errors.
training_threads() {
  local cores
  cores=$(nproc)
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( cores / ${NPROC:-1} > 1 ? cores / ${NPROC:-1} : 1 ))}"
}

# Upstream's fine-tuning/compression flags shared by train.sh and compress.sh (stated once, here). Call after
# MODEL, OUTPUT, TRAIN, DEV, DEVICE, LR and EPOCHS are set; the script adds its own flags, then the user's ("$@"),
# which win because the last occurrence of a flag counts.
trainer_args() {
  training_threads
  TRAINER_ARGS=(
    --device "$DEVICE"
    --model_name_or_path "$MODEL"
    --output_dir "$OUTPUT"
    --train_path "$TRAIN"
    --dev_path "$DEV"
    --num_train_epochs "$EPOCHS"
    --learning_rate "$LR"
    --per_device_train_batch_size 64
    --per_device_eval_batch_size 64
    --intent_label_path data/intent_label.txt
    --slot_label_path data/slot_label.txt
    --label_names intent_label slot_label
    --weight_decay 0.01
    --warmup_ratio 0.1
    --input_dtype int32
    --logging_steps 100
    --save_steps 100
    --eval_steps 100
    --disable_tqdm True
    --save_total_limit 1
    --metric_for_best_model eval_accuracy
  )
}

# How train.sh starts Python: one process, or Paddle's launcher for data parallel training. NPROC=N: N processes
# on this machine (CPU); GPUS=0,1: one process per GPU (DEVICE=gpu); LAUNCH_ARGS: more launcher flags, e.g.
# "--nnodes 2 --master 10.0.0.1:8090" for several machines. Worker logs go to $OUTPUT/launch_log.
launcher() {
  LAUNCH=("$PY")
  local extra=()
  read -r -a extra <<< "${LAUNCH_ARGS:-}"
  if [ -n "${GPUS:-}" ]; then
    DEVICE=gpu
    LAUNCH=("$PY" -m paddle.distributed.launch --gpus "$GPUS" --log_dir "$OUTPUT/launch_log" "${extra[@]}")
  elif [ "${NPROC:-1}" -gt 1 ] || [ ${#extra[@]} -gt 0 ]; then
    LAUNCH=("$PY" -m paddle.distributed.launch --nproc_per_node "${NPROC:-1}" --log_dir "$OUTPUT/launch_log" \
            "${extra[@]}")
  fi
}

# The measured best recipe (README, "Accuracy recipes"): train.sh for EPOCHS epochs keeping the last two epoch
# checkpoints, average them into $OUTPUT/averaged, export that with the run's slot decoding (constrained unless
# the arguments say otherwise) and evaluate it on DEV. Call after MODEL, OUTPUT, TRAIN, DEV are set; arguments are extra training flags (e.g. --context_turns 1).
# MLM_EPOCHS=N first pretrains the encoder with masked LM on TRAIN for N epochs (run_pretrain.py, into
# $OUTPUT/mlm; MLM_ARGS: more run_pretrain.py flags) and fine-tunes from it.
train_recipe() {
  training_threads
  local mlm_args=()
  read -r -a mlm_args <<< "${MLM_ARGS:-}"
  if [ "${MLM_EPOCHS:-0}" != 0 ]; then
    "$PY" run_pretrain.py --device "${DEVICE:-cpu}" --model_name_or_path "$MODEL" --train_path "$TRAIN" \
        --output_dir "$OUTPUT/mlm" --num_train_epochs "$MLM_EPOCHS" --learning_rate "${MLM_LR:-1e-3}" \
        --per_device_train_batch_size 256 --warmup_ratio 0.1 --weight_decay 0.01 --save_strategy epoch \
        --save_total_limit 1 --logging_steps 50 --disable_tqdm True --seed "${SEED:-42}" \
        "${mlm_args[@]}"
    MODEL="$OUTPUT/mlm"
  fi
  LR=${LR:-1e-3} EPOCHS=${EPOCHS:-4} bash "$ROOT/scripts/train.sh" --save_total_limit 3 \
      --evaluation_strategy epoch --save_strategy epoch --per_device_eval_batch_size 256 --logging_steps 50 \
      --seed "${SEED:-42}" --slot_decoding constrained "$@"
  local last_two
  last_two=$(ls -d "$OUTPUT"/checkpoint-* | sort -t- -k2 -n | tail -2)
  # shellcheck disable=SC2086  # two paths without spaces (the checkpoint names)
  "$PY" scripts/average_checkpoints.py --output_dir "$OUTPUT/averaged" $last_two
  "$PY" run_train.py --device "${DEVICE:-cpu}" --model_name_or_path "$OUTPUT/averaged" \
      --output_dir "$OUTPUT/averaged" --train_path "$TRAIN" --dev_path "$DEV" --do_export --input_dtype int32
  "$PY" run_eval.py --infer_prefix "$OUTPUT/averaged/infer_model" --test_path "$DEV" --do_eval \
      --per_device_eval_batch_size 256 --output_dir "$OUTPUT/averaged"
}
