"""Turn an exported directory's Paddle model into an ONNX file next to it, for the C++ demo.

    python deploy/cpp/convert_to_onnx.py --model_dir output/nano [--model_prefix infer_model]
    python deploy/cpp/convert_to_onnx.py --model_dir output/nano/width_mult_0.75 --model_prefix quant_emb \
        --output quant_emb.onnx --calibration_file data/train.txt

The INT8-embedding stage (quant_emb) is ONNX Runtime's INT8 quantization of the pruned model, calibrated on
training queries (compression writes it already; --calibration_file makes it again).
"""
import argparse
import random

from slu import data, manifest
from slu.onnx_export import convert


def calibration_ids(model_dir, path, count, seed=42):
    """Token ids of a seeded sample of the queries in `path` (a corpus file or one query per line); for a model
    with dialogue context, (ids, token type ids) with the context a corpus file's sessions give."""
    from slu.predictor import PythonTokenizer

    queries = data.read_queries(path, with_context=True)
    sample = random.Random(seed).sample(queries, min(count, len(queries)))
    config, tokenize = manifest.read(model_dir), PythonTokenizer.from_dir(model_dir)
    ids, offsets, _ = tokenize([q for _, q, _ in sample], config["max_seq_length"])
    ids, types, _ = data.add_context(tokenize, ids, offsets, [c for _, _, c in sample], config["context_turns"],
                                     config["max_context_length"])
    return list(zip(ids, types)) if config["context_turns"] else ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--model_prefix", default="infer_model")
    ap.add_argument("--output", default="model.onnx")
    ap.add_argument("--opset_version", type=int, default=13)
    ap.add_argument("--calibration_file", help="quant_emb: training queries to calibrate the INT8 activations")
    ap.add_argument("--calibration_queries", type=int, default=512)
    a = ap.parse_args()
    try:
        ids = calibration_ids(a.model_dir, a.calibration_file, a.calibration_queries) if a.calibration_file else None
        print(convert(a.model_dir, a.model_prefix, a.output, a.opset_version, ids))
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise SystemExit(f"convert_to_onnx.py: error: {e}")


if __name__ == "__main__":
    main()
