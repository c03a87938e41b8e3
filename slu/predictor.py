"""The one SLU predictor: tokenizer + runtime + the project's decoding, over an exported directory.

    p = Predictor.from_dir("output/nano", backend="onnx_runtime", use_fast=True)
    p.predict(["来一首周华健的花心"])  # [{'intent': 'music.play', 'confidence': ..., 'slot': [...]}]

run_eval.py, the compression report, infer_demo.py, the server and the benchmarks all use it. Runtimes:
Paddle Inference (paddle.inference), FastDeploy (Paddle Inference, ONNX Runtime, OpenVINO) and Paddle Lite; what
each refuses is in slu/backends.py. Both Paddle Inference runtimes run oneDNN (MKLDNN) on CPU; FastDeploy's Paddle
backend cannot run QAT programs right with it, so backend "paddle" hands those to paddle.inference. One process
must not hold a paddle.inference predictor and a FastDeploy Paddle-backend runtime at once (whichever is created
second crashes).
"""
import contextlib
import os
import sys

import numpy as np

from slu import data, decoding, lite, manifest, metrics, onnx_export, openvino, program
from slu.backends import INT8_EMBEDDING_OPS, QAT_OPS, check_backend, refusal
from slu.tokenizer import FastTokenizer


# ------------------------------------------------------------------------------------------------ tokenizers
class PythonTokenizer:
    """PaddleNLP's ErnieTokenizer (what training uses)."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
        self.pad_token_id = tokenizer.pad_token_id

    @classmethod
    def from_dir(cls, directory):
        # paddlenlp (and with it paddle) only where its tokenizer is used: --use_fast deployments run without them
        from paddlenlp.transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(directory))

    def __call__(self, texts, max_length):
        return data.encode_queries(self.tok, texts, max_length)


def fast_tokenizer_from_dir(directory, config=None):
    """The deployment tokenizer (slu/tokenizer.py: PaddleNLP's tokenization without PaddleNLP, FastTokenizer's
    WordPiece) over the vocabulary an exported directory's deploy_config.json (`config`, when already read) names."""
    config = config or manifest.read(directory)
    return FastTokenizer(os.path.join(directory, config["vocab_file"]), config["do_lower_case"])


# ------------------------------------------------------------------------------------------------ runtimes
# oneDNN (MKLDNN) primitives are made per input shape. 0: keep every shape (at most batch sizes x max length of
# them); N > 0: Paddle's cache-clearing mode, N shapes (Paddle's default is 10). Measured on the nano model, 1 thread:
# 10 re-creates primitives at batch 1 (queries span 14 lengths): INT8 5.25 against 2.24 ms per query with 0; over
# 209 shapes (random batch 1-64, length 3-16) 0 was the fastest and held no more memory than 10, 16, 32 or 64
# (64: +1.7 GiB on FP32). Outputs were the same with 0, 1 and 10 (docs/environment.md#mkldnn-onednn-on-cpu).
MKLDNN_CACHE_CAPACITY = 64


class PaddleInferenceRuntime:
    """paddle.inference over <prefix>.pdmodel/.pdiparams: ids [B, T] -> (intent logits, slot logits).

    On CPU it runs oneDNN (MKLDNN) kernels, and a program holding QAT quantize/dequantize ops (the `int8` and
    `quant_emb` stages) runs on Paddle Inference's INT8 oneDNN path (`enable_mkldnn_int8`): measured right on
    every stage and call sequence tried, and faster (docs/environment.md#mkldnn-onednn-on-cpu). `mkldnn=False`
    runs Paddle's plain CPU kernels instead (paddle 2.6's Config switches MKLDNN on unless told otherwise)."""

    def __init__(self, prefix, device="cpu", cpu_num_threads=1, mkldnn=True):
        import paddle.inference as paddle_infer  # each runtime's library only when that runtime is chosen

        self.program_file = pir_or_pdmodel(prefix, paddle_infer)
        config = paddle_infer.Config(self.program_file, prefix + ".pdiparams")
        if device == "gpu":
            config.enable_use_gpu(100, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_num_threads)
            if mkldnn:
                config.enable_mkldnn()
                config.set_mkldnn_cache_capacity(MKLDNN_CACHE_CAPACITY)
                if program.program_ops(self.program_file) & QAT_OPS:
                    config.enable_mkldnn_int8()
            else:
                config.disable_mkldnn()
        config.disable_glog_info()
        self.mkldnn, self.mkldnn_int8 = config.mkldnn_enabled(), config.mkldnn_int8_enabled()
        self.predictor = paddle_infer.create_predictor(config)
        self.inputs = [self.predictor.get_input_handle(n) for n in self.predictor.get_input_names()]
        self.outputs = [self.predictor.get_output_handle(n) for n in self.predictor.get_output_names()]

    def __call__(self, ids, token_type_ids=None):
        for handle, array in zip(self.inputs, (ids, token_type_ids)):
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(array)
        self.predictor.run()
        return [o.copy_to_cpu() for o in self.outputs]


def pir_or_pdmodel(prefix, paddle_infer):
    """The program Paddle Inference runs: on Paddle 3 its own PIR <prefix>.json when the export wrote one, else
    <prefix>.pdmodel (which Paddle 3 translates to PIR as it loads; the compressed stages are .pdmodel only)."""
    version = sys.modules["paddle"].__version__  # imported with paddle.inference
    if int(version.split(".")[0]) >= 3 and os.path.isfile(prefix + ".json"):
        return prefix + ".json"
    path = program.program_file(prefix)
    if program.is_pir(path):
        raise ValueError(f"{path}: a PIR program needs Paddle 3's Inference; this is Paddle {version}")
    return path


class FastDeployRuntime:
    """FastDeploy's Runtime with its Paddle Inference, ONNX Runtime or OpenVINO backend."""

    def __init__(self, prefix, backend, device="cpu", cpu_num_threads=1, onnx_path=None, mkldnn=True):
        import fastdeploy as fd

        option = fd.RuntimeOption()
        if onnx_path:
            option.set_model_path(onnx_path, "", fd.ModelFormat.ONNX)
        else:
            option.set_model_path(prefix + ".pdmodel", prefix + ".pdiparams")
        if device == "gpu":
            option.use_gpu(0)
        else:
            option.use_cpu()
            option.set_cpu_thread_num(cpu_num_threads)
        if backend == "paddle":
            option.use_paddle_infer_backend()
            # MKLDNN (oneDNN): right for FP32 programs under every call sequence tried (batch 1 then 64, cycling
            # batch sizes, random sizes, changing lengths, two runtimes in one process) and faster. QAT programs
            # answer wrong with it (13-31% dev accuracy against 79%, from the first call; FastDeploy turns on its
            # bundled Paddle Inference's INT8 oneDNN path for quantized models): off for them, and create_runtime
            # sends them to paddle.inference instead.
            quantized = bool(program.program_ops(prefix + ".pdmodel") & QAT_OPS)
            option.paddle_infer_option.enable_mkldnn = mkldnn and not quantized
            option.paddle_infer_option.mkldnn_cache_size = MKLDNN_CACHE_CAPACITY
        elif backend == "onnx_runtime":
            option.use_ort_backend()
        elif backend == "openvino":
            option.use_openvino_backend()
        self.mkldnn = backend == "paddle" and device == "cpu" and option.paddle_infer_option.enable_mkldnn
        self.min_batch = 2 if backend == "openvino" else 1
        with stdout_to_stderr():  # FastDeploy prints "[INFO] ... Runtime initialized" on stdout
            self.runtime = fd.Runtime(option)
        self.input_names = [self.runtime.get_input_info(k).name for k in range(self.runtime.num_inputs())]

    def __call__(self, ids, token_type_ids=None):
        inputs = [a for a in (ids, token_type_ids) if a is not None]
        n = len(ids)
        if n < self.min_batch:
            # OpenVINO's CPU plugin was seen to fail on batch 1 ("Primitive descriptor was not found for node
            # linear_24.tmp_1") where larger batches answer: batch 1 runs as two copies of the row
            inputs = [np.concatenate([a] * self.min_batch) for a in inputs]
        outputs = self.runtime.infer(dict(zip(self.input_names, inputs)))[:2]
        return tuple(o[:n] for o in outputs)


class OnnxRuntimeRuntime:
    """ONNX Runtime's own Python API over the ONNX model of a program (converted next to it, onnx_export.cached)."""

    def __init__(self, onnx_path, cpu_num_threads=1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = cpu_num_threads, 1
        options.log_severity_level = 3  # paddle2onnx leaves unused initializers, which ONNX Runtime lists one by one
        self.session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, ids, token_type_ids=None):
        # by name: paddle2onnx 2.x does not keep the program's input order
        feed = {"input_ids": ids, "token_type_ids": token_type_ids}
        return self.session.run(None, {n: feed[n] for n in self.input_names})[:2]


@contextlib.contextmanager
def stdout_to_stderr():
    """File descriptor 1 points at stderr inside the block (C++ libraries print there, past sys.stdout): the
    scripts' stdout carries only their JSON lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def create_runtime(prefix, backend, device="cpu", cpu_num_threads=1, mkldnn=True):
    """A runtime for <prefix>.pdmodel/.pdiparams on `backend`, after the refusal table has seen its ops.
    `mkldnn=False` switches oneDNN off on the Paddle Inference runtimes (for comparisons)."""
    check_backend(backend)
    program_file = program.program_file(prefix)
    if not os.path.isfile(prefix + ".pdiparams"):
        raise FileNotFoundError(f"model file not found: {prefix}.pdiparams")
    if program.is_pir(program_file) and backend != "paddle_inference":
        raise ValueError(f"{program_file} is Paddle 3's PIR program, which only --backend paddle_inference runs; "
                         f"{backend} reads {prefix}.pdmodel (run_train.py's export writes both)")
    ops = program.program_ops(program_file)
    why = refusal(backend, ops)
    if why:
        raise ValueError(f"{prefix} on {backend}: {why}")
    program.check_params(prefix)
    if backend == "paddle_inference" or (backend == "paddle" and device == "cpu" and ops & QAT_OPS):
        # a QAT program on "paddle": FastDeploy 1.0.7 cannot reach a right INT8 oneDNN path, paddle.inference can
        return PaddleInferenceRuntime(prefix, device, cpu_num_threads, mkldnn)
    if backend == "paddle_lite":
        return lite.LiteRuntime(lite.convert(prefix, "x86"))
    if backend == "onnx_runtime":
        return OnnxRuntimeRuntime(onnx_export.cached(os.path.dirname(prefix), os.path.basename(prefix)),
                                  cpu_num_threads)
    if backend == "openvino" and not ops & INT8_EMBEDDING_OPS:
        with openvino.rewritten(prefix) as program_0d_as_1d:
            return FastDeployRuntime(program_0d_as_1d, "openvino", device, cpu_num_threads)
    onnx_path = None
    if backend == "openvino" and ops & INT8_EMBEDDING_OPS:
        # no paddle2onnx path (nor OpenVINO's Paddle frontend): ONNX Runtime's own INT8 model
        onnx_path = onnx_export.cached(os.path.dirname(prefix), os.path.basename(prefix))
    return FastDeployRuntime(prefix, backend, device, cpu_num_threads, onnx_path, mkldnn)


# ------------------------------------------------------------------------------------------------ predictor
class Predictor:
    """Tokenizer + runtime + decoding. `runtime(ids)` takes padded ids [B, T] of `input_dtype` and returns
    (intent logits [B, intents], slot logits [B, T, slot labels])."""

    def __init__(self, runtime, tokenizer, labels, *, max_length, input_dtype, batch_size=32, slotless=(),
                 context_turns=0, max_context_length=0, decoder=None):
        self.runtime, self.tokenizer, self.labels = runtime, tokenizer, labels
        self.max_length, self.input_dtype, self.batch_size = max_length, input_dtype, batch_size
        self.slotless = list(slotless)
        self.context_turns, self.max_context_length = context_turns, max_context_length
        self.decoder = decoder or decoding.SlotDecoder(labels)

    @classmethod
    def from_dir(cls, model_dir, *, model_prefix="infer_model", backend="paddle", device="cpu", cpu_num_threads=1,
                 max_length=None, batch_size=32, use_fast=False, slot_decoding=None, mkldnn=True, config=None):
        """The predictor of an exported directory: defaults and checks from its deploy_config.json (`config`: that
        file as manifest.read returned it, when the caller has read it already)."""
        config = config or manifest.read(model_dir)
        labels = manifest.labels(model_dir, config)
        length = manifest.max_length(config, max_length, os.path.join(model_dir, manifest.NAME))
        prefix = os.path.join(model_dir, model_prefix)
        if os.path.isfile(prefix + ".pdmodel") or os.path.isfile(prefix + ".json"):
            program_file = program.program_file(prefix)
            dtype = program.model_input_dtype(program_file)
            if dtype != config["input_dtype"]:
                raise manifest.ManifestError(f"{program_file} takes {dtype} ids, {manifest.NAME} says "
                                             f"{config['input_dtype']}: re-export the directory")
        runtime = create_runtime(prefix, backend, device, cpu_num_threads, mkldnn)
        tokenizer = fast_tokenizer_from_dir(model_dir, config) if use_fast else PythonTokenizer.from_dir(model_dir)
        vocab = data.read_utf8_lines(os.path.join(model_dir, config["vocab_file"]))
        decoder = decoding.SlotDecoder(labels, slot_decoding or config["slot_decoding"], config["intent_slot_types"],
                                       decoding.continuation_ids(vocab), config.get("slot_transitions"))
        return cls(runtime, tokenizer, labels, max_length=length, input_dtype=config["input_dtype"],
                   batch_size=batch_size, slotless=config["slotless_intents"], context_turns=config["context_turns"],
                   max_context_length=config["max_context_length"], decoder=decoder)

    def encode(self, texts, contexts=None):
        """(ids, token_type_ids, offsets, truncated) per text; `contexts[k]` lists the earlier turns of text k,
        oldest first (ignored by a model without context)."""
        ids, offsets, truncated = self.tokenizer(texts, self.max_length)
        ids, types, offsets = data.add_context(self.tokenizer, ids, offsets, contexts or [[] for _ in texts],
                                               self.context_turns, self.max_context_length)
        return ids, types, offsets, truncated

    def run(self, batch, token_types=None):
        """The runtime alone on padded [B, T] id (and, with context, token type) arrays: (intent logits, slot
        logits)."""
        if str(batch.dtype) != self.input_dtype:
            raise TypeError(f"input_ids has dtype {batch.dtype}, the model expects {self.input_dtype}")
        if self.context_turns:
            if token_types is None:
                token_types = batch * 0
            intent_logits, slot_logits = self.runtime(batch, token_types)[:2]
        else:
            intent_logits, slot_logits = self.runtime(batch)[:2]
        return intent_logits, slot_logits

    def forward(self, texts, contexts=None):
        """Token ids, offsets, truncation flags and (intent logits, slot logits) for one batch."""
        ids, types, offsets, truncated = self.encode(texts, contexts)
        batch = data.pad_batch(ids, self.tokenizer.pad_token_id, self.input_dtype)
        intent_logits, slot_logits = self.run(batch, data.pad_batch(types, 0, self.input_dtype))
        return ids, offsets, truncated, intent_logits, slot_logits

    def predict(self, texts, where=None, contexts=None):
        """[{'intent', 'confidence', 'slot': [{'slot', 'entity', 'pos'}], 'truncated'?}] for each text.
        `where` names each text for errors (default 'text k'); `contexts[k]`, the earlier turns of text k (oldest
        first), is used by a model trained with context and ignored otherwise."""
        out = []
        for s in range(0, len(texts), self.batch_size):
            names = where[s:s + self.batch_size] if where else [f"text {s + k}" for k in range(self.batch_size)]
            chunk = [data.check_text(t, n) for t, n in zip(texts[s:s + self.batch_size], names)]
            ctx = contexts[s:s + self.batch_size] if contexts else None
            for k, turns in enumerate(ctx or []):
                for j, turn in enumerate(turns):
                    data.check_text(turn, f"{names[k]} context[{j}]")
            ids, offsets, truncated, intent_logits, slot_logits = self.forward(chunk, ctx)
            results = decoding.postprocess(chunk, ids, offsets, intent_logits, slot_logits, self.labels, self.decoder)
            for r, t in zip(results, truncated):
                if t:
                    r["truncated"] = True
                out.append(r)
        return out

    def evaluate(self, examples, slotless=None, report=False):
        """Sentence and intent accuracy on corpus examples (their "context", when read with data.attach_context,
        feeds a context model): the metric of training, with this predictor's slot decoding; with report=True
        also per-slot scores and intent confusions (metrics.full_report)."""
        def forward(chunk):
            ids, offsets, _, intent_logits, slot_logits = self.forward([e["query"] for e in chunk],
                                                                       [e.get("context", []) for e in chunk])
            return ids, offsets, intent_logits, slot_logits

        slotless = self.slotless if slotless is None else slotless
        return metrics.evaluate_examples(examples, self.labels, slotless, forward, self.batch_size, self.decoder,
                                         report)
