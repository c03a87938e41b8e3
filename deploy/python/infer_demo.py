"""Intent + slots for your queries with an exported model, on FastDeploy (Paddle Inference, ONNX Runtime),
Paddle Inference or Paddle Lite.

    python deploy/python/infer_demo.py --model_dir output/nano --backend paddle --text 来一首周华健的花心
    python deploy/python/infer_demo.py --model_dir output/nano_context --context 导航到古田 --text 取消
    python deploy/python/infer_demo.py --model_dir output/nano/width_mult_0.75 --model_prefix int8 \
        --backend onnx_runtime --input_file queries.txt

Output: one JSON line per query, as run_eval.py prints (same tokenizer files, same decoding code). Max length,
input dtype and label files come from the directory's deploy_config.json.
"""
import argparse
import json
import os
import sys

from slu import data, decoding, envs, lite  # first: zlib work-around before paddle
from slu.backends import BACKENDS
from slu.predictor import Predictor


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True, help="exported directory (model, vocab.txt, label files)")
    ap.add_argument("--model_prefix", default="infer_model", help="infer_model, pruned, int8 or quant_emb")
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--backend", default="paddle", choices=list(BACKENDS))
    ap.add_argument("--batch_size", type=int, default=1)
    ap.add_argument("--max_seq_length", dest="max_length", type=int, default=None, help="default: deploy_config.json's max_seq_length")
    ap.add_argument("--cpu_num_threads", type=int, default=1)
    ap.add_argument("--use_fast", action="store_true", help="tokenize with FastTokenizer")
    ap.add_argument("--lite_target", choices=["x86", "arm"], default="x86",
                    help="paddle_lite: arm writes <model_dir>/<model_prefix>.arm.nb for phones and exits")
    ap.add_argument("--text", action="append", default=[], help="a query (repeatable)")
    ap.add_argument("--input_file", help="queries, one per line (or a corpus file, whose sessions give the context)")
    ap.add_argument("--context", action="append", default=[],
                    help="an earlier turn of the dialogue for the --text queries (repeatable, oldest first); used by "
                         "a model trained with context, ignored otherwise")
    ap.add_argument("--slot_decoding", choices=decoding.SlotDecoder.MODES, default=None,
                    help="default: deploy_config.json's slot_decoding")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if argv is None:
        envs.reexec_for_backend(args.backend)  # FastDeploy and Paddle Lite: the legacy environment
    data.check_at_least_one(args, ("batch_size", "cpu_num_threads"))
    if args.backend == "paddle_lite" and args.lite_target == "arm":
        return print(lite.convert(os.path.join(args.model_dir, args.model_prefix), "arm"))
    queries = [(f"--text {k + 1}", t, args.context) for k, t in enumerate(args.text)]
    if args.input_file:
        from_file = [(f"{args.input_file}:{n}", q, c) for n, q, c in data.read_queries(args.input_file, True)]
        if not from_file:
            raise ValueError(f"{args.input_file}: no queries (the file is empty or has only blank lines)")
        queries += from_file
    if not queries:
        queries = [("example", "来一首周华健的花心", []), ("example", "打电话给18866668888", [])]
    for where, q, _ in queries:
        data.check_text(q, where)  # before any tokenizer: FastTokenizer aborts the process on invalid UTF-8
    for k, turn in enumerate(args.context):
        data.check_text(turn, f"--context {k + 1}")
    predictor = Predictor.from_dir(args.model_dir, model_prefix=args.model_prefix, backend=args.backend,
                                   device=args.device, cpu_num_threads=args.cpu_num_threads,
                                   max_length=args.max_length, batch_size=args.batch_size, use_fast=args.use_fast,
                                   slot_decoding=args.slot_decoding)
    results = predictor.predict([q for _, q, _ in queries], [w for w, _, _ in queries], [c for _, _, c in queries])
    for (where, q, _), r in zip(queries, results):
        if r.get("truncated"):
            print(f"warning: {where}: query longer than {predictor.max_length - 2} tokens, truncated", file=sys.stderr)
        print(json.dumps({"query": q, **r}, ensure_ascii=False))


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"infer_demo.py: error: {e}")
