"""Each fix in slu/compat.py: the failure without it (in a fresh process of the environment it is for: the default
one, where compression runs, or the legacy one, which writes its .pdmodel programs) and the right result with it."""
import json
import textwrap

from conftest import run_legacy, run_py

LAYERNORM = textwrap.dedent("""
    import sys, numpy as np
    import slu, paddle
    from slu import compat
    from paddleslim.nas.ofa.layers import SuperLayerNorm
    if sys.argv[1] == "fixed":
        compat.apply()
    paddle.seed(1)
    ln = SuperLayerNorm(8)
    ln.weight.set_value(paddle.to_tensor(np.linspace(0.5, 2, 8).astype("float32")))
    ln.bias.set_value(paddle.to_tensor(np.linspace(-1, 1, 8).astype("float32")))
    x = np.random.RandomState(0).randn(2, 3, 6).astype("float32")   # a narrower (pruned) input: 6 of 8
    out = ln(paddle.to_tensor(x)).numpy()
    w, b = np.linspace(0.5, 2, 8)[:6], np.linspace(-1, 1, 8)[:6]
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b
    print("maxdiff", float(np.abs(out - ref).max()))
""")

QUANT_EMB = textwrap.dedent("""
    import os, sys, types, numpy as np
    import slu, paddle
    from slu import compat
    from paddlenlp.trainer import trainer_compress
    if sys.argv[1] == "fixed":
        compat.apply()
    d = sys.argv[2]
    paddle.seed(0)
    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.emb = paddle.nn.Embedding(300, 16)
            self.fc = paddle.nn.Linear(16, 3)
        def forward(self, input_ids):
            return self.fc(self.emb(input_ids))
    net = Net(); net.eval()
    spec = [paddle.static.InputSpec([None, None], "int32", "input_ids")]
    paddle.jit.save(paddle.jit.to_static(net, input_spec=spec), os.path.join(d, "int8"))
    fake = types.SimpleNamespace(args=types.SimpleNamespace(device="cpu", output_filename_prefix="int8"))
    trainer_compress._quant_embeddings(fake, os.path.join(d, "int8"))
    print("dynamic_after", paddle.in_dynamic_mode())
    paddle.disable_static()
    import paddle.inference as pi
    ids = np.array([[1, 5, 299, 42]], dtype="int32")
    def run(prefix):
        c = pi.Config(prefix + ".pdmodel", prefix + ".pdiparams"); c.disable_gpu()
        p = pi.create_predictor(c); h = p.get_input_handle(p.get_input_names()[0])
        h.reshape(list(ids.shape)); h.copy_from_cpu(ids); p.run()
        return p.get_output_handle(p.get_output_names()[0]).copy_to_cpu()
    a, b = run(os.path.join(d, "int8")), run(os.path.join(d, "quant_emb"))
    print("maxdiff", float(np.abs(a - b).max()), "scale", float(np.abs(a).max()))
    print("sizes", os.path.getsize(os.path.join(d, "int8.pdiparams")), os.path.getsize(os.path.join(d, "quant_emb.pdiparams")))
""")


def _run(code, tmp_path, *args):
    script = tmp_path / "probe.py"
    script.write_text(code)
    return run_legacy([str(script), *args], check=False)  # Paddle 2.6: the fixes of the .pdmodel writes


def test_superlayernorm_fix(tmp_path):
    p = _run(LAYERNORM, tmp_path, "unfixed")
    assert p.returncode != 0 and "ValueError: not enough values to unpack (expected 3, got 2)" in p.stderr
    p = _run(LAYERNORM, tmp_path, "fixed")
    assert p.returncode == 0, p.stderr[-2000:]
    assert float(p.stdout.split("maxdiff")[1]) < 1e-5


def test_quant_embeddings_fix(tmp_path):
    p = _run(QUANT_EMB, tmp_path, "unfixed", str(tmp_path))
    assert p.returncode != 0 and "'feed_vars' should be a Variable or a list of Variable" in p.stderr
    p = _run(QUANT_EMB, tmp_path, "fixed", str(tmp_path))
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert "dynamic_after True" in out  # upstream leaves static mode on
    maxdiff, scale = float(out.split("maxdiff")[1].split()[0]), float(out.split("scale")[1].split()[0])
    assert maxdiff < 0.1 * scale  # log-quantized INT8 table: close to, not equal to, FP32
    fp32, int8 = map(int, out.split("sizes")[1].split())
    assert int8 < 0.4 * fp32  # the 300x16 table is stored as INT8 now


OFA_LAYERS = textwrap.dedent("""
    import sys, json, numpy as np
    import slu, paddle
    from slu import compat
    from paddleslim.nas.ofa.layers import SuperEmbedding, SuperLayerNorm
    if sys.argv[1] == "fixed":
        compat.apply()
    emb = SuperEmbedding(10, 4, candidate_config={"expand_ratio": [0.5, 1.0]}, padding_idx=0)
    ln = SuperLayerNorm(8, 1e-3)
    out = emb(paddle.to_tensor(np.array([[0, 3]], dtype="int64")), expand_ratio=0.5).numpy()
    print(json.dumps({"weight": emb.weight.shape, "padding_row": float(np.abs(out[0, 0]).max()),
                      "width": out.shape[-1], "base": emb.base_output_dim, "epsilon": ln._epsilon,
                      "ln_weight": ln.weight.shape}))
""")


def test_ofa_layer_constructors_fix(tmp_path):
    """Paddle 3's keyword-only Embedding and LayerNorm settings: DynaBERT's OFA layers fail to build without the
    fix; with it they hold the settings PaddleSlim passed (padding row zero, the expand ratio's width, epsilon)."""
    script = tmp_path / "ofa.py"
    script.write_text(OFA_LAYERS)
    p = run_py([str(script), "unfixed"], check=False)
    assert p.returncode != 0 and "Embedding.__init__() takes from 3 to 6 positional arguments but 7 were given" \
        in p.stderr
    r = json.loads(run_py([str(script), "fixed"]).stdout.strip().splitlines()[-1])
    assert r == {"weight": [10, 4], "padding_row": 0.0, "width": 2, "base": 4, "epsilon": 1e-3, "ln_weight": [8]}


QAT_SAVE = textwrap.dedent("""
    import sys, json, os, numpy as np
    import slu, paddle, paddleslim
    from slu import compat, manifest
    from slu.model import JointErnie
    from slu.predictor import PaddleInferenceRuntime
    from paddlenlp.trainer.trainer_compress import _replace_auto_model_qat_forward
    w, out = sys.argv[1], sys.argv[2]
    if sys.argv[3] == "fixed":
        compat.apply()
    labels = manifest.labels(w)
    model = JointErnie.from_pretrained(w, intent_dim=len(labels.intents), slot_dim=len(labels.slots))
    model = _replace_auto_model_qat_forward(model)
    config = {"weight_quantize_type": "channel_wise_abs_max", "activation_quantize_type": "moving_average_abs_max",
              "weight_bits": 8, "activation_bits": 8, "dtype": "int8", "window_size": 10000,
              "quantizable_layer_type": ["Linear", "Conv2D"], "moving_rate": 0.9, "onnx_format": True,
              "activation_preprocess_type": "PACT", "weight_preprocess_type": "PACT"}  # PaddleNLP's defaults
    quanter = paddleslim.QAT(config=config)
    quanter.quantize(model)
    model.set_state_dict(paddle.load(os.path.join(w, "best_quant.pdparams")))
    model.eval()
    ids = np.random.RandomState(5).randint(1, 100, size=(4, 9)).astype("int32")
    ids[:, 0] = 1
    dygraph = [t.numpy() for t in model(paddle.to_tensor(ids))]
    os.makedirs(out)
    os.link(os.path.join(w, "config.json"), os.path.join(out, "config.json"))
    os.link(os.path.join(w, "model_state.pdparams"), os.path.join(out, "model_state.pdparams"))
    quanter.save_quantized_model(model, os.path.join(out, "int8"),
                                 input_spec=[paddle.static.InputSpec([None, None], "int32")])
    program = PaddleInferenceRuntime(os.path.join(out, "int8"), mkldnn=False)(ids)
    print(json.dumps({"diff": [float(np.abs(a - b).max()) for a, b in zip(dygraph, program)],
                      "spread": float(np.abs(dygraph[0]).max()), "files": sorted(os.listdir(out))}))
""")


def test_qat_program_written_in_legacy_answers_as_the_qat_model(compressed, tmp_path):
    """On Paddle 3, PaddleSlim's QAT save fails in dy2static; with the fix the legacy environment rebuilds the QAT
    model from the weights and writes int8.pdmodel, whose outputs (fake quantization, no oneDNN) are the dygraph
    QAT model's."""
    script = tmp_path / "qat.py"
    script.write_text(QAT_SAVE)
    w = compressed / "width_mult_0.5"
    p = run_py([str(script), str(w), str(tmp_path / "unfixed"), "unfixed"], check=False)
    assert p.returncode != 0 and "must be Value, but got Variable" in p.stderr
    r = json.loads(run_py([str(script), str(w), str(tmp_path / "fixed"), "fixed"]).stdout.strip().splitlines()[-1])
    assert "int8.pdmodel" in r["files"] and r["spread"] > 0.1
    assert max(r["diff"]) < 2e-2 * r["spread"], r
