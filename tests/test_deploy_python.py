"""deploy/python: FastDeploy backends agree with run_eval.py, FastTokenizer ids, refusals (the HTTP server:
test_server.py).
Each backend runs in its own process (a Paddle Inference predictor and FastDeploy's Paddle backend must not
share one)."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import run_legacy, run_py
from slu import envs

DEMO = "deploy/python/infer_demo.py"


def predictions(args):
    p = run_py(args)
    return [json.loads(x) for x in p.stdout.strip().splitlines() if x.startswith("{")]


@pytest.fixture(scope="module")
def reference(trained_pico, corpus_subset):
    """run_eval.py's predictions on every dev query of the small model (Paddle Inference)."""
    return predictions(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"),
                        "--test_path", str(corpus_subset / "dev.txt"), "--per_device_eval_batch_size", "64"])


def strip(rows):
    return [(r["intent"], json.dumps(r["slot"], ensure_ascii=False)) for r in rows]


@pytest.mark.parametrize("backend, extra", [("paddle", []), ("onnx_runtime", []), ("paddle", ["--use_fast"]),
                                            ("paddle_lite", [])])
def test_fp32_backends_agree_with_run_eval(trained_pico, corpus_subset, reference, backend, extra):
    got = predictions([DEMO, "--model_dir", str(trained_pico), "--backend", backend, "--batch_size", "32",
                       "--input_file", str(corpus_subset / "dev.txt"), *extra])
    assert len(got) == len(reference) == 150
    assert [r["query"] for r in got] == [r["query"] for r in reference]
    assert strip(got) == strip(reference)  # 100% agreement on intents and slots
    for a, b in zip(got, reference):
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)


def test_paddle_backend_right_after_batch_shape_changes(trained_pico, corpus_subset, reference, tmp_path):
    """FastDeploy's Paddle backend with MKLDNN answered garbage once batch shapes changed between calls (dev
    accuracy 0 after batch-1 calls); batch 1 then batch 64 in one process must both match run_eval.py."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys, json\n"
        "from slu import data\n"
        "from slu.predictor import Predictor\n"
        "qs = [q for _, q in data.read_queries(sys.argv[2])]\n"
        "p = Predictor.from_dir(sys.argv[1], backend='paddle', batch_size=1)\n"
        "one = p.predict(qs[:40])\n"
        "p.batch_size = 64\n"
        "print(json.dumps({'one': one, 'many': p.predict(qs)}, ensure_ascii=False))\n")
    p = run_legacy([str(script), str(trained_pico), str(corpus_subset / "dev.txt")])
    out = json.loads([x for x in p.stdout.splitlines() if x.startswith("{")][-1])
    assert strip(out["one"]) == strip(reference[:40])
    assert strip(out["many"]) == strip(reference)


@pytest.mark.parametrize("prefix, backend", [("int8", "paddle"), ("int8", "onnx_runtime"), ("quant_emb", "paddle"),
                                             ("int8", "openvino")])
def test_int8_backends_agreement_rate(compressed, corpus_subset, prefix, backend):
    w = compressed / "width_mult_0.5"
    ref = predictions(["run_eval.py", "--infer_prefix", str(w / prefix), "--test_path", str(corpus_subset / "dev.txt")])
    got = predictions([DEMO, "--model_dir", str(w), "--model_prefix", prefix, "--backend", backend, "--batch_size",
                       "16", "--input_file", str(corpus_subset / "dev.txt")])
    same = sum(a == b for a, b in zip(strip(got), strip(ref))) / len(ref)
    print(f"{prefix} on {backend}: intents+slots agree with run_eval.py on {100 * same:.1f}% of {len(ref)} queries")
    assert len(got) == len(ref) == 150 and same >= 0.9


def test_int8_embeddings_on_onnx_runtime(compressed, corpus_subset, tmp_path):
    """quant_emb on ONNX Runtime: paddle2onnx cannot convert PaddleSlim's log-quantized tables, so compression
    writes quant_emb.onnx, ONNX Runtime's static INT8 quantization (MatMul, embedding table; activation scales
    calibrated on training queries) of the pruned FP32 model. It holds 8-bit tables and INT8 matmuls, is smaller
    than the pruned ONNX model, answers like run_eval.py on the pruned model for nearly every dev query, and gives
    a query the same answer whatever its batch-mates (dynamic quantization did not)."""
    import onnx

    w = compressed / "width_mult_0.5"
    dev = str(corpus_subset / "dev.txt")
    ref = predictions(["run_eval.py", "--infer_prefix", str(w / "pruned"), "--test_path", dev])
    demo = [DEMO, "--model_dir", str(w), "--model_prefix", "quant_emb", "--backend", "onnx_runtime", "--input_file",
            dev]
    got, alone = predictions(demo + ["--batch_size", "16"]), predictions(demo + ["--batch_size", "1"])
    same = sum(a == b for a, b in zip(strip(got), strip(ref))) / len(ref)
    print(f"quant_emb on onnx_runtime: intents+slots agree with run_eval.py on pruned for {100 * same:.1f}%")
    assert len(got) == len(ref) == 150 and same >= 0.9
    assert got == alone  # batch-invariant, confidences included
    model = onnx.load(str(w / "quant_emb.onnx"))
    assert {"QLinearMatMul", "QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in model.graph.node}
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)  # ONNX Runtime stores Gather tables as UINT8
    tables = [t for t in model.graph.initializer if t.data_type in eight_bit and len(t.dims) == 2]
    vocab = json.load(open(w / "deploy_config.json"))["vocab_size"]
    assert any(t.dims[0] == vocab for t in tables)  # the word embedding table is 8-bit
    run_py(["deploy/cpp/convert_to_onnx.py", "--model_dir", str(w), "--model_prefix", "pruned", "--output",
            "pruned.onnx"])
    assert os.path.getsize(w / "quant_emb.onnx") < 0.6 * os.path.getsize(w / "pruned.onnx")
    # without the file, it is made again only from calibration queries
    shutil.copytree(w, tmp_path / "w", ignore=shutil.ignore_patterns("*.onnx", "*.nb"))
    p = run_py([DEMO, "--model_dir", str(tmp_path / "w"), "--model_prefix", "quant_emb", "--backend",
                "onnx_runtime"], check=False)
    assert p.returncode == 1 and "calibrated on training queries: compression writes it" in p.stderr
    out = run_py(["deploy/cpp/convert_to_onnx.py", "--model_dir", str(tmp_path / "w"), "--model_prefix",
                  "quant_emb", "--output", "quant_emb.onnx", "--calibration_file", str(corpus_subset / "train.txt")])
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "w" / "quant_emb.onnx")


def test_int8_embeddings_on_openvino_run_onnx_runtimes_int8_model(compressed, corpus_subset):
    """quant_emb on OpenVINO: its Paddle frontend cannot convert the INT8 embedding lookup, so it runs quant_emb.onnx,
    the model onnx_runtime runs, and answers like ONNX Runtime on it (up to OpenVINO's bfloat16 rounding)."""
    w = compressed / "width_mult_0.5"
    demo = [DEMO, "--model_dir", str(w), "--model_prefix", "quant_emb", "--batch_size", "16", "--input_file",
            str(corpus_subset / "dev.txt")]
    ref, got = predictions(demo + ["--backend", "onnx_runtime"]), predictions(demo + ["--backend", "openvino"])
    same = sum(a == b for a, b in zip(strip(got), strip(ref))) / len(ref)
    print(f"quant_emb on openvino: intents+slots agree with onnx_runtime on {100 * same:.1f}%")
    assert len(got) == len(ref) == 150 and same >= 0.97


@pytest.mark.parametrize("prefix, backend, message", [
    ("int8", "paddle_lite", "Paddle Lite 2.13rc0's x86 .nb of a QAT program returns NaN or crashes"),
    ("quant_emb", "paddle_lite", "Paddle Lite 2.13rc0 has no x86 kernel for dequantize_log"),
])
def test_unsupported_stage_backend_is_refused_up_front(compressed, prefix, backend, message):
    p = run_py([DEMO, "--model_dir", str(compressed / "width_mult_0.5"), "--model_prefix", prefix,
                "--backend", backend], check=False)
    assert p.returncode == 1 and message in p.stderr and "Runtime initialized" not in p.stderr + p.stdout
    assert "convert it for phones with --lite_target arm" in p.stderr


LITE_CONVERT = ("import sys, paddlelite.lite as l; o = l.Opt(); o.set_model_file(sys.argv[1]); "
                "o.set_param_file(sys.argv[2]); o.set_valid_places(sys.argv[4]); o.set_model_type('naive_buffer'); "
                "o.set_optimize_out(sys.argv[3]); o.run()")
LITE_RUN = ("import sys, json, numpy as np\n"
            "from slu import lite\n"
            "out = lite.LiteRuntime(sys.argv[1])(np.array([[1, 5, 9, 12, 2, 0], [1, 7, 8, 9, 10, 2]], dtype='int32'))\n"
            "print(json.dumps({'nan': bool(np.isnan(out[0]).any() or np.isnan(out[1]).any())}))\n")
LITE_OUTPUTS = ("import sys, numpy as np\n"
                "from slu import lite\n"
                "ids = np.array([[1, 5, 9, 12, 2, 0], [1, 7, 8, 9, 10, 2]], dtype='int32')\n"
                "np.savez(sys.argv[2], *lite.LiteRuntime(sys.argv[1])(ids))\n")


def test_paddle_lite_x86_int8_refusals_hold(compressed, tmp_path):
    """What the two x86 refusals say, measured with the refusal bypassed: the QAT program converts for x86 but its
    .nb returns NaN or crashes (which of the two changes between runs: an unrelated environment variable was
    enough); the INT8-embedding program does not convert for x86 (no dequantize_log kernel)."""
    from slu import lite

    w = compressed / "width_mult_0.5"
    lite.rewrite_for_lite(str(w / "int8.pdmodel"), str(tmp_path / "int8.pdmodel"))
    run_legacy(["-c", LITE_CONVERT, str(tmp_path / "int8.pdmodel"), str(w / "int8.pdiparams"), str(tmp_path / "int8.x86"),
            "x86"])
    p = run_legacy(["-c", LITE_RUN, str(tmp_path / "int8.x86.nb")], check=False)
    if p.returncode == 0:
        assert json.loads(p.stdout.strip().splitlines()[-1]) == {"nan": True}
    else:
        assert p.returncode == -11, p.stderr[-2000:]  # SIGSEGV
    lite.rewrite_for_lite(str(w / "quant_emb.pdmodel"), str(tmp_path / "quant_emb.pdmodel"))
    p = run_legacy(["-c", LITE_CONVERT, str(tmp_path / "quant_emb.pdmodel"), str(w / "quant_emb.pdiparams"),
                str(tmp_path / "quant_emb.x86"), "x86"], check=False)
    assert p.returncode != 0 and "unsupported ops are: 'dequantize_log'" in p.stdout + p.stderr
    assert not (tmp_path / "quant_emb.x86.nb").exists()


def test_paddle_lite_int8_stages_convert_for_arm(compressed, tmp_path):
    """--lite_target arm converts the INT8 stages: the .nb holds INT8 weights (well under the FP32 pruned one's
    size). Without moving the query scale after Q.K^T, Lite's arm attention fusion (INT8 models only) aborts the
    conversion; the move leaves Paddle Inference's outputs unchanged."""
    import numpy as np

    from slu import lite
    from slu.predictor import PaddleInferenceRuntime

    w = compressed / "width_mult_0.5"
    size = {}
    for prefix in ("pruned", "int8", "quant_emb"):
        p = run_py([DEMO, "--model_dir", str(w), "--model_prefix", prefix, "--backend", "paddle_lite",
                    "--lite_target", "arm"])
        assert p.stdout.strip().splitlines()[-1] == str(w / f"{prefix}.arm.nb")
        size[prefix] = os.path.getsize(w / f"{prefix}.arm.nb")
        assert (w / f"{prefix}.arm.nb.version").read_text().strip() == lite.lite_version() == "2.13rc0"
    assert size["quant_emb"] < size["int8"] < 0.6 * size["pruned"], size
    # the scale move is what makes it convert
    changes = lite.rewrite_for_lite(str(w / "int8.pdmodel"), str(tmp_path / "moved.pdmodel"))
    assert "scale after matmul" in changes and "0-D fill_constant->[1]" in changes
    assert "scale after matmul" not in lite.rewrite_for_lite(str(w / "pruned.pdmodel"), str(tmp_path / "p.pdmodel"))
    lite.rewrite_0d(str(w / "int8.pdmodel"), str(tmp_path / "only0d.pdmodel"))
    p = run_legacy(["-c", LITE_CONVERT, str(tmp_path / "only0d.pdmodel"), str(w / "int8.pdiparams"),
                str(tmp_path / "only0d.arm"), "arm"], check=False)
    assert p.returncode != 0 and "No attributes called X0_scale found for matmul_v2" in p.stdout + p.stderr
    # ... and changes no output: Paddle Inference on both programs
    shutil.copy(w / "int8.pdiparams", tmp_path / "moved.pdiparams")
    ids = np.array([[1, 5, 9, 12, 2, 0], [1, 7, 8, 9, 10, 2]], dtype="int32")
    got, ref = PaddleInferenceRuntime(str(tmp_path / "moved"))(ids), PaddleInferenceRuntime(str(w / "int8"))(ids)
    np.testing.assert_allclose(got[0], ref[0], atol=1e-5)
    np.testing.assert_allclose(got[1], ref[1], atol=1e-5)


def test_paddle_lite_pruned_stage_and_arm_file(compressed, corpus_subset):
    """The width-pruned FP32 stage on Paddle Lite (x86 .nb) answers like run_eval.py; --lite_target arm writes
    the phone's .nb (it cannot run here)."""
    w = compressed / "width_mult_0.5"
    ref = predictions(["run_eval.py", "--infer_prefix", str(w / "pruned"), "--test_path", str(corpus_subset / "dev.txt")])
    got = predictions([DEMO, "--model_dir", str(w), "--model_prefix", "pruned", "--backend", "paddle_lite",
                       "--input_file", str(corpus_subset / "dev.txt"), "--batch_size", "8"])
    assert strip(got) == strip(ref)
    assert (w / "pruned.x86.nb").is_file()
    p = run_py([DEMO, "--model_dir", str(w), "--model_prefix", "pruned", "--backend", "paddle_lite",
                "--lite_target", "arm"])
    assert p.stdout.strip().splitlines()[-1] == str(w / "pruned.arm.nb")
    assert os.path.getsize(w / "pruned.arm.nb") > 100000


def test_lite_rewrite_keeps_outputs(trained_pico, tmp_path):
    """Paddle Lite 2.13rc0 converts the unmodified export, but its .nb aborts at run time on the 0-D fill_constant;
    the rewrite (0-D -> [1], nothing else for an FP32 program) runs and gives the exported model's outputs."""
    import numpy as np

    from slu import lite
    from slu.predictor import PaddleInferenceRuntime

    changes = lite.rewrite_for_lite(str(trained_pico / "infer_model.pdmodel"), str(tmp_path / "m.pdmodel"))
    assert "0-D fill_constant->[1]" in changes
    assert set(changes) <= {"0-D fill_constant->[1]", "0-D var->[1]"}  # Lite 2.10's other rewrites are gone
    run_legacy(["-c", LITE_CONVERT, str(trained_pico / "infer_model.pdmodel"), str(trained_pico / "infer_model.pdiparams"),
            str(tmp_path / "raw.x86"), "x86"])
    p = run_legacy(["-c", LITE_RUN, str(tmp_path / "raw.x86.nb")], check=False)
    assert p.returncode != 0 and "fill_constant" in p.stderr and "no valid out_shape" in p.stderr
    ids = np.array([[1, 5, 9, 12, 2, 0], [1, 7, 8, 9, 10, 2]], dtype="int32")
    nb = lite.convert(str(trained_pico / "infer_model"), "x86")
    run_legacy(["-c", LITE_OUTPUTS, nb, str(tmp_path / "out.npz")])  # Lite's Python API: the legacy environment
    out = np.load(tmp_path / "out.npz")
    got = out["arr_0"], out["arr_1"]
    ref = PaddleInferenceRuntime(str(trained_pico / "infer_model"))(ids)
    np.testing.assert_allclose(got[0], ref[0], atol=1e-4)
    np.testing.assert_allclose(got[1], ref[1], atol=1e-4)
    # cached: reused while the model and the Paddle Lite release are the same, rebuilt when another release wrote it
    mtime = os.path.getmtime(nb)
    assert lite.convert(str(trained_pico / "infer_model"), "x86") == nb and os.path.getmtime(nb) == mtime
    with open(nb + ".version", "w") as f:
        f.write("2.10\n")
    lite.convert(str(trained_pico / "infer_model"), "x86")
    assert open(nb + ".version").read().strip() == lite.lite_version()


def test_openvino_runs_the_rewritten_program(trained_pico, corpus_subset, reference):
    """FastDeploy's OpenVINO backend fails on the export as written (0-D fill_constant) and runs it with the 0-D
    tensors given shape [1]. OpenVINO 2023.0 computes in bfloat16 on CPUs with AVX512-BF16 (FastDeploy 1.0.7 cannot
    ask for float32), so answers may differ from run_eval.py by that rounding: nearly all agree, confidences close."""
    code = ("import sys\n"
            "from slu.predictor import FastDeployRuntime\n"
            "FastDeployRuntime(sys.argv[1], 'openvino')\n")
    p = run_legacy(["-c", code, str(trained_pico / "infer_model")], check=False)
    assert p.returncode != 0 and "Fail to convert fill_constant" in p.stderr
    got = predictions([DEMO, "--model_dir", str(trained_pico), "--backend", "openvino", "--batch_size", "32",
                       "--input_file", str(corpus_subset / "dev.txt")])
    assert len(got) == len(reference) == 150
    same = sum(a == b for a, b in zip(strip(got), strip(reference))) / len(reference)
    worst = max(abs(a["confidence"] - b["confidence"]) for a, b in zip(got, reference))
    print(f"openvino: intents+slots agree with run_eval.py on {100 * same:.1f}%, confidence within {worst:.4f}")
    assert same >= 0.97 and worst < 0.05


def test_predictor_evaluate_equals_run_eval(trained_pico, corpus_subset):
    """Predictor.evaluate on ONNX Runtime (as benchmarks/run.py uses it) scores like run_eval.py --do_eval."""
    from slu import data
    from slu.predictor import Predictor

    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path",
                str(corpus_subset / "dev.txt"), "--do_eval"])
    ref = json.loads(p.stdout.strip().splitlines()[-1])
    pred = Predictor.from_dir(str(trained_pico), backend="onnx_runtime", batch_size=16)
    m = pred.evaluate(data.read_examples(str(corpus_subset / "dev.txt"), pred.labels))
    assert round(m["accuracy"], 6) == ref["accuracy"] and round(m["intent_accuracy"], 6) == ref["intent_accuracy"]


@pytest.mark.parametrize("backend", ["paddle", "onnx_runtime", "paddle_lite"])
def test_fast_tokenizer_predictor_imports_neither_paddle_nor_paddlenlp(trained_pico, backend):
    """With FastTokenizer the deployment process reads the program (ops, input dtype) without importing Paddle or
    PaddleNLP (hundreds of MiB), and still answers like the Python-tokenizer predictor. Each predictor runs in its
    own process (FastDeploy's Paddle backend must not share one with the paddle package)."""
    def run(use_fast):
        code = (
            "import json, sys\n"
            "from slu.predictor import Predictor\n"
            f"p = Predictor.from_dir({str(trained_pico)!r}, backend={backend!r}, batch_size=4, use_fast={use_fast})\n"
            "out = p.predict(['来一首周华健的花心', '打电话给18866668888', '暂停'])\n"
            "print(json.dumps({'out': out, 'dtype': p.input_dtype, 'loaded': sorted(\n"
            "    m for m in sys.modules if m.split('.')[0] in ('paddle', 'paddlenlp'))}))\n")
        p = subprocess.run([envs.python_for_backend(backend), "-c", code], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    fast, ref = run(True), run(False)
    assert fast["loaded"] == [] and fast["dtype"] == "int32"
    assert "paddlenlp" in ref["loaded"]  # the Python tokenizer does import it: the check above can see it
    for a, b in zip(fast["out"], ref["out"]):
        assert (a["intent"], a["slot"]) == (b["intent"], b["slot"])
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-4)


def test_fast_tokenizer_ids_equal_python_tokenizer_on_every_dev_query(trained_pico, corpus_subset):
    from slu import data
    from slu.predictor import PythonTokenizer, fast_tokenizer_from_dir

    queries = [q for _, q in data.read_queries(str(corpus_subset / "dev.txt"))]
    queries += ["播放Taylor Swift的Shape of You", "打电话给18866668888", "来一首周华健的花心" * 3]
    py, fast = PythonTokenizer.from_dir(str(trained_pico)), fast_tokenizer_from_dir(str(trained_pico))
    assert py(queries, 16) == fast(queries, 16)


def test_missing_manifest_or_model_and_empty_query(trained_pico, tmp_path):
    p = run_py([DEMO, "--model_dir", str(tmp_path)], check=False)
    assert p.returncode == 1 and f"{tmp_path / 'deploy_config.json'}: not found" in p.stderr
    for f in ("deploy_config.json", "vocab.txt", "intent_label.txt", "slot_label.txt"):
        shutil.copy(trained_pico / f, tmp_path)
    p = run_py([DEMO, "--model_dir", str(tmp_path)], check=False)
    assert p.returncode == 1 and f"model file not found: {tmp_path / 'infer_model.pdmodel'}" in p.stderr
    p = run_py([DEMO, "--model_dir", str(trained_pico), "--text", "  "], check=False)
    assert p.returncode == 1 and "--text 1: empty query" in p.stderr


@pytest.mark.parametrize("backend", ["onnx_runtime", "paddle_lite"])
def test_max_length_comes_from_the_manifest_and_cannot_exceed_the_positions(trained_pico, backend):
    """Without --max_seq_length the demo truncates at deploy_config.json's max_seq_length (16: 14 tokens + 2); a
    larger value than the pruned position embeddings is refused before any runtime loads."""
    text = "播放" * 10  # 20 tokens
    default = predictions([DEMO, "--model_dir", str(trained_pico), "--backend", backend, "--text", text])
    explicit = predictions([DEMO, "--model_dir", str(trained_pico), "--backend", backend, "--text", text,
                            "--max_seq_length", "16"])
    assert default == explicit and default[0]["truncated"] is True
    p = run_py([DEMO, "--model_dir", str(trained_pico), "--backend", backend, "--text", text, "--max_seq_length", "17"],
               check=False)
    assert p.returncode == 1 and "max length 17 exceeds the model's 16 position embeddings" in p.stderr
    assert "Runtime initialized" not in p.stderr + p.stdout


def test_manifest_that_disagrees_with_the_model_is_refused(trained_pico, tmp_path):
    """A stale deploy_config.json (input dtype, label counts) is refused with the field named."""
    shutil.copytree(trained_pico, tmp_path / "m", ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    config = json.load(open(tmp_path / "m" / "deploy_config.json"))
    for change, message in (
            ({"input_dtype": "int64"}, "infer_model.pdmodel takes int32 ids, deploy_config.json says int64"),
            ({"num_slot_labels": 30}, "the model outputs 30 slot labels, the slot label file has 32"),
            ({"format": "other/9"}, "format must be 'ernie-tiny-slu/1'")):
        json.dump({**config, **change}, open(tmp_path / "m" / "deploy_config.json", "w"))
        p = run_py([DEMO, "--model_dir", str(tmp_path / "m"), "--backend", "onnx_runtime"], check=False)
        assert p.returncode == 1 and message in p.stderr, p.stderr[-2000:]
    (tmp_path / "m" / "deploy_config.json").write_text('{"format": ')
    p = run_py([DEMO, "--model_dir", str(tmp_path / "m")], check=False)
    assert p.returncode == 1 and "deploy_config.json: not valid JSON" in p.stderr

