"""Convert an exported Paddle program to ONNX (paddle2onnx, in a subprocess: it aborts the whole process on ops it
lacks). The INT8-embedding stage (`quant_emb`, PaddleSlim's log-quantized tables, `dequantize_log`) has no
paddle2onnx conversion; for ONNX Runtime it is made from the same directory's pruned FP32 model by ONNX Runtime's
own static quantization instead: INT8 MatMul weights, an 8-bit embedding table and INT8 activations with scales
calibrated on training queries (per tensor). Static, not dynamic: dynamic quantization takes each call's activation
scale from the whole batch, so a query's answer changed with its batch-mates (2 of 1000 dev queries changed label
between batch 1 and batch 32 on the nano model, confidences by up to 0.014); compression writes quant_emb.onnx."""
import os
import subprocess
import sys
import tempfile
from importlib import metadata

import numpy as np

from slu import envs, program
from slu.backends import INT8_EMBEDDING_OPS, QAT_OPS, refusal

PRUNED_PREFIX = "pruned"  # the FP32 stage the INT8-embedding ONNX model is quantized from
ORT_INT8_OP_TYPES = ("MatMul", "Gather")


def convert(model_dir, model_prefix="infer_model", output="model.onnx", opset=13, calibration_ids=None):
    """<model_dir>/<output> from <model_dir>/<model_prefix>.pdmodel/.pdiparams; returns its path. The INT8-embedding
    stage needs `calibration_ids` (token ids of training queries, [CLS]/[SEP] included)."""
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
        if not calibration_ids:
            raise ValueError(f"{prefix}: its ONNX model is ONNX Runtime's INT8 quantization of the pruned model, "
                             "calibrated on training queries: compression writes it (quant_emb.onnx); to make it "
                             "again, pass the queries (convert_to_onnx.py --calibration_file train.txt)")
        return quantized_from_pruned(model_dir, prefix, out, opset, calibration_ids)
    return paddle2onnx(model_dir, model_prefix, out, opset)


def cached(model_dir, model_prefix):
    """<model_prefix>.onnx next to the Paddle model, converted when missing or older than the program."""
    out = os.path.join(model_dir, model_prefix + ".onnx")
    source = os.path.join(model_dir, model_prefix + ".pdmodel")
    if not os.path.isfile(out) or (os.path.isfile(source) and os.path.getmtime(out) < os.path.getmtime(source)):
        convert(model_dir, model_prefix, model_prefix + ".onnx")  # quant_emb: compression has written it
    return out


def paddle2onnx_exe(pdmodel):
    """This environment's paddle2onnx; for a QAT program the legacy environment's 1.2.11: paddle2onnx 2.1.0 aborts
    on PaddleSlim's quantize_linear ops ("Paddle2ONNX: Only support e4m3 or e5m2 now", then SIGABRT)."""
    here = os.path.join(os.path.dirname(sys.executable), "paddle2onnx")
    if int(metadata.version("paddle2onnx").split(".")[0]) < 2 or not program.program_ops(pdmodel) & QAT_OPS:
        return here
    return os.path.join(os.path.dirname(envs.legacy_python()), "paddle2onnx")


def paddle2onnx(model_dir, model_prefix, out, opset):
    exe = paddle2onnx_exe(os.path.join(model_dir, model_prefix + ".pdmodel"))
    p = subprocess.run([exe, "--model_dir", model_dir, "--model_filename", model_prefix + ".pdmodel",
                        "--params_filename", model_prefix + ".pdiparams", "--save_file", out,
                        "--opset_version", str(opset), "--enable_onnx_checker", "True"],
                       capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(out):
        raise RuntimeError(f"paddle2onnx failed on {os.path.join(model_dir, model_prefix)} ({p.returncode}):\n"
                           f"{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return out


def quantized_from_pruned(model_dir, prefix, out, opset, calibration_ids):
    pruned = os.path.join(model_dir, PRUNED_PREFIX)
    if not os.path.isfile(pruned + ".pdmodel"):
        raise ValueError(f"{prefix}: its ONNX model is quantized from the pruned FP32 model of the same directory, "
                         f"and there is none ({pruned}.pdmodel)")
    program.check_params(pruned)
    dtype = program.model_input_dtype(pruned + ".pdmodel")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = paddle2onnx(model_dir, PRUNED_PREFIX, os.path.join(tmp, "fp32.onnx"), opset)
        quantize_static(fp32, out, tmp, calibration_ids, dtype)
    return out


def quantize_static(fp32_onnx, out, tmp, calibration_ids, dtype):
    """ONNX Runtime's static INT8 quantization of MatMul and Gather, per tensor, activation scales calibrated by
    running the model on `calibration_ids` (one query per call)."""
    import onnxruntime  # the ONNX side's heavy imports only where ONNX is made
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # paddle2onnx writes weights as Constant nodes, which the quantizer silently leaves alone; the
    # pre-processing turns them into initializers
    pre = os.path.join(tmp, "pre.onnx")
    quant_pre_process(fp32_onnx, pre, skip_symbolic_shape=True)
    names = [i.name for i in onnxruntime.InferenceSession(pre, providers=["CPUExecutionProvider"]).get_inputs()]

    def feed(item):  # item: the ids of one query, or (ids, token type ids) for a context model
        arrays = dict(zip(("input_ids", "token_type_ids"), item if isinstance(item, tuple) else (item,)))
        return {n: np.array([arrays[n]], dtype=dtype) for n in names}  # by name: paddle2onnx 2.x reorders them

    class Queries(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([feed(item) for item in calibration_ids])

        def get_next(self):
            return next(self.feeds, None)

    ort_quantize_static(pre, out, Queries(), quant_format=QuantFormat.QOperator,
                        op_types_to_quantize=list(ORT_INT8_OP_TYPES), per_channel=False,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
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
