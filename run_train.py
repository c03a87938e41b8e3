"""Fine-tune JointErnie with PaddleNLP's Trainer, prune embeddings, export a static graph, compress.

Same flags as upstream's example (scripts/train.sh and scripts/compress.sh hold the full commands):
    python run_train.py --do_train --do_eval --do_export --prune_embeddings ...   (fine-tune + export)
    python run_train.py --do_compress --strategy 'dynabert+qat+embeddings' ...    (compress, as compress.py)
"""
import os
import sys

from slu import compression, data, export, training  # first: zlib work-around before paddle

import paddle
from paddlenlp.trainer import PdArgumentParser
from paddlenlp.utils.log import logger


def main(argv=None):
    parser = PdArgumentParser((training.ModelArguments, training.DataArguments, training.TrainingArguments))
    model_args, data_args, args = parser.parse_args_into_dataclasses(args=argv)
    errors = training.check_args(model_args, data_args, args)
    if args.do_compress:
        errors += compression.check_args(data_args, args)
    if errors:
        raise SystemExit("run_train.py: error: " + "; ".join(errors))
    paddle.set_device(args.device)
    paddle.seed(args.seed)
    setup = training.Setup(model_args, data_args, args)

    if args.do_compress:
        compression.run(setup, model_args, args)
        return

    trainer = training.make_trainer(setup, args, train=args.do_train,
                                    compute_metrics=training.make_compute_metrics(setup.labels, setup.slotless,
                                                                                    setup.model.crf))
    max_positions = setup.model.config.max_position_embeddings
    if args.do_train:
        if setup.last_checkpoint:
            logger.info(f"Resuming from {setup.last_checkpoint}")
        result = trainer.train(resume_from_checkpoint=setup.last_checkpoint)
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if args.do_eval:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    if not args.should_save:
        return  # other ranks of a distributed run: rank 0 exports
    if args.do_export:
        src = args.output_dir if args.do_train else model_args.model_name_or_path
        max_positions = export.export_static(src, os.path.join(args.output_dir, "infer_model"), args.input_dtype,
                                             setup.labels, model_args.dropout, bool(setup.settings.context_turns))
    if args.do_train or args.do_export:
        export.write_deploy_files(args.output_dir, tokenizer=setup.tokenizer, settings=setup.settings,
                                  labels=setup.labels, slotless=setup.slotless, input_dtype=args.input_dtype,
                                  max_position_embeddings=max_positions, intent_types=setup.intent_types,
                                  crf=setup.model.crf)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, data.DataError, data.UsageError) as e:
        raise SystemExit(f"run_train.py: error: {e}")
