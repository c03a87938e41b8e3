"""Fixes for PaddleSlim 2.6.0 and PaddleNLP 2.8.1 running on Paddle 3.3.1 (the default environment) and on Paddle
2.6.2 (the legacy one, slu/envs.py).

Nothing here is applied on import: compression (slu/compression.py) calls `apply()` first. Each fix says what
upstream does wrong; tests/test_compat.py shows each failure without its fix.

Two program writes cannot happen on Paddle 3 and run in the legacy environment's Paddle 2.6 (`python -m slu.compat
...`, the same code): Paddle 3 writes only PIR programs, and with FLAGS_enable_pir_api=0 its dy2static fails
("matmul(): argument (position 1) must be Value, but got Variable"), while Paddle Lite, FastDeploy and paddle2onnx's
QAT path read .pdmodel only. They are the QAT program (the trained QAT weights are handed over) and the INT8
embedding rewrite of that program.
"""
import json
import os
import subprocess
import sys
import tempfile

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import paddleslim
import paddleslim.quant as quant
from paddlenlp.trainer import trainer_compress
from paddlenlp.trainer.trainer_compress import _replace_auto_model_qat_forward
from paddlenlp.utils.log import logger
from paddleslim.nas.ofa import layers

from slu import envs
from slu.model import JointErnie

_applied = []


def fix_superlayernorm():
    """PaddleSlim's `SuperLayerNorm.forward` (paddleslim/nas/ofa/layers.py) unpacks three outputs from
    `paddle._C_ops.layer_norm`, which returns fewer on Paddle 2.6.2: DynaBERT fails with
    "ValueError: not enough values to unpack (expected 3, got 2)". Same computation through `paddle.nn.functional.layer_norm`."""
    original = layers.SuperLayerNorm.forward

    def forward(self, input):
        if not paddle.in_dynamic_mode():
            return original(self, input)
        feature_dim = int(input.shape[-1])
        weight = bias = None
        if self._weight_attr is not False:
            weight = self.weight if self.weight.shape[0] <= feature_dim else self.weight[:feature_dim]
        if self._bias_attr is not False:
            bias = self.bias if self.bias.shape[0] <= feature_dim else self.bias[:feature_dim]
        self.cur_config = {"prune_dim": feature_dim}
        return F.layer_norm(input, [feature_dim], weight=weight, bias=bias, epsilon=self._epsilon)

    layers.SuperLayerNorm.forward = forward


def fix_ofa_layer_constructors():
    """PaddleSlim's `SuperEmbedding` and `SuperLayerNorm` (paddleslim/nas/ofa/layers.py) pass their settings to
    `nn.Embedding` / `nn.LayerNorm` by position; Paddle 3 inserted parameters (max_norm, norm_type) and made the
    rest keyword-only, so DynaBERT fails to build its OFA model ("Embedding.__init__() takes from 3 to 6
    positional arguments but 7 were given", then the same for LayerNorm). The same constructors, by keyword."""
    def embedding_init(self, num_embeddings, embedding_dim, candidate_config={}, padding_idx=None, sparse=False,
                       weight_attr=None, name=None):
        nn.Embedding.__init__(self, num_embeddings, embedding_dim, padding_idx=padding_idx, sparse=sparse,
                              weight_attr=weight_attr, name=name)
        self.candidate_config = candidate_config
        self.cur_config = None
        self.expand_ratio = candidate_config.get("expand_ratio")
        self.base_output_dim = self._embedding_dim
        if self.expand_ratio is not None:
            self.base_output_dim = int(self._embedding_dim / max(self.expand_ratio))

    def layernorm_init(self, normalized_shape, epsilon=1e-05, weight_attr=None, bias_attr=None, name=None):
        nn.LayerNorm.__init__(self, normalized_shape, epsilon, weight_attr=weight_attr, bias_attr=bias_attr,
                              name=name)
        self.cur_config = None

    layers.SuperEmbedding.__init__ = embedding_init
    layers.SuperLayerNorm.__init__ = layernorm_init


def fix_qat_save_on_paddle_3():
    """PaddleSlim's `QAT.save_quantized_model` traces the QAT model with Paddle's old-IR dy2static, which fails on
    Paddle 3 ("matmul(): argument (position 1) must be Value, but got Variable"), and Paddle 3 could only write a PIR
    program anyway. On Paddle 3 the trained QAT weights go to the legacy environment, which rebuilds the same QAT
    model (the width-pruned JointErnie saved beside `path`, PaddleNLP's QAT forward, this quanter's config), loads
    them and writes the .pdmodel there (`save_quantized_in_legacy`)."""
    if envs.paddle_major() < 3:
        return

    def save_quantized_model(self, model, path, input_spec=None):
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as tmp:
            state = os.path.join(tmp, "qat.pdparams")
            paddle.save(model.state_dict(), state)
            job = {"model_dir": os.path.dirname(os.path.abspath(path)), "state": state, "path": path,
                   "config": self.config, "training": model.training, "intent_dim": model.intent_dim,
                   "slot_dim": model.slot_dim, "dropout": model.dropout.p,
                   "input_dtypes": [str(spec.dtype).replace("paddle.", "") for spec in input_spec or []]}
            run_in_legacy("save_quantized", job)

    paddleslim.QAT.save_quantized_model = save_quantized_model


def run_in_legacy(command, job):
    """`python -m slu.compat <command> <job as JSON>` in the legacy environment; its error, when it fails."""
    p = subprocess.run([envs.legacy_python(), "-m", "slu.compat", command, json.dumps(job)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{command} in {envs.LEGACY_VENV} failed: {p.stderr.strip()[-2000:]}")
    logger.info(p.stdout.strip())


def save_quantized_in_legacy(job):
    """The QAT program of fix_qat_save_on_paddle_3, written by Paddle 2.6."""
    with paddle.utils.unique_name.guard():
        model = JointErnie.from_pretrained(job["model_dir"], intent_dim=job["intent_dim"], slot_dim=job["slot_dim"],
                                           dropout=job["dropout"])
    model = _replace_auto_model_qat_forward(model)
    quanter = paddleslim.QAT(config=job["config"])
    quanter.quantize(model)
    state = paddle.load(job["state"])
    missing, unexpected = model.set_state_dict(state)
    if missing or unexpected:
        raise ValueError(f"the QAT weights of {job['state']} do not fit the rebuilt QAT model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    model.train() if job["training"] else model.eval()
    spec = [paddle.static.InputSpec(shape=[None, None], dtype=d) for d in job["input_dtypes"]] or None
    quanter.save_quantized_model(model, job["path"], input_spec=spec)
    print(f"Wrote the QAT program {job['path']}.pdmodel with Paddle {paddle.__version__}")


def fix_quant_embeddings():
    """PaddleNLP's `_quant_embeddings` (paddlenlp/trainer/trainer_compress.py) passes the feed variable
    *names* to `paddle.static.save_inference_model`, which wants Variables ("ValueError: 'feed_vars'
    should be a Variable or a list of Variable"), and leaves Paddle in static mode afterwards, which
    breaks everything dynamic that follows. Same quantization (log, lookup_table_v2), Variables passed,
    dynamic mode restored."""
    def _quant_embeddings(self, input_prefix):
        self.args.output_filename_prefix = "quant_emb"
        job = {"input_prefix": input_prefix, "device": self.args.device,
               "output_prefix": os.path.join(os.path.dirname(input_prefix), self.args.output_filename_prefix)}
        if envs.paddle_major() >= 3:  # a .pdmodel rewrite: Paddle 2.6's static graph (the module docstring)
            return run_in_legacy("quant_embeddings", job)
        quant_embeddings(job)

    trainer_compress._quant_embeddings = _quant_embeddings


def quant_embeddings(job):
    """The INT8 (log) embedding rewrite of a .pdmodel program, in static mode, dynamic mode restored."""
    paddle.enable_static()
    try:
        place = paddle.set_device(job["device"])
        exe = paddle.static.Executor(place)
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            program, feed_names, fetch_targets = paddle.static.load_inference_model(job["input_prefix"], exe)
            config = {"quantize_op_types": ["lookup_table_v2"], "lookup_table_v2": {"quantize_type": "log"}}
            program = quant.quant_embedding(program, place, config)
            feed_vars = [program.global_block().var(n) for n in feed_names]
            paddle.static.save_inference_model(job["output_prefix"], feed_vars, fetch_targets, exe, program=program)
    finally:
        paddle.disable_static()
    print(f"Wrote the INT8-embedding program {job['output_prefix']}.pdmodel with Paddle {paddle.__version__}")


FIXES = (fix_superlayernorm, fix_ofa_layer_constructors, fix_qat_save_on_paddle_3, fix_quant_embeddings)


def apply():
    """Apply every fix once; returns the names applied."""
    for fix in FIXES:
        if fix.__name__ not in _applied:
            fix()
            _applied.append(fix.__name__)
    return list(_applied)


if __name__ == "__main__":  # the legacy environment's half of fix_qat_save_on_paddle_3 and fix_quant_embeddings
    {"save_quantized": save_quantized_in_legacy, "quant_embeddings": quant_embeddings}[sys.argv[1]](
        json.loads(sys.argv[2]))
