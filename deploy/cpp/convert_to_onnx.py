"""Turn an exported directory's Paddle model into model.onnx next to it (paddle2onnx, in a subprocess:
paddle2onnx aborts the whole process on ops it lacks).

    python deploy/cpp/convert_to_onnx.py --model_dir output/nano [--model_prefix infer_model]
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from predictor import utils  # noqa: E402  (the project's utils, as the predictor imports it)


def convert(model_dir, model_prefix="infer_model", output="model.onnx", opset=13):
    prefix = os.path.join(model_dir, model_prefix)
    for ext in (".pdmodel", ".pdiparams"):
        if not os.path.isfile(prefix + ext):
            raise FileNotFoundError(f"model file not found: {prefix + ext}")
    if "dequantize_log" in utils.program_ops(prefix + ".pdmodel"):
        raise ValueError(f"{prefix}: INT8 embeddings (dequantize_log) have no ONNX conversion in paddle2onnx; "
                         "convert the int8 or pruned model instead")
    out = os.path.join(model_dir, output)
    exe = os.path.join(os.path.dirname(sys.executable), "paddle2onnx")
    p = subprocess.run([exe, "--model_dir", model_dir, "--model_filename", model_prefix + ".pdmodel",
                        "--params_filename", model_prefix + ".pdiparams", "--save_file", out,
                        "--opset_version", str(opset), "--enable_onnx_checker", "True"],
                       capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(out):
        raise RuntimeError(f"paddle2onnx failed on {prefix} ({p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--model_prefix", default="infer_model")
    ap.add_argument("--output", default="model.onnx")
    ap.add_argument("--opset_version", type=int, default=13)
    a = ap.parse_args()
    try:
        print(convert(a.model_dir, a.model_prefix, a.output, a.opset_version))
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise SystemExit(f"convert_to_onnx.py: error: {e}")


if __name__ == "__main__":
    main()
