"""Convert an exported Paddle program to ONNX with paddle2onnx, in a subprocess (paddle2onnx aborts the whole
process on ops it lacks); refused up front when the refusal table says so."""
import os
import subprocess
import sys

from slu import program
from slu.backends import refusal


def convert(model_dir, model_prefix="infer_model", output="model.onnx", opset=13):
    """<model_dir>/<output> from <model_dir>/<model_prefix>.pdmodel/.pdiparams; returns its path."""
    prefix = os.path.join(model_dir, model_prefix)
    for ext in (".pdmodel", ".pdiparams"):
        if not os.path.isfile(prefix + ext):
            raise FileNotFoundError(f"model file not found: {prefix + ext}")
    why = refusal("onnx_runtime", program.program_ops(prefix + ".pdmodel"))
    if why:
        raise ValueError(f"{prefix}: no ONNX conversion: {why}")
    program.check_params(prefix)
    out = os.path.join(model_dir, output)
    exe = os.path.join(os.path.dirname(sys.executable), "paddle2onnx")
    p = subprocess.run([exe, "--model_dir", model_dir, "--model_filename", model_prefix + ".pdmodel",
                        "--params_filename", model_prefix + ".pdiparams", "--save_file", out,
                        "--opset_version", str(opset), "--enable_onnx_checker", "True"],
                       capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(out):
        raise RuntimeError(f"paddle2onnx failed on {prefix} ({p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return out
