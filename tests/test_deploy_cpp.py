"""deploy/cpp: the ONNX Runtime C++ demo against golden outputs of the Python pipeline, bad input, ASan."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, run_py

CPP = os.path.join(ROOT, "deploy", "cpp")


def build(tmp_path_factory, asan):
    missing = [t for t in ("g++", "cmake") if not shutil.which(t)]
    if missing:
        print(f"SKIPPED: no {' and '.join(missing)} on this machine: the C++ demo cannot be built")
        pytest.skip(f"no {' and '.join(missing)}: the C++ demo cannot be built")
    d = tmp_path_factory.mktemp("asan_build" if asan else "build")
    p = subprocess.run(["bash", os.path.join(CPP, "build.sh")], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "BUILD_DIR": str(d), "ASAN": "1" if asan else "0",
                            "BUILD_TYPE": "Debug" if asan else "Release"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    return str(d / "infer_demo")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build(tmp_path_factory, asan=False)


@pytest.fixture(scope="module")
def onnx_model(trained_pico):
    out = run_py(["deploy/cpp/convert_to_onnx.py", "--model_dir", str(trained_pico)]).stdout.strip().splitlines()[-1]
    assert out == str(trained_pico / "model.onnx") and os.path.getsize(out) > 100000
    return trained_pico


def run_demo(exe, *args, env=None):
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def golden(trained_pico, dev):
    """The Python pipeline on every dev query: token ids (PaddleNLP tokenizer) and run_eval.py's predictions."""
    import utils
    from paddlenlp.transformers import AutoTokenizer

    queries = [q for _, q in utils.read_queries(str(dev))]
    ids, _, _ = utils.encode_queries(AutoTokenizer.from_pretrained(str(trained_pico)), queries, 16)
    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path", str(dev),
                "--per_device_eval_batch_size", "64"])
    preds = [json.loads(x) for x in p.stdout.strip().splitlines()]
    return queries, ids, preds


@pytest.mark.parametrize("batch_size", [1, 8])
def test_golden_outputs_on_every_dev_query(demo, onnx_model, corpus_subset, batch_size):
    dev = corpus_subset / "dev.txt"
    queries, ids, preds = golden(onnx_model, dev)
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids", "--batch_size", batch_size)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(rows) == len(queries) == 150
    for row, q, i, ref in zip(rows, queries, ids, preds):
        assert row["query"] == q
        assert row["ids"] == i, q
        assert row["intent"] == ref["intent"], q
        assert row["confidence"] == pytest.approx(ref["confidence"], abs=1e-4), q
        assert row["slot"] == ref["slot"], q


def test_tokenizer_edge_cases_match_python(demo, onnx_model, tmp_path):
    """Latin case and accents, full-width forms, punctuation, spaces, digits, unknown characters, truncation."""
    import utils
    from paddlenlp.transformers import AutoTokenizer

    texts = ["播放Taylor Swift的Shape of You", "Café Déjà Vu", "ＡＢＣ１２３", "导航到,北京!西站?", "  打 电话\t给 110 ",
             "放一首𠮷野家", "来一首周华健的花心" * 3, "ÀÉÎÕÜ ñ ß", "ok"]
    tok = AutoTokenizer.from_pretrained(str(onnx_model))
    ids, offsets, truncated = utils.encode_queries(tok, texts, 16)
    p = run_demo(demo, "--model_dir", onnx_model, "--dump_ids", *[a for t in texts for a in ("--text", t)])
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["ids"] for r in rows] == ids
    assert [bool(r.get("truncated")) for r in rows] == truncated


def test_bad_input(demo, onnx_model, tmp_path):
    p = run_demo(demo, "--model_dir", tmp_path)
    assert p.returncode == 1 and f"model file not found: {tmp_path}/model.onnx" in p.stderr
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[SEP]\n你\n", encoding="utf-8")
    p = run_demo(demo, "--model_dir", onnx_model, "--vocab_path", vocab, "--text", "你")
    assert p.returncode == 1 and f"{vocab}: vocab has no [CLS] token" in p.stderr
    p = run_demo(demo, "--model_dir", onnx_model, "--vocab_path", tmp_path / "none.txt", "--text", "你")
    assert p.returncode == 1 and "vocab file not found" in p.stderr
    q = tmp_path / "q.txt"
    q.write_bytes("来一首周华健的花心\n\n".encode() + b"\xff\xfe\xc3\n" + "暂停\n".encode())
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", q)
    assert p.returncode == 0
    assert [json.loads(x)["query"] for x in p.stdout.splitlines()] == ["来一首周华健的花心", "暂停"]
    assert f"{q}:2: empty line, skipped" in p.stderr and f"{q}:3: not valid UTF-8 (byte 0), skipped" in p.stderr
    p = run_demo(demo, "--model_dir", onnx_model, "--batch_size", "zero")
    assert p.returncode == 1 and "--batch_size needs a number, not 'zero'" in p.stderr


def test_slot_ids_and_stats_json(demo, onnx_model, corpus_subset, tmp_path):
    """--dump_ids also writes each token's slot label id: decoded by the project's utils.decode_slots on
    PaddleNLP's offsets they give the demo's slots. --stats_json counts what it timed and reads its memory."""
    import utils
    from paddlenlp.transformers import AutoTokenizer

    queries = [q for _, q in utils.read_queries(str(corpus_subset / "dev.txt"))][:20]
    q = tmp_path / "q.txt"
    q.write_text("\n".join(queries) + "\n", encoding="utf-8")
    stats = tmp_path / "stats.json"
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", q, "--dump_ids", "--repeat", "3",
                 "--stats_json", stats)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    labels = utils.LabelSet.from_dir(str(onnx_model))
    _, offsets, _ = utils.encode_queries(AutoTokenizer.from_pretrained(str(onnx_model)), queries, 16)
    for row, text, off in zip(rows, queries, offsets):
        assert len(row["slot_ids"]) == len(row["ids"])
        assert utils.decode_slots(text, off, row["slot_ids"], labels) == row["slot"], text
    s = json.load(open(stats))
    assert (s["queries"], s["timed_passes"], s["batch_size"], s["cpu_num_threads"]) == (20, 2, 1, 1)
    assert 0 < s["tokenizer_ms"] < s["p50_ms"] <= s["p90_ms"] and 0 < s["runtime_ms"] < s["p50_ms"]
    assert 0 < s["pss_mib"] <= s["rss_mib"] <= s["peak_rss_mib"]
    p = run_demo(demo, "--model_dir", onnx_model, "--text", "你好", "--stats_json", tmp_path / "no" / "s.json")
    assert p.returncode == 1 and f"cannot write {tmp_path / 'no' / 's.json'}" in p.stderr


def test_runs_clean_under_address_sanitizer(tmp_path_factory, onnx_model, corpus_subset):
    exe = build(tmp_path_factory, asan=True)
    q = tmp_path_factory.mktemp("asan") / "q.txt"
    q.write_bytes(open(corpus_subset / "dev.txt", "rb").read() + b"\n\xff\n" + "播放Taylor Swift的Shape of You\n".encode())
    p = run_demo(exe, "--model_dir", onnx_model, "--input_file", q, "--batch_size", "4", "--dump_ids",
                 "--repeat", "2", "--stats_json", q.parent / "stats.json",
                 env={"ASAN_OPTIONS": "halt_on_error=1:detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"})
    assert p.returncode == 0 and "ERROR: AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, \
        p.stderr[-4000:]
    assert len(p.stdout.splitlines()) == 151
