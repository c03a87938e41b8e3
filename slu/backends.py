"""The runtimes a model can be served on, and the one table of what each refuses and why.

Every place that loads or converts a model (the predictor, Paddle Lite conversion, ONNX export, the benchmarks)
asks `refusal()` before the runtime or converter sees the program: those abort the whole process on ops they
lack instead of raising.
"""
BACKENDS = {
    "paddle_inference": "Paddle Inference through the paddle package (paddle.inference)",
    "paddle": "FastDeploy's Paddle Inference backend (QAT INT8 programs on CPU: paddle.inference, whose INT8 oneDNN "
              "path FastDeploy 1.0.7 cannot reach)",
    "onnx_runtime": "ONNX Runtime's Python API (the model converted by paddle2onnx; the INT8-embedding stage "
                    "quantized by ONNX Runtime from the pruned model, slu/onnx_export.py)",
    "openvino": "FastDeploy's OpenVINO backend (the program with its 0-D tensors given shape [1], slu/lite.py; the "
                "INT8-embedding stage: ONNX Runtime's INT8 model, as on onnx_runtime). OpenVINO 2023.0 computes in "
                "bfloat16 on CPUs with AVX512-BF16, and FastDeploy 1.0.7 cannot ask it for float32; a batch of one "
                "runs as two copies of the row (its CPU plugin was seen to fail on batch 1: \"Primitive descriptor "
                "was not found\")",
    "paddle_lite": "Paddle Lite 2.13rc0's own Python API on an x86 .nb converted next to the model",
}
QAT_OPS = {"quantize_linear", "dequantize_linear"}
INT8_EMBEDDING_OPS = {"dequantize_log"}

# QAT exported with onnx_format=False (not what PaddleNLP writes; measured like the onnx_format ops on Lite x86)
FAKE_QUANT_OPS = {"fake_quantize_dequantize_moving_average_abs_max", "fake_channel_wise_quantize_dequantize_abs_max"}
LITE_X86_INSTEAD = ("convert it for phones with --lite_target arm (every stage converts for arm), run the pruned or "
                    "fine-tuned FP32 model on paddle_lite, or this model on --backend paddle or onnx_runtime")
# backend -> [(ops it cannot run (any of them; None: every program), why, what to use instead)]
REFUSALS = {
    # paddle_lite: the x86 .nb this machine runs
    "paddle_lite": [(INT8_EMBEDDING_OPS, "Paddle Lite 2.13rc0 has no x86 kernel for dequantize_log (INT8 embeddings)",
                     LITE_X86_INSTEAD),
                    (QAT_OPS | FAKE_QUANT_OPS,
                     "Paddle Lite 2.13rc0's x86 .nb of a QAT program returns NaN or crashes (SIGSEGV), from run to "
                     "run (its x86 matmul kernel is float only; the nano int8 stage scored 31.38% dev accuracy "
                     "against 79.12% on Paddle Inference)",
                     LITE_X86_INSTEAD)],
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
