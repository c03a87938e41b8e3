"""SLU predictor over an exported directory: tokenizer + FastDeploy runtime + the project's decoding.

Used by infer_demo.py (and the server). Pre- and post-processing come from the project's utils.py,
the same code as run_eval.py.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
import utils  # noqa: E402  (zlib work-around before paddle)

BACKENDS = ("paddle", "onnx_runtime", "openvino", "paddle_lite")




def refusal(backend, ops):
    """Why `backend` cannot run a program with these ops (None when it can), and what to use instead."""
    if backend == "openvino":
        return ("FastDeploy 1.0.7's OpenVINO backend fails on the 0-D fill_constant ops Paddle >= 2.5 writes "
                "for ERNIE's attention mask; use --backend paddle or onnx_runtime")
    if backend == "paddle_lite" and ops & {"quantize_linear", "dequantize_linear", "dequantize_log"}:
        return ("Paddle Lite 2.10 has no kernels for QAT's quantize_linear/dequantize_linear (onnx_format) or "
                "dequantize_log; run the pruned or fine-tuned FP32 model on paddle_lite, or this model on "
                "--backend paddle")
    if backend == "onnx_runtime" and "dequantize_log" in ops:
        return ("paddle2onnx has no dequantize_log (INT8 embeddings, quant_emb): it would abort the process; "
                "use --backend paddle for this model, or the int8 model on onnx_runtime")
    return None


class PythonTokenizer:
    """PaddleNLP's ErnieTokenizer from the exported directory (what run_eval.py uses)."""

    def __init__(self, model_dir):
        from paddlenlp.transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.pad_token_id = self.tok.pad_token_id

    def __call__(self, texts, max_length):
        return utils.encode_queries(self.tok, texts, max_length)


class FastTokenizer:
    """FastTokenizer's ErnieFastTokenizer built from the exported vocab.txt."""

    def __init__(self, model_dir):
        from fast_tokenizer import ErnieFastTokenizer
        from fast_tokenizer.models import WordPiece

        vocab_path = os.path.join(model_dir, "vocab.txt")
        if not os.path.isfile(vocab_path):
            raise FileNotFoundError(f"model file not found: {vocab_path}")
        vocab = WordPiece.read_file(vocab_path)
        self.pad_token_id = vocab["[PAD]"]
        self.tok = ErnieFastTokenizer(vocab)
        self.tok.disable_padding()  # it pads a batch to its longest item by default; batches are padded later

    def __call__(self, texts, max_length):
        self.tok.disable_truncation()
        full = [len(e.ids) for e in self.tok.encode_batch(list(texts))]
        self.tok.enable_truncation(max_length)
        encs = self.tok.encode_batch(list(texts))
        ids = [list(e.ids) for e in encs]
        offsets = [[tuple(o) for o in e.offsets] for e in encs]
        return ids, offsets, [n > max_length for n in full]


class SLUPredictor:
    def __init__(self, model_dir, model_prefix="infer_model", backend="paddle", device="cpu", cpu_num_threads=1,
                 max_length=16, batch_size=32, use_fast=False):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        prefix = os.path.join(model_dir, model_prefix)
        for ext in (".pdmodel", ".pdiparams"):
            if not os.path.isfile(prefix + ext):
                raise FileNotFoundError(f"model file not found: {prefix + ext}")
        ops = utils.program_ops(prefix + ".pdmodel")
        why = refusal(backend, ops)
        if why:
            raise ValueError(f"{prefix} on {backend}: {why}")
        self.labels = utils.LabelSet.from_dir(model_dir)
        self.tokenizer = FastTokenizer(model_dir) if use_fast else PythonTokenizer(model_dir)
        self.max_length, self.batch_size = max_length, batch_size
        self.input_dtype = utils.model_input_dtype(prefix + ".pdmodel")

        if backend == "paddle_lite":  # Paddle Lite's own Python API on an x86 .nb converted next to the model
            import lite

            self.runtime, self.input_name = lite.LiteRuntime(lite.convert(prefix, "x86")), None
            return
        import fastdeploy as fd

        option = fd.RuntimeOption()
        option.set_model_path(prefix + ".pdmodel", prefix + ".pdiparams")
        if device == "gpu":
            option.use_gpu(0)
        else:
            option.use_cpu()
            option.set_cpu_thread_num(cpu_num_threads)
        if backend == "paddle":
            option.use_paddle_infer_backend()
            # MKLDNN gives wrong outputs here: for the QAT int8 program (ENVIRONMENT.md), and for FP32 programs
            # once batch shapes change between calls (dev accuracy 0 after batch-1 calls, measured): off.
            option.paddle_infer_option.enable_mkldnn = False
        elif backend == "onnx_runtime":
            option.use_ort_backend()
        self.runtime = fd.Runtime(option)
        self.input_name = self.runtime.get_input_info(0).name

    def forward(self, texts):
        """Token ids, offsets, truncation flags and the runtime's (intent logits, slot logits) for one batch."""
        ids, offsets, truncated = self.tokenizer(texts, self.max_length)
        intent_logits, slot_logits = self.run(utils.pad_batch(ids, self.tokenizer.pad_token_id, self.input_dtype))
        return ids, offsets, truncated, intent_logits, slot_logits

    def run(self, batch):
        """The runtime alone on a padded [B, T] id array: (intent logits, slot logits)."""
        if self.input_name is None:
            return self.runtime(batch)
        return tuple(self.runtime.infer({self.input_name: batch})[:2])

    def predict(self, texts):
        """[{'intent', 'confidence', 'slot': [{'slot', 'entity', 'pos'}], 'truncated'?}] for each text."""
        out = []
        for s in range(0, len(texts), self.batch_size):
            chunk = [utils.check_query(t, f"text {s + k}") for k, t in enumerate(texts[s:s + self.batch_size])]
            _, offsets, truncated, intent_logits, slot_logits = self.forward(chunk)
            for r, t in zip(utils.postprocess(chunk, offsets, intent_logits, slot_logits, self.labels), truncated):
                if t:
                    r["truncated"] = True
                out.append(r)
        return out

    def evaluate(self, examples, slotless):
        """Sentence and intent accuracy on corpus examples: the metric of training and run_eval.py."""
        def forward(texts):
            ids, offsets, _, intent_logits, slot_logits = self.forward(texts)
            return ids, offsets, intent_logits, slot_logits

        return utils.evaluate_examples(examples, self.labels, slotless, forward, self.batch_size)
