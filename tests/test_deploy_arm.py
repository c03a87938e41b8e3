"""deploy/cpp on aarch64, run under qemu-aarch64-static: the ONNX Runtime demo cross-compiled against ONNX Runtime's
aarch64 library passes the x86 demo's golden tests (imported from test_deploy_cpp.py, run here on the aarch64
programs); lite_demo, the demo on Paddle Lite's light API built from the vendored source (scripts/build_lite_arm.sh),
runs the arm .nb files on Lite's ARM kernels: FP32 against x86 Lite, INT8 against x86 Paddle Inference. Never
skipped: without the cross compiler or qemu the tests fail, saying what to install."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, run_py
from test_deploy_cpp import (  # noqa: F401  (the x86 golden tests and their fixtures, run on aarch64 here)
    context_model, json_rows, one_line_error, onnx_model, python_tokenizer, run_demo,
    test_context_encoding_equals_add_context, test_context_model_end_to_end_equals_python_predictor,
    test_golden_outputs_on_every_dev_query, test_slot_decoding_equals_slot_decoder,
    test_tokenizer_edge_cases_match_python, test_unicode_tables_equal_paddlenlp_for_every_code_point,
    test_vocab_read_as_paddlenlp_reads_it)

BUILD = os.path.join(ROOT, "deploy", "cpp", "build.sh")
BUILD_LITE = os.path.join(ROOT, "scripts", "build_lite_arm.sh")
FETCH_ORT = os.path.join(ROOT, "deploy", "cpp", "fetch_onnxruntime.sh")
QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]
DEMO = "deploy/python/infer_demo.py"


def require_arm_tools():
    missing = [t for t in ("aarch64-linux-gnu-g++", "qemu-aarch64-static", "cmake") if not shutil.which(t)]
    if missing:
        pytest.fail(f"no {', '.join(missing)} on this machine: install them with `bash scripts/system_packages.sh` "
                    "(as root; apt-get install g++-aarch64-linux-gnu qemu-user-static)")


def cross_build(tmp_path_factory, runtime):
    """build.sh for aarch64; returns the build directory, where each aarch64 program has a qemu wrapper of its name
    under qemu/ (the tests run those as they run the x86 programs)."""
    require_arm_tools()
    d = tmp_path_factory.mktemp(f"aarch64_{runtime}")
    p = subprocess.run(["bash", BUILD], capture_output=True, text=True, timeout=5400,
                       env={**os.environ, "ARCH": "aarch64", "RUNTIME": runtime, "BUILD_DIR": str(d)})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    programs = ["lite_demo"] if runtime == "lite" else ["slu_bench", "infer_demo"]
    assert p.stdout.splitlines()[-len(programs):] == [str(d / x) for x in programs]
    (d / "qemu").mkdir()
    for name in programs + ["slu_chars", "slu_golden"]:
        head = open(d / name, "rb").read(20)
        assert head[:4] == b"\x7fELF" and head[18] == 183, name  # e_machine EM_AARCH64: really an aarch64 program
        wrapper = d / "qemu" / name
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(QEMU)} "{d / name}" "$@"\n')
        wrapper.chmod(0o755)
    return d / "qemu"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The aarch64 infer_demo (ONNX Runtime 1.21.0's aarch64 library: 1.32.0's crashes under qemu) under qemu: the imported golden tests' demo."""
    return str(cross_build(tmp_path_factory, "ort") / "infer_demo")


@pytest.fixture(scope="module")
def lite_demo(tmp_path_factory):
    return str(cross_build(tmp_path_factory, "lite") / "lite_demo")


def python_rows(model_dir, prefix, backend, queries_file):
    """deploy/python/infer_demo.py's answers on x86 (the Python pipeline on `backend`), batch 8."""
    p = run_py([DEMO, "--model_dir", str(model_dir), "--model_prefix", prefix, "--backend", backend,
                "--input_file", str(queries_file), "--batch_size", "8"])
    return json_rows(p.stdout)


def lite_rows(lite_demo, model_dir, nb, queries_file):
    p = run_demo(lite_demo, "--model_dir", model_dir, "--model_file", nb, "--input_file", queries_file,
                 "--batch_size", "8")
    assert p.returncode == 0, p.stderr[-3000:]
    return json_rows(p.stdout)


def answers(row):
    return row["intent"], row["slot"]


def test_lite_arm_fp32_equals_x86_lite(lite_demo, trained_pico, corpus_subset):
    """The FP32 model's arm .nb on Lite's ARM kernels gives x86 Lite's answers (intent, slots; confidence to 1e-4)
    on every dev query."""
    from slu import lite

    dev = corpus_subset / "dev.txt"
    nb = lite.convert(str(trained_pico / "infer_model"), "arm")
    arm = lite_rows(lite_demo, trained_pico, nb, dev)
    x86 = python_rows(trained_pico, "infer_model", "paddle_lite", dev)
    assert len(arm) == len(x86) == 150
    assert len({r["intent"] for r in x86}) > 1  # the premise: a model that tells queries apart
    for a, x in zip(arm, x86):
        assert a["query"] == x["query"]
        assert answers(a) == answers(x), a["query"]
        assert a["confidence"] == pytest.approx(x["confidence"], abs=1e-4), a["query"]


# The QAT program run as written (its quantize/dequantize ops in float), one process: paddle.inference must not share
# one with FastDeploy
AS_WRITTEN = r"""
import json, sys
from slu import data
from slu.predictor import Predictor
model_dir, prefix, queries_file = sys.argv[1:4]
p = Predictor.from_dir(model_dir, model_prefix=prefix, backend="paddle_inference", mkldnn=False, batch_size=8)
for r in p.predict([q for _, q in data.read_queries(queries_file)]):
    print(json.dumps(r, ensure_ascii=False))
"""

# Measured on the test's model (150 dev queries, 2026-12-07): arm Lite equals the program as written on 147 (int8) and
# 149 (quant_emb) here, 146 (int8) in a CI run on another machine (its fixture trained there). The fixture is a
# weak model (intent confidences near 0.5 are common), so INT8 rounding flips near-ties and the count moves by a few
# from CPU to CPU: the bound is 95% here. The 98% target is for the recipe models on the whole dev file
# (benchmarks/arm_accuracy.py, docs/results.md). A wrong kernel is far below either: x86 Lite's QAT .nb scored 31%.
@pytest.mark.parametrize("prefix", ["int8", "quant_emb"])
def test_lite_arm_int8_agrees_with_the_qat_program(lite_demo, compressed, corpus_subset, prefix):
    """The INT8 stages' arm .nb (INT8 matmul; INT8 matmul + embeddings) on Lite's ARM INT8 kernels against the same
    QAT program run as written on x86 Paddle Inference (quantize/dequantize in float; oneDNN's INT8 path is another
    INT8 implementation, further from both): the same function within INT8 rounding (intent confidence within 0.05,
    median within 0.01, where the intents agree), and the same intent and slots on at least 95% of the dev queries."""
    from slu import lite

    w = compressed / "width_mult_0.5"
    dev = corpus_subset / "dev.txt"
    nb = lite.convert(str(w / prefix), "arm")
    arm = lite_rows(lite_demo, w, nb, dev)
    x86 = json_rows(run_py(["-c", AS_WRITTEN, str(w), prefix, str(dev)]).stdout)
    assert len(arm) == len(x86) == 150
    assert len({r["intent"] for r in x86}) > 1
    diffs = sorted(abs(a["confidence"] - x["confidence"]) for a, x in zip(arm, x86) if a["intent"] == x["intent"])
    assert len(diffs) >= 0.95 * len(x86) and diffs[-1] < 0.05 and diffs[len(diffs) // 2] < 0.01, diffs[-5:]
    same = sum(answers(a) == answers(x) for a, x in zip(arm, x86))
    print(f"{prefix}: arm Lite equals the QAT program on x86 on {same} of {len(x86)} queries")
    assert same >= 0.95 * len(x86), f"{prefix}: {same} of {len(x86)} equal"


def test_lite_demo_bad_input(lite_demo, trained_pico, tmp_path):
    """A missing .nb, an x86 .nb, one that another paddlelite release wrote, a file that is no model and ONNX
    Runtime's options are one-line errors (Paddle Lite's own log lines kept off stderr)."""
    from slu import lite

    p = run_demo(lite_demo, "--model_dir", trained_pico, "--model_file", tmp_path / "none.arm.nb", "--text", "你好")
    assert f"model file not found: {tmp_path}/none.arm.nb" in one_line_error(p, "lite_demo")
    x86 = lite.convert(str(trained_pico / "infer_model"), "x86")
    p = run_demo(lite_demo, "--model_dir", trained_pico, "--model_file", x86, "--text", "你好")
    assert "an x86 .nb; this program runs the arm one" in one_line_error(p, "lite_demo")
    junk = tmp_path / "junk.arm.nb"
    junk.write_bytes(os.urandom(4096))
    p = run_demo(lite_demo, "--model_dir", trained_pico, "--model_file", junk, "--text", "你好")
    assert f"{junk}: Paddle Lite: The model format cannot be recognized" in one_line_error(p, "lite_demo")
    old = tmp_path / "old.arm.nb"
    shutil.copy(lite.convert(str(trained_pico / "infer_model"), "arm"), old)
    (tmp_path / "old.arm.nb.version").write_text("2.10\n")
    p = run_demo(lite_demo, "--model_dir", trained_pico, "--model_file", old, "--text", "你好")
    assert f"{old}: written by paddlelite 2.10" in one_line_error(p, "lite_demo")
    p = run_demo(lite_demo, "--model_dir", trained_pico, "--graph_optimization", "basic", "--text", "你好")
    assert "--graph_optimization is an ONNX Runtime session option" in one_line_error(p, "lite_demo")


def test_lite_build_is_cached_and_checks_its_inputs(lite_demo, tmp_path):
    """The second build_lite_arm.sh returns the cached build at once; an archive whose sha256 differs from the
    pinned one, or a cached library that no longer matches its record, is refused."""
    p = subprocess.run(["bash", BUILD_LITE], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "building" not in p.stderr, p.stderr
    cached = p.stdout.splitlines()[-1]
    info = open(os.path.join(cached, "BUILD_INFO")).read()
    assert "options --arch=armv8 --toolchain=gcc --with_extra=ON --with_exception=ON" in info
    bad = tmp_path / "paddle-lite.tar.xz"
    bad.write_bytes(open(os.path.join(ROOT, "vendor", "paddle-lite-v2.13-rc-102697b.tar.xz"), "rb").read()[:-1])
    p = subprocess.run(["bash", BUILD_LITE], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "LITE_ARCHIVE": str(bad), "LITE_CACHE_DIR": str(tmp_path / "cache")})
    assert p.returncode == 1 and f"{bad}: sha256 mismatch" in p.stderr
    copy = tmp_path / "copy" / os.path.basename(cached)
    shutil.copytree(cached, copy, symlinks=True)
    with open(copy / "lib" / "libpaddle_light_api_shared.so", "ab") as f:
        f.write(b"\0")
    p = subprocess.run(["bash", BUILD_LITE], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "LITE_CACHE_DIR": str(tmp_path / "copy")})
    assert p.returncode == 1 and "does not match its recorded sha256" in p.stderr


OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "npm_config_registry": "http://127.0.0.1:9/",
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_INDEX": "1"}


def test_onnxruntime_fetch_works_offline_from_its_cache_and_checks_sha256(demo, tmp_path):
    """With the downloads cached (the demo fixture fetched them) and no network, fetch_onnxruntime.sh unpacks both
    architectures again; a cached download that differs from its pinned sha256 is not used."""
    env = {**os.environ, **OFFLINE, "ORT_CACHE_DIR": str(tmp_path / "cache")}
    for arch, version, machine in (("x86_64", "1.32.0", 62), ("aarch64", "1.21.0", 183)):
        ort = subprocess.run(["bash", FETCH_ORT, arch], capture_output=True, text=True, timeout=120).stdout
        cache = tmp_path / "cache" / f"onnxruntime-{version}"
        shutil.copytree(os.path.join(os.path.dirname(ort.splitlines()[-1]), "downloads"), cache / "downloads")
        p = subprocess.run(["bash", FETCH_ORT, arch], capture_output=True, text=True, timeout=120, env=env)
        assert p.returncode == 0 and "downloading" not in p.stderr, p.stderr
        lib = cache / arch / "lib" / f"libonnxruntime.so.{version}"
        assert p.stdout.splitlines()[-1] == str(cache / arch) and open(lib, "rb").read(20)[18] == machine
    shutil.rmtree(cache / "aarch64")
    wheel = next((cache / "downloads").glob("*aarch64.whl"))
    with open(wheel, "ab") as f:
        f.write(b"\0")
    p = subprocess.run(["bash", FETCH_ORT, "aarch64"], capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1 and "could not download" in p.stderr and not (cache / "aarch64").exists()


@pytest.mark.parametrize("which", ["infer_model", "int8"])
def test_arm_cost_counts_attention_apart_from_the_weights(trained_pico, compressed, which):
    """benchmarks/arith.py's ARM figure: the activation-by-activation multiply-adds are attention's Q.K^T and P.V
    (2 * heads * L * L * head_dim a layer, the closed form), the rest are the weight matmuls; on Cortex-A76 at 2.6
    GHz the INT8 stage runs the weights at 32 and attention at 8 multiply-adds a cycle."""
    from helpers import script_module
    from test_benchmarks import closed_form_macs
    from slu import manifest

    arith = script_module("benchmarks/arith.py")
    d = trained_pico if which == "infer_model" else compressed / "width_mult_0.5"
    config = json.load(open(d / "config.json"))
    labels = manifest.labels(str(d))
    heads = int(config["num_attention_heads"] * config.get("width_mult", 1.0))
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    for seq_len in (3, 11):
        weight, activation = arith.split_macs(str(d / f"{which}.pdmodel"), seq_len)
        assert activation == config["num_hidden_layers"] * 2 * heads * seq_len * seq_len * head_dim
        assert weight + activation == closed_form_macs(config, seq_len, len(labels.intents), len(labels.slots))
        int8 = which == "int8"
        expected = (weight / (32 if int8 else 8) + activation / 8) / 2.6e9 * 1e3
        assert arith.arm_limit_ms(weight, activation, "cortex-a76", int8) == pytest.approx(expected)
