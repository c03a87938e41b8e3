"""The runtimes a model can be served on, and the one table of what each refuses and why.

Every place that loads or converts a model (the predictor, Paddle Lite conversion, ONNX export, the benchmarks)
asks `refusal()` before the runtime or converter sees the program: those abort the whole process on ops they
lack instead of raising.
"""
BACKENDS = {
    "paddle_inference": "Paddle Inference through the paddle package (paddle.inference)",
    "paddle": "FastDeploy's Paddle Inference backend",
    "onnx_runtime": "FastDeploy's ONNX Runtime backend (the model converted by paddle2onnx; the INT8-embedding stage "
                    "quantized by ONNX Runtime from the pruned model, slu/onnx_export.py)",
    "openvino": "FastDeploy's OpenVINO backend",
    "paddle_lite": "Paddle Lite's own Python API on an x86 .nb converted next to the model",
}
QAT_OPS = {"quantize_linear", "dequantize_linear"}
INT8_EMBEDDING_OPS = {"dequantize_log"}

# backend -> [(ops it cannot run (any of them; None: every program), why, what to use instead)]
REFUSALS = {
    "openvino": [(None, "FastDeploy 1.0.7's OpenVINO backend fails on the 0-D fill_constant ops Paddle >= 2.5 writes "
                        "for ERNIE's attention mask", "use --backend paddle or onnx_runtime")],
    "paddle_lite": [(QAT_OPS | INT8_EMBEDDING_OPS,
                     "Paddle Lite 2.10 has no kernels for QAT's quantize_linear/dequantize_linear (onnx_format) or "
                     "dequantize_log", "run the pruned or fine-tuned FP32 model on paddle_lite, or this model on "
                                       "--backend paddle")],
}


def check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def refusal(backend, ops):
    """Why `backend` cannot run a program with these ops, and what to use instead; None when it can."""
    check_backend(backend)
    for refused_ops, why, instead in REFUSALS.get(backend, []):
        if refused_ops is None or ops & refused_ops:
            return f"{why}; {instead}"
    return None
