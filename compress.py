"""Compress a fine-tuned JointErnie: DynaBERT width pruning, QAT (INT8 matmul), INT8 embeddings.

The same as `run_train.py --do_compress` (upstream's command, scripts/compress.sh holds it in full):
    python compress.py --model_name_or_path output/nano --output_dir output/nano \\
        --train_path data/train.txt --dev_path data/dev.txt --strategy 'dynabert+qat+embeddings'
Writes <output_dir>/width_mult_<w>/ (pruned, int8 and quant_emb models, deploy files) and compress_report.*.
"""
import sys

from slu import compression, data, training  # first: zlib work-around before paddle

import paddle
from paddlenlp.trainer import PdArgumentParser


def main(argv=None):
    parser = PdArgumentParser((training.ModelArguments, training.DataArguments, training.TrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    model_args, data_args, args = parser.parse_args_into_dataclasses(args=["--do_compress", *argv])
    errors = training.check_args(model_args, data_args, args) + compression.check_args(data_args, args)
    if errors:
        raise SystemExit("compress.py: error: " + "; ".join(errors))
    paddle.set_device(args.device)
    paddle.seed(args.seed)
    compression.run(training.Setup(model_args, data_args, args), model_args, args)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, data.DataError, data.UsageError) as e:
        raise SystemExit(f"compress.py: error: {e}")
