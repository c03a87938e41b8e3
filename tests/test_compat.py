"""Each fix in slu/compat.py: the failure without it (in a fresh process of the legacy environment, where
compression runs) and the right result with it."""
import textwrap

from conftest import run_legacy

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
    return run_legacy([str(script), *args], check=False)  # compression runs there (slu/envs.py)


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
