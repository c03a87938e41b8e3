"""Fixes for PaddleSlim 2.6.0 and PaddleNLP 2.8.1 running on Paddle 2.6.2 (compression runs in the legacy
environment, slu/envs.py).

Nothing here is applied on import: run_train.py calls `apply()` before compressing. Each fix says
what upstream does wrong; tests/test_compat.py shows each failure without its fix.
"""
import os

import paddle
import paddle.nn.functional as F
import paddleslim.quant as quant
from paddlenlp.trainer import trainer_compress
from paddleslim.nas.ofa import layers

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


def fix_quant_embeddings():
    """PaddleNLP's `_quant_embeddings` (paddlenlp/trainer/trainer_compress.py) passes the feed variable
    *names* to `paddle.static.save_inference_model`, which wants Variables ("ValueError: 'feed_vars'
    should be a Variable or a list of Variable"), and leaves Paddle in static mode afterwards, which
    breaks everything dynamic that follows. Same quantization (log, lookup_table_v2), Variables passed,
    dynamic mode restored."""
    def _quant_embeddings(self, input_prefix):
        self.args.output_filename_prefix = "quant_emb"
        paddle.enable_static()
        try:
            place = paddle.set_device(self.args.device)
            exe = paddle.static.Executor(place)
            scope = paddle.static.Scope()
            with paddle.static.scope_guard(scope):
                program, feed_names, fetch_targets = paddle.static.load_inference_model(input_prefix, exe)
                config = {"quantize_op_types": ["lookup_table_v2"], "lookup_table_v2": {"quantize_type": "log"}}
                program = quant.quant_embedding(program, place, config)
                feed_vars = [program.global_block().var(n) for n in feed_names]
                paddle.static.save_inference_model(
                    os.path.join(os.path.dirname(input_prefix), self.args.output_filename_prefix),
                    feed_vars, fetch_targets, exe, program=program)
        finally:
            paddle.disable_static()

    trainer_compress._quant_embeddings = _quant_embeddings


FIXES = (fix_superlayernorm, fix_quant_embeddings)


def apply():
    """Apply every fix once; returns the names applied."""
    for fix in FIXES:
        if fix.__name__ not in _applied:
            fix()
            _applied.append(fix.__name__)
    return list(_applied)
