"""The two environments (slu/envs.py, scripts/setup.sh): what each holds, that the locks pin them, and that the
commands needing the legacy one get there by themselves with the same answers."""
import json
import os
import shutil
import subprocess

import numpy as np

from conftest import ROOT, run_py

DEFAULT = os.path.join(ROOT, ".venv", "bin", "python")
LEGACY = os.path.join(ROOT, ".venv-legacy", "bin", "python")
VERSIONS = ("import sys, json; from importlib import metadata as m; "
            "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
            "**{n: m.version(n) for n in sys.argv[1:]}}))")


def versions(python, *packages):
    p = subprocess.run([python, "-c", VERSIONS, *packages], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def major_minor(version):
    return tuple(int(x) for x in version.split(".")[:2])


def test_the_default_environment_is_todays_stack():
    v = versions(DEFAULT, "paddlepaddle", "onnxruntime", "uvicorn", "paddle2onnx")
    assert v["python"] == "3.12"
    assert major_minor(v["paddlepaddle"]) >= (3, 0) and major_minor(v["paddle2onnx"]) >= (2, 0)
    assert major_minor(v["onnxruntime"]) >= (1, 22) and major_minor(v["uvicorn"]) >= (0, 30)
    p = subprocess.run([DEFAULT, "-c", "import fastdeploy"], capture_output=True, text=True)
    assert p.returncode != 0  # what the legacy environment is for


def test_the_legacy_environment_imports_fastdeploy_lite_and_fast_tokenizer():
    v = versions(LEGACY, "fastdeploy-python", "paddlelite", "fast-tokenizer-python")
    assert v["python"] == "3.9" and v["fastdeploy-python"] == "1.0.7" and v["paddlelite"] == "2.13rc0"
    subprocess.run([LEGACY, "-c", "import fastdeploy, paddlelite.lite, fast_tokenizer"], check=True,
                   capture_output=True)


def test_each_lock_pins_exactly_what_its_environment_holds():
    for python, lock in ((DEFAULT, "requirements.lock"), (LEGACY, "requirements-legacy.lock")):
        frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                                text=True, check=True).stdout
        installed = {x.lower() for x in frozen.split() if "==" in x}
        locked = {x.strip().lower() for x in open(os.path.join(ROOT, lock)) if "==" in x}
        assert installed == locked, (lock, sorted(installed ^ locked))
        p = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout


def test_the_export_is_the_dygraph_model_as_a_program_every_runtime_reads(trained_pico):
    """On Paddle 3 the .pdmodel is written in the legacy environment from the same weights: Paddle 3's Inference
    runs it and answers as the fine-tuned dygraph model does in this process."""
    script = (
        "import sys, json, numpy as np\n"
        "from slu import manifest, program\n"
        "from slu.predictor import PaddleInferenceRuntime\n"
        "import paddle\n"
        "from slu.model import JointErnie\n"
        "d = sys.argv[1]; cfg = manifest.read(d); labels = manifest.labels(d, cfg)\n"
        "ids = np.random.RandomState(3).randint(1, cfg['vocab_size'], size=(5, 11)).astype('int32')\n"
        "ids[:, 0] = 1\n"
        "m = JointErnie.from_pretrained(d, intent_dim=len(labels.intents), slot_dim=len(labels.slots)); m.eval()\n"
        "intent, slots = [t.numpy() for t in m(paddle.to_tensor(ids))[:2]]\n"
        "rt = PaddleInferenceRuntime(d + '/infer_model', mkldnn=False)\n"
        "s_intent, s_slots = rt(ids)\n"
        "ops = sorted(program.program_ops(d + '/infer_model.pdmodel'))\n"
        "print(json.dumps({'paddle': paddle.__version__, 'ops': ops,"
        " 'intent': float(np.abs(intent - s_intent).max()), 'slots': float(np.abs(slots - s_slots).max()),"
        " 'spread': float(np.abs(intent).max())}))\n")
    p = run_py(["-c", script, str(trained_pico)])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["paddle"].startswith("3.") and "matmul_v2" in r["ops"]
    assert r["spread"] > 0.1 and r["intent"] < 1e-4 and r["slots"] < 1e-4, r


def test_paddle_3_runs_its_own_pir_program_written_beside_the_pdmodel(trained_pico, corpus_subset, tmp_path):
    """The export also writes Paddle 3's PIR program (infer_model.json) on the same .pdiparams; Paddle Inference
    runs it, with the .pdmodel's outputs, and run_eval.py scores a directory holding only it as the full one."""
    script = (
        "import sys, json, os, shutil, numpy as np\n"
        "from slu.predictor import PaddleInferenceRuntime\n"
        "d, copy = sys.argv[1], sys.argv[2]\n"
        "os.makedirs(copy); [shutil.copy(d + '/infer_model' + e, copy) for e in ('.pdmodel', '.pdiparams')]\n"
        "ids = np.random.RandomState(4).randint(1, 200, size=(4, 9)).astype('int32')\n"
        "pir, pdmodel = PaddleInferenceRuntime(d + '/infer_model'), PaddleInferenceRuntime(copy + '/infer_model')\n"
        "diff = [float(np.abs(a - b).max()) for a, b in zip(pir(ids), pdmodel(ids))]\n"
        "print(json.dumps({'files': [pir.program_file, pdmodel.program_file], 'diff': diff}))\n")
    p = run_py(["-c", script, str(trained_pico), str(tmp_path / "pdmodel_only")])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["files"] == [str(trained_pico / "infer_model.json"),
                          str(tmp_path / "pdmodel_only" / "infer_model.pdmodel")]
    assert max(r["diff"]) < 1e-5, r
    with open(trained_pico / "infer_model.json") as f:
        assert json.load(f)["base_code"]["magic"] == "pir"
    pir_only = tmp_path / "pir_only"
    shutil.copytree(trained_pico, pir_only, ignore=shutil.ignore_patterns("checkpoint-*", "runs", "*.pdmodel"))
    scores = []
    for d in (trained_pico, pir_only):
        p = run_py(["run_eval.py", "--infer_prefix", str(d / "infer_model"), "--test_path",
                    str(corpus_subset / "dev.txt"), "--do_eval"])
        scores.append(json.loads(p.stdout.strip().splitlines()[-1]))
    assert scores[0]["examples"] == 150 and scores[1] == scores[0]


def test_a_fastdeploy_backend_started_in_the_default_environment_answers_there(trained_pico):
    """`--backend paddle` (FastDeploy) from .venv: the command restarts itself in .venv-legacy and answers as
    Paddle Inference does in .venv."""
    queries = ["来一首周华健的花心", "导航到古田", "打电话给18866668888"]
    args = [os.path.join(ROOT, "deploy", "python", "infer_demo.py"), "--model_dir", str(trained_pico)]
    for q in queries:
        args += ["--text", q]
    answers = {}
    for backend in ("paddle", "paddle_inference"):
        p = subprocess.run([DEFAULT, *args, "--backend", backend], capture_output=True, text=True, cwd=ROOT)
        assert p.returncode == 0, p.stderr[-2000:]
        answers[backend] = [json.loads(x) for x in p.stdout.splitlines()]
    assert [a["query"] for a in answers["paddle"]] == queries
    for a, b in zip(answers["paddle"], answers["paddle_inference"]):
        assert a["intent"] == b["intent"] and a["slot"] == b["slot"]
        assert np.isclose(a["confidence"], b["confidence"], atol=1e-4)


def test_compression_runs_in_the_default_environment(compressed):
    """compress.sh no longer restarts in .venv-legacy: the pruned stage was exported by Paddle 3 (its PIR program
    beside the .pdmodel), and the QAT and INT8-embedding stages are .pdmodel programs that Paddle 3 runs."""
    w = compressed / "width_mult_0.5"
    with open(w / "pruned.json") as f:
        assert json.load(f)["base_code"]["magic"] == "pir"
    assert not (w / "int8.json").exists() and not (w / "quant_emb.json").exists()
    script = ("import sys; from slu import program\n"
              "for s in ('int8', 'quant_emb'): print(s, sorted(program.program_ops(sys.argv[1] + '/' + s + '.pdmodel')"
              " & {'quantize_linear', 'dequantize_linear', 'dequantize_log'}))\n")
    out = run_py(["-c", script, str(w)]).stdout.splitlines()
    assert out == ["int8 ['dequantize_linear', 'quantize_linear']",
                   "quant_emb ['dequantize_linear', 'dequantize_log', 'quantize_linear']"]
