"""In-domain masked-LM pretraining of the encoder on the training queries (slu/pretraining.py), before run_train.py:

    python run_pretrain.py --model_name_or_path pretrained/ernie-3.0-tiny-nano-v2-zh --train_path train.txt \
        --output_dir output/mlm --num_train_epochs 20 --learning_rate 1e-3 --per_device_train_batch_size 256
    python run_train.py --model_name_or_path output/mlm ...     (fine-tune from the pretrained encoder)

scripts/recipe_single.sh runs both when MLM_EPOCHS is set.
"""
import os
import sys

from slu import data, pretraining, training  # first: zlib work-around before paddle

import paddle
from paddlenlp.trainer import PdArgumentParser, TrainingArguments
from paddlenlp.transformers import AutoTokenizer
from paddlenlp.utils.log import logger


def main(argv=None):
    parser = PdArgumentParser((pretraining.PretrainArguments, TrainingArguments))
    pre_args, args = parser.parse_args_into_dataclasses(args=argv)
    errors = pretraining.check_args(pre_args) + training.check_paths(pre_args, args)
    errors += training.check_device(args.device)
    for p in (pre_args.train_path, pre_args.intent_label_path, pre_args.slot_label_path):
        if p and not os.path.isfile(p):
            errors.append(f"file not found: {p}")
    if errors:
        raise SystemExit("run_pretrain.py: error: " + "; ".join(errors))
    paddle.set_device(args.device)
    paddle.seed(args.seed)
    training.log_cpu_threads(args.device)

    labels = data.LabelSet.from_files(pre_args.intent_label_path, pre_args.slot_label_path)
    examples = data.read_examples(pre_args.train_path, labels, pre_args.skip_malformed)
    if not examples:
        raise data.UsageError(f"{pre_args.train_path}: no examples (the file is empty or has only blank lines)")
    tokenizer = AutoTokenizer.from_pretrained(pre_args.model_name_or_path)
    if tokenizer.mask_token_id is None:
        raise data.UsageError(f"{pre_args.model_name_or_path}: the vocabulary has no [MASK] token")
    with paddle.utils.unique_name.guard():  # parameter names match on resume (see training.Setup)
        model = pretraining.ErnieMaskedLM.from_pretrained(pre_args.model_name_or_path)
    context_length = (training.CONTEXT_TOKENS_PER_TURN * pre_args.context_turns if pre_args.max_context_length is None
                      else pre_args.max_context_length) if pre_args.context_turns else 0
    if pre_args.max_seq_length + context_length > model.config.max_position_embeddings:
        raise data.UsageError(f"--max_seq_length {pre_args.max_seq_length} + context {context_length} exceed the "
                              f"{model.config.max_position_embeddings} position embeddings")
    data.attach_context(examples, pre_args.context_turns)
    encoded = training.encode_examples(examples, tokenizer, labels, pre_args.max_seq_length,
                                       pre_args.context_turns, context_length)
    dataset = pretraining.MaskingDataset(encoded, labels, tokenizer, pre_args.mask_prob,
                                         pre_args.mask_unit == "slot", args.seed)
    logger.info(f"masked-LM pretraining on {len(dataset)} queries of {pre_args.train_path}; mask_prob "
                f"{pre_args.mask_prob}, units: {pre_args.mask_unit}; context turns: {pre_args.context_turns}")
    trainer = training.JointTrainer(model=model, args=args, train_dataset=dataset, tokenizer=tokenizer,
                                    data_collator=pretraining.MaskingCollator(tokenizer.pad_token_id))
    last = None
    if os.path.isdir(args.output_dir) and not args.overwrite_output_dir:
        last = training.last_complete_checkpoint(args.output_dir)
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint or last)
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, data.DataError, data.UsageError) as e:
        raise SystemExit(f"run_pretrain.py: error: {e}")
