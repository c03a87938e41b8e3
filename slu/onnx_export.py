"""Convert an exported Paddle program to ONNX (paddle2onnx, in a subprocess: it aborts the whole process on ops it
lacks). The INT8-embedding stage (`quant_emb`, PaddleSlim's log-quantized tables, `dequantize_log`) has no
paddle2onnx conversion; for ONNX Runtime it is made from the same directory's pruned FP32 model by ONNX Runtime's
own quantization instead: INT8 MatMul weights and INT8 embedding tables (per tensor, activations quantized
dynamically)."""
import os
import subprocess
import sys
import tempfile

from slu import program
from slu.backends import INT8_EMBEDDING_OPS, refusal

PRUNED_PREFIX = "pruned"  # the FP32 stage the INT8-embedding ONNX model is quantized from
ORT_INT8_OP_TYPES = ("MatMul", "Gather")


def convert(model_dir, model_prefix="infer_model", output="model.onnx", opset=13):
    """<model_dir>/<output> from <model_dir>/<model_prefix>.pdmodel/.pdiparams; returns its path."""
    prefix = os.path.join(model_dir, model_prefix)
    for ext in (".pdmodel", ".pdiparams"):
        if not os.path.isfile(prefix + ext):
            raise FileNotFoundError(f"model file not found: {prefix + ext}")
    ops = program.program_ops(prefix + ".pdmodel")
    why = refusal("onnx_runtime", ops)
    if why:
        raise ValueError(f"{prefix}: no ONNX conversion: {why}")
    program.check_params(prefix)
    out = os.path.join(model_dir, output)
    if ops & INT8_EMBEDDING_OPS:
        return quantized_from_pruned(model_dir, prefix, out, opset)
    return paddle2onnx(model_dir, model_prefix, out, opset)


def cached(model_dir, model_prefix):
    """<model_prefix>.onnx next to the Paddle model, converted when missing or older than the program."""
    out = os.path.join(model_dir, model_prefix + ".onnx")
    source = os.path.join(model_dir, model_prefix + ".pdmodel")
    if not os.path.isfile(out) or (os.path.isfile(source) and os.path.getmtime(out) < os.path.getmtime(source)):
        convert(model_dir, model_prefix, model_prefix + ".onnx")
    return out


def paddle2onnx(model_dir, model_prefix, out, opset):
    exe = os.path.join(os.path.dirname(sys.executable), "paddle2onnx")
    p = subprocess.run([exe, "--model_dir", model_dir, "--model_filename", model_prefix + ".pdmodel",
                        "--params_filename", model_prefix + ".pdiparams", "--save_file", out,
                        "--opset_version", str(opset), "--enable_onnx_checker", "True"],
                       capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(out):
        raise RuntimeError(f"paddle2onnx failed on {os.path.join(model_dir, model_prefix)} ({p.returncode}):\n"
                           f"{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return out


def quantized_from_pruned(model_dir, prefix, out, opset):
    pruned = os.path.join(model_dir, PRUNED_PREFIX)
    if not os.path.isfile(pruned + ".pdmodel"):
        raise ValueError(f"{prefix}: its ONNX model is quantized from the pruned FP32 model of the same directory, "
                         f"and there is none ({pruned}.pdmodel)")
    program.check_params(pruned)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = paddle2onnx(model_dir, PRUNED_PREFIX, os.path.join(tmp, "fp32.onnx"), opset)
        quantize_dynamic(fp32, out, tmp)
    return out


def quantize_dynamic(fp32_onnx, out, tmp):
    """ONNX Runtime's dynamic INT8 quantization of MatMul weights and Gather tables, per tensor."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # paddle2onnx writes weights as Constant nodes, which quantize_dynamic silently leaves alone; the
    # pre-processing turns them into initializers
    pre = os.path.join(tmp, "pre.onnx")
    quant_pre_process(fp32_onnx, pre, skip_symbolic_shape=True)
    ort_quantize_dynamic(pre, out, op_types_to_quantize=list(ORT_INT8_OP_TYPES), per_channel=False,
                         weight_type=QuantType.QInt8)
    keep_used_opsets(out)


def keep_used_opsets(path):
    """Drop the opset imports no node uses: the pre-processing stamps every domain ONNX Runtime 1.19 knows (e.g.
    ai.onnx.ml 5), which the ONNX Runtime inside FastDeploy 1.0.7 refuses to load."""
    import onnx

    model = onnx.load(path)
    used = {n.domain for n in model.graph.node} | {""}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.save(model, path)
