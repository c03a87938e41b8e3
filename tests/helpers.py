"""Test-only code: loading a script's module by path, numpy log-softmax and KL divergence, and rebuilding the
dynamic-graph QAT model that compression saved int8.pdmodel from."""
import importlib.util
import os
import struct

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def missing_prerequisite(what, install):
    """A tool or file a test needs is not there: skipped on a developer's machine (pytest -ra lists it), a failure
    under CI=true, where scripts/test.sh has installed everything and a missing piece means the set-up is broken."""
    message = f"{what}; install: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"missing prerequisite under CI: {message}", pytrace=False)
    pytest.skip(message)


def script_module(relative_path):
    """A module of the repository that is not in a package (e.g. benchmarks/arith.py: pyarrow installs a package
    named "benchmarks", so `from benchmarks import arith` would find that one)."""
    path = os.path.join(ROOT, relative_path)
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Tokenizer edge cases both ports (C++ and Java) are held to against PaddleNLP's tokenizer
TOKENIZER_EDGE_CASES = [
    "播放Taylor Swift的Shape of You", "Café Déjà Vu", "ＡＢＣ１２３", "导航到,北京!西站?", "放一首𠮷野家",
    "来一首周华健的花心" * 3, "ÀÉÎÕÜ ñ ß İ", "ok",
    # symbols (category S and PaddleNLP's _is_symbol extras) split like punctuation
    "温度调到26℃", "价格¥100元", "3×4等于几", "x²", "µg", "100～200", "Ø型ŋ号Ʊ", "第〇个", "a^b`c$d",
    # every C* category dropped (private use, unassigned, format; surrogates cannot be UTF-8); U+2028/U+2029 are
    # whitespace
    "打\ue000电话", "a\U000f0000b", "导航\U000e0001到", "a\u0378b", "a\u200bb\u00adc",
    "打电话\u2028给妈妈", "a\u2029b", "a\x85b\x1cc\x0bd",
    # lower-casing is per character in PaddleNLP (no final sigma); CJK compatibility ideographs decompose
    "ΟΔΟΣ ΣΑΣ", "\uf900\uf901",
    # special tokens typed in the text are split out first, exactly and case-sensitively, each kept as that token
    # spanning its characters (whitespace around it, two in a row, one inside a word); a lower-case or broken spelling
    # is ordinary text; a token the offset mapping cannot find before one spans one character
    "播放[SEP]周杰伦", "[CLS]", "a[MASK]b", "[UNK]x", "[PAD]", "[sep]", "播放 [SEP] 歌", "[SEP][SEP]", "abc[MASK]def",
    "[Mask]", "[[SEP]]", "Café[SEP]Déjà", "ＡＢ[SEP]", "a\u200b[SEP]\u3000b", "x[unk]y[SEP]",
]


def qat_config():
    """The QAT configuration PaddleNLP 2.8's `_quant_aware_training_dynamic` builds from CompressionArguments'
    defaults (scripts/compress.sh changes none of them)."""
    from paddlenlp.trainer import CompressionArguments

    args = CompressionArguments(output_dir="unused")
    return {
        "activation_preprocess_type": "PACT" if args.use_pact else None,
        "weight_preprocess_type": "PACT" if args.use_pact else None,
        "weight_quantize_type": args.weight_quantize_type,
        "activation_quantize_type": args.activation_quantize_type or "moving_average_abs_max",
        "weight_bits": 8, "activation_bits": 8, "dtype": "int8", "window_size": 10000,
        "quantizable_layer_type": ["Linear", "Conv2D"], "moving_rate": args.moving_rate,
        "onnx_format": args.onnx_format,
    }


def load_qat_model(width_dir):
    """The dynamic-graph QAT model of a width directory (pruned JointErnie + fake-quant layers + the best QAT
    weights), i.e. the model that int8.pdmodel was saved from."""
    import paddle
    from paddleslim import QAT

    from slu import manifest
    from slu.model import JointErnie

    labels = manifest.labels(width_dir)
    model = JointErnie.from_pretrained(width_dir, intent_dim=len(labels.intents), slot_dim=len(labels.slots))
    QAT(config=qat_config()).quantize(model)
    model.set_state_dict(paddle.load(os.path.join(width_dir, "best_quant.pdparams")))

    class WithMask(paddle.nn.Layer):
        """ERNIE derives its attention mask's dtype from the pooler's weight, which QAT wraps away (PaddleNLP
        swaps ERNIE's forward for the same reason): pass the mask explicitly."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids):
            pad = (input_ids == self.inner.config.pad_token_id).astype("float32")
            return self.inner(input_ids, attention_mask=paddle.unsqueeze(pad * -1e4, axis=[1, 2]))

    wrapped = WithMask(model)
    wrapped.eval()
    return wrapped


def log_softmax(x, t=1.0):
    x = x / t
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def numpy_kl(p_logits, q_logits, t=1.0):
    """KL(softmax(p / t) || softmax(q / t)) over the last axis."""
    lp, lq = log_softmax(p_logits, t), log_softmax(q_logits, t)
    return (np.exp(lp) * (lp - lq)).sum(-1)


# ------------------------------------------------------------------------------- crafted parameter files
def first_tensor_header(data):
    """(start, end) of the first tensor's TensorDesc in a .pdiparams file without LoD (what paddle.jit.save
    writes): version 4 bytes, LoD level count 8, tensor version 4, header size 4, header."""
    assert struct.unpack_from("<IQI", data, 0) == (0, 0, 0)
    size, = struct.unpack_from("<i", data, 16)
    return 20, 20 + size


def crafted_negative_dimension(params):
    """The first tensor's dims rewritten to [-N, ...]: a reader that trusts them moves its position backwards."""
    from slu.program import framework_pb2

    data = params.read_bytes()
    start, end = first_tensor_header(data)
    desc = framework_pb2().VarType.TensorDesc.FromString(data[start:end])
    desc.dims[0] = -desc.dims[0]
    header = desc.SerializeToString()
    params.write_bytes(data[:16] + struct.pack("<i", len(header)) + header + data[end:])


def crafted_loop(params):
    """The first tensor rewritten to one byte-sized (uint8) dimension of -(its own length): a reader that trusts it
    moves back to the tensor's start and reads it again, forever (run_eval.py, infer_demo.py and the server did)."""
    from slu.program import framework_pb2

    pb2 = framework_pb2()
    data = params.read_bytes()
    _, end = first_tensor_header(data)
    desc = pb2.VarType.TensorDesc(data_type=pb2.VarType.UINT8, dims=[-1])
    size = 20 + len(desc.SerializeToString())  # a negative int64 is always 10 varint bytes: the size is fixed
    desc.dims[0] = -size
    header = desc.SerializeToString()
    assert 20 + len(header) == size
    params.write_bytes(data[:16] + struct.pack("<i", len(header)) + header + data[end:])
