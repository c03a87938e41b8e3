"""deploy/cpp: the ONNX Runtime C++ demo against golden outputs of the Python pipeline, the deployment manifest,
bad input, slu_bench, ASan."""
import json
import os
import shutil
import subprocess
import unicodedata

import numpy as np
import pytest

import deploy_golden
from conftest import ROOT, run_py, run_script
from helpers import TOKENIZER_EDGE_CASES, missing_prerequisite

CPP = os.path.join(ROOT, "deploy", "cpp")
MANIFEST = "deploy_config.json"


def build(tmp_path_factory, asan):
    missing = [t for t in ("g++", "cmake") if not shutil.which(t)]
    if missing:
        missing_prerequisite(f"no {' and '.join(missing)}: the C++ demo cannot be built", "bash scripts/system_packages.sh")
    d = tmp_path_factory.mktemp("asan_build" if asan else "build")
    p = subprocess.run(["bash", os.path.join(CPP, "build.sh")], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "BUILD_DIR": str(d), "ASAN": "1" if asan else "0",
                            "BUILD_TYPE": "Debug" if asan else "Release"})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    assert p.stdout.splitlines()[-2:] == [str(d / "slu_bench"), str(d / "infer_demo")]
    return str(d / "infer_demo")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build(tmp_path_factory, asan=False)


def test_demo_loads_the_python_environments_onnxruntime_library(demo):
    """One ONNX Runtime for Python and C++: the library the demo resolves at run time is, byte for byte, the one
    the default environment's onnxruntime package loads (1.32.0)."""
    import hashlib
    import onnxruntime

    ldd = subprocess.run(["ldd", demo], capture_output=True, text=True, timeout=60).stdout
    loaded = [line.split("=>")[1].split()[0] for line in ldd.splitlines() if "libonnxruntime.so" in line]
    python_lib = os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.1.32.0")
    assert onnxruntime.__version__ == "1.32.0" and len(loaded) == 1
    assert os.path.basename(os.path.realpath(loaded[0])) == "libonnxruntime.so.1.32.0"
    digest = [hashlib.sha256(open(f, "rb").read()).hexdigest() for f in (loaded[0], python_lib)]
    assert digest[0] == digest[1]


def bench_of(demo_exe):
    return os.path.join(os.path.dirname(demo_exe), "slu_bench")


@pytest.fixture(scope="module")
def onnx_model(trained_pico):
    out = run_py(["deploy/cpp/convert_to_onnx.py", "--model_dir", str(trained_pico)]).stdout.strip().splitlines()[-1]
    assert out == str(trained_pico / "model.onnx") and os.path.getsize(out) > 100000
    return trained_pico


def run_demo(exe, *args, env=None):
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def one_line_error(p, exe="infer_demo"):
    """The process failed with exit status 1 and one line on stderr; returns that line."""
    assert p.returncode == 1 and p.stdout == "", p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{exe}: error: "), p.stderr
    return lines[0]


def model_copy(src, dst, manifest_text=None):
    """model.onnx, vocabulary and labels of `src` in `dst`, with `manifest_text` as deploy_config.json (none when
    None)."""
    dst.mkdir(exist_ok=True)
    for name in ("model.onnx", "vocab.txt", "intent_label.txt", "slot_label.txt"):
        shutil.copy(src / name, dst / name)
    if manifest_text is not None:
        (dst / MANIFEST).write_text(manifest_text, encoding="utf-8")
    return dst


def golden(trained_pico, queries_file):
    """The Python pipeline on every query of a file: token ids (PaddleNLP tokenizer) and run_eval.py's
    predictions."""
    from slu import data
    from paddlenlp.transformers import AutoTokenizer

    queries = [q for _, q in data.read_queries(str(queries_file))]
    ids, _, _ = data.encode_queries(AutoTokenizer.from_pretrained(str(trained_pico)), queries, 16)
    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path", str(queries_file),
                "--per_device_eval_batch_size", "64"])
    preds = [json.loads(x) for x in p.stdout.strip().split("\n")]  # not splitlines(): queries hold U+2028
    return queries, ids, preds


def assert_demo_matches(rows, queries, ids, preds):
    assert len(rows) == len(queries)
    for row, q, i, ref in zip(rows, queries, ids, preds):
        assert row["query"] == ref["query"] == q
        assert row["ids"] == i, q
        assert row["intent"] == ref["intent"], q
        assert row["confidence"] == pytest.approx(ref["confidence"], abs=1e-4), q
        assert row["slot"] == ref["slot"], q


def json_rows(stdout):
    return [json.loads(x) for x in stdout.split("\n") if x]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_golden_outputs_on_every_dev_query(demo, onnx_model, corpus_subset, batch_size):
    dev = corpus_subset / "dev.txt"
    queries, ids, preds = golden(onnx_model, dev)
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids", "--batch_size", batch_size)
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(queries) == 150
    assert_demo_matches(json_rows(p.stdout), queries, ids, preds)


# C0/C1 separators and U+FFFD dropped; the marks of a word in canonical order (NFD swaps U+1D16D and U+1D165)
EDGE_CASES = TOKENIZER_EDGE_CASES + ["  打 电话\t给 110 ", "x\ufffdy", "a\U0001d16d\U0001d165b", "Ab\u0301\u0316c"]


def test_tokenizer_edge_cases_match_python(demo, onnx_model, tmp_path):
    """Case, accents, full-width forms, punctuation, symbols, dropped and whitespace characters, digits, unknown
    characters, truncation: ids equal PaddleNLP's, outputs equal run_eval.py's."""
    q = tmp_path / "edge.txt"
    q.write_text("\n".join(EDGE_CASES) + "\n", encoding="utf-8")
    queries, ids, preds = golden(onnx_model, q)
    assert queries == EDGE_CASES
    p = run_demo(demo, "--model_dir", onnx_model, "--dump_ids", "--input_file", q, "--batch_size", 4)
    assert p.returncode == 0, p.stderr
    rows = json_rows(p.stdout)
    assert_demo_matches(rows, queries, ids, preds)
    assert [bool(r.get("truncated")) for r in rows] == [bool(r.get("truncated")) for r in preds]


def test_vocab_read_as_paddlenlp_reads_it(demo, onnx_model, tmp_path):
    """A repeated token keeps its last line, lines end at \\n, \\r\\n or \\r (Python's universal newlines), and
    the symbols split off (℃, ¥, ×, ², µ, ～, 〇) and marks in canonical order find their vocabulary lines."""
    from slu import data
    from paddlenlp.transformers import AutoTokenizer

    lines = (onnx_model / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    extra = ["℃", "¥", "×", "²", "µ", "～", "〇", "a\U0001d165\U0001d16d", "的", "[UNK]", "26"]
    first_de, n = lines.index("的"), len(lines)
    lines[n - len(extra):] = extra
    d = model_copy(onnx_model, tmp_path / "m", (onnx_model / MANIFEST).read_text(encoding="utf-8"))
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(onnx_model / name, d / name)
    ends = ["\n", "\r\n", "\r"]
    (d / "vocab.txt").write_bytes("".join(t + ends[k % 3] for k, t in enumerate(lines)).encode("utf-8"))
    texts = EDGE_CASES + ["我的歌", "\U0001f600", "26"]
    ids, _, _ = data.encode_queries(AutoTokenizer.from_pretrained(str(d)), texts, 16)
    assert (ids[-3][2], ids[-2][1], ids[-1][1]) == (n - 3, n - 2, n - 1) and first_de < n - 3  # the test's premise
    p = run_demo(demo, "--model_dir", d, "--dump_ids", *[a for t in texts for a in ("--text", t)])
    assert p.returncode == 0, p.stderr
    assert [r["ids"] for r in json_rows(p.stdout)] == ids


def chars_of(demo_exe):
    return os.path.join(os.path.dirname(demo_exe), "slu_chars")


def paddlenlp_chars():
    """What slu_chars prints, from PaddleNLP's own predicates and unicodedata: the classes (dropped by _clean_text,
    whitespace, CJK, punctuation or symbol, Mn) and combining class of every code point, run-length encoded, then
    every code point that lower-casing (per character, then per word) and NFD change."""
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer
    from paddlenlp.transformers.tokenizer_utils import _is_control, _is_punctuation, _is_symbol, _is_whitespace

    basic = BasicTokenizer()
    rows, last = [f"unicode {unicodedata.unidata_version}"], None
    for cp in range(0x110000):
        ch = chr(cp)
        flags = [cp in (0, 0xFFFD) or _is_control(ch), _is_whitespace(ch) or ch.isspace(),
                 basic._is_chinese_char(cp), _is_punctuation(ch) or _is_symbol(ch), unicodedata.category(ch) == "Mn"]
        key = f"{''.join(c for c, on in zip('dwzpm', flags) if on) or '.'} {unicodedata.combining(ch)}"
        if key != last:
            rows.append(f"{cp:x} {key}")
        last = key
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        d = unicodedata.normalize("NFD", chr(cp).lower().lower())
        if d != chr(cp):
            rows.append(f"{cp:x} " + ",".join(f"{ord(x):x}" for x in d))
    return rows


def test_unicode_tables_equal_paddlenlp_for_every_code_point(demo):
    """The tables that the build generated (gen_unicode_tables.py restates PaddleNLP's predicates) give, in C++,
    PaddleNLP's classes and normalization for every code point."""
    p = run_demo(chars_of(demo))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:-1] == paddlenlp_chars()


def test_bad_input(demo, onnx_model, tmp_path):
    shutil.copy(onnx_model / MANIFEST, tmp_path / MANIFEST)
    p = run_demo(demo, "--model_dir", tmp_path)
    assert p.returncode == 1 and f"model file not found: {tmp_path}/model.onnx" in p.stderr
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n[SEP]\n你\n", encoding="utf-8")
    p = run_demo(demo, "--model_dir", onnx_model, "--vocab_path", vocab, "--text", "你")
    assert p.returncode == 1 and f"{vocab}: vocab has no [CLS] token" in p.stderr
    p = run_demo(demo, "--model_dir", onnx_model, "--vocab_path", tmp_path / "none.txt", "--text", "你")
    assert p.returncode == 1 and "vocab file not found" in p.stderr
    vocab.write_bytes("[PAD]\n[UNK]\r\n[SEP]\r[CLS]\nab\xffc\n".encode("latin-1"))
    p = run_demo(demo, "--model_dir", onnx_model, "--vocab_path", vocab, "--text", "你")
    assert f"{vocab}:5: not valid UTF-8 (byte 2)" in one_line_error(p)
    q = tmp_path / "q.txt"
    q.write_bytes("来一首周华健的花心\n\n".encode() + b"\xff\xfe\xc3\n" + "暂停\n".encode())
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", q)
    assert p.returncode == 0
    assert [json.loads(x)["query"] for x in p.stdout.splitlines()] == ["来一首周华健的花心", "暂停"]
    assert f"{q}:2: empty line, skipped" in p.stderr and f"{q}:3: not valid UTF-8 (byte 0), skipped" in p.stderr
    p = run_demo(demo, "--model_dir", onnx_model, "--batch_size", "zero")
    assert p.returncode == 1 and "--batch_size needs a number, not 'zero'" in p.stderr


def test_slot_ids(demo, onnx_model, corpus_subset, tmp_path):
    """--dump_ids also writes each token's slot label id: decoded by the project's decoding.decode_slots on
    PaddleNLP's offsets they give the demo's slots."""
    from slu import data, decoding, manifest
    from paddlenlp.transformers import AutoTokenizer

    queries = [q for _, q in data.read_queries(str(corpus_subset / "dev.txt"))][:20]
    q = tmp_path / "q.txt"
    q.write_text("\n".join(queries) + "\n", encoding="utf-8")
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", q, "--dump_ids")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    labels = manifest.labels(str(onnx_model))
    _, offsets, _ = data.encode_queries(AutoTokenizer.from_pretrained(str(onnx_model)), queries, 16)
    for row, text, off in zip(rows, queries, offsets):
        assert len(row["slot_ids"]) == len(row["ids"])
        assert decoding.decode_slots(text, off, row["slot_ids"], labels) == row["slot"], text


STATS_KEYS = ["queries", "timed_passes", "batch_size", "cpu_num_threads", "p50_ms", "p90_ms", "tokenizer_ms",
              "runtime_ms", "queries_per_s", "pss_mib", "rss_mib", "peak_rss_mib"]


def test_slu_bench_stats_json(demo, onnx_model, corpus_subset, tmp_path):
    """slu_bench counts what it timed (the first pass is a warm-up) and reads its memory; timings are not
    asserted, only that they are there."""
    stats = tmp_path / "stats.json"
    p = run_demo(bench_of(demo), "--model_dir", onnx_model, "--input_file", corpus_subset / "dev.txt",
                 "--repeat", "3", "--batch_size", "4", "--stats_json", stats)
    assert p.returncode == 0, p.stderr
    s = json.load(open(stats))
    assert list(s) == STATS_KEYS
    assert (s["queries"], s["timed_passes"], s["batch_size"], s["cpu_num_threads"]) == (150, 2, 4, 1)
    assert all(isinstance(s[k], (int, float)) and s[k] >= 0 for k in STATS_KEYS)
    assert 0 < s["pss_mib"] <= s["rss_mib"] <= s["peak_rss_mib"]
    assert "150 queries x 2 timed passes, batch 4" in p.stdout
    p = run_demo(bench_of(demo), "--model_dir", onnx_model, "--text", "你好", "--repeat", "1")
    assert "--repeat must be at least 2" in one_line_error(p, "slu_bench")
    p = run_demo(bench_of(demo), "--model_dir", onnx_model, "--text", "你好",
                 "--stats_json", tmp_path / "no" / "s.json")
    assert f"cannot write {tmp_path / 'no' / 's.json'}" in one_line_error(p, "slu_bench")
    p = run_demo(demo, "--model_dir", onnx_model, "--text", "你好", "--repeat", "2")
    assert "unknown flag --repeat" in one_line_error(p)


SESSION_FLAGS = [["--graph_optimization", "disable"], ["--graph_optimization", "basic"],
                 ["--graph_optimization", "extended"], ["--graph_optimization", "all"],
                 ["--execution_mode", "parallel", "--inter_op_threads", "2"], ["--mem_pattern", "off"],
                 ["--cpu_arena", "off"], ["--cpu_num_threads", "2", "--session_config", "session.intra_op.allow_spinning=0"]]


def test_session_flags_give_the_same_answers(demo, onnx_model, corpus_subset, tmp_path):
    """ONNX Runtime's session options (graph optimization level, execution mode, memory pattern, arena, config
    entries) change how the model runs, not its answers: ids, intents and slots equal the default's, confidences to
    1e-4; --optimized_model_file writes the optimized graph; a bad value is a one-line error naming the flag."""
    dev = corpus_subset / "dev.txt"
    default = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids", "--batch_size", "4")
    assert default.returncode == 0, default.stderr[-3000:]
    want = json_rows(default.stdout)
    assert len(want) == 150
    for flags in SESSION_FLAGS:
        p = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids", "--batch_size", "4", *flags)
        assert p.returncode == 0, (flags, p.stderr[-3000:])
        rows = json_rows(p.stdout)
        assert len(rows) == len(want), flags
        for row, ref in zip(rows, want):
            assert (row["query"], row["ids"], row["intent"], row["slot"], row["slot_ids"]) == \
                (ref["query"], ref["ids"], ref["intent"], ref["slot"], ref["slot_ids"]), (flags, ref["query"])
            assert row["confidence"] == pytest.approx(ref["confidence"], abs=1e-4), (flags, ref["query"])
    import onnx

    optimized = {}
    for level in ("disable", "all"):
        optimized[level] = tmp_path / f"{level}.onnx"
        p = run_demo(bench_of(demo), "--model_dir", onnx_model, "--input_file", dev, "--repeat", "2",
                     "--graph_optimization", level, "--optimized_model_file", optimized[level], "--mem_pattern", "off",
                     "--cpu_arena", "off", "--execution_mode", "sequential", "--stats_json", tmp_path / "s.json")
        assert p.returncode == 0 and json.load(open(tmp_path / "s.json"))["queries"] == 150, p.stderr[-3000:]
    nodes = {k: len(onnx.load(str(v)).graph.node) for k, v in optimized.items()}
    assert 0 < nodes["all"] < nodes["disable"], nodes  # fused (LayerNormalization, ...) at "all"
    bad = [(["--graph_optimization", "fast"],
            "--graph_optimization: graph optimization level must be disable, basic, extended or all, not 'fast'"),
           (["--execution_mode", "async"], "--execution_mode: execution mode must be sequential or parallel, not 'async'"),
           (["--mem_pattern", "yes"], "--mem_pattern must be on or off, not 'yes'"),
           (["--cpu_arena", "1"], "--cpu_arena must be on or off, not '1'"),
           (["--inter_op_threads", "0"], "--inter_op_threads must be at least 1"),
           (["--session_config", "no_value"], "--session_config needs KEY=VALUE, not 'no_value'"),
           (["--graph_optimization"], "missing value for --graph_optimization")]
    for exe, name in ((demo, "infer_demo"), (bench_of(demo), "slu_bench")):
        for flags, message in bad:
            err = one_line_error(run_demo(exe, "--model_dir", onnx_model, "--text", "你好", *flags), name)
            assert err == f"{name}: error: {message}", err


def callgrind_instructions(exe, model, queries_file, out, *flags, valgrind_flags=()):
    """The totals line (instructions) of slu_bench under callgrind with --instr-atstart=no."""
    p = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                        *valgrind_flags, exe, "--model_dir", str(model), "--input_file", str(queries_file), *flags],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return int(next(x for x in open(out).read().splitlines() if x.startswith("totals:")).split()[1])


def test_slu_bench_counts_session_run_alone_under_callgrind(demo, onnx_model, tmp_path):
    """Where valgrind's callgrind.h was there at build time, slu_bench under callgrind (--instr-atstart=no) counts
    the timed passes' Session::Run calls: two timed passes count twice one (the warm-up is not counted); the
    parallel execution mode (spinning off), whose graph runs on ONNX Runtime's inter-op threads, is counted too; with collection
    off at start the main thread counts only what lies outside Session::Run (tokenizer, decoding), far less."""
    if not (shutil.which("valgrind") and os.path.isfile("/usr/include/valgrind/callgrind.h")):
        missing_prerequisite("no valgrind or valgrind/callgrind.h", "bash scripts/system_packages.sh")
    queries = tmp_path / "q.txt"
    queries.write_text("播放周杰伦的稻香\n导航到北京西站\n打电话给妈妈\n", encoding="utf-8")
    count = lambda *flags, **kw: callgrind_instructions(bench_of(demo), onnx_model, queries, tmp_path / "cg.out",
                                                        *flags, **kw)
    one_pass = count("--repeat", "2")
    assert one_pass > 10000
    assert count("--repeat", "3") == pytest.approx(2 * one_pass, rel=0.05)
    # spinning off: an idle inter-op thread then blocks instead of spinning, whose instructions grow with the load
    # of the machine (a loaded CI run counted 2.02x one pass with spinning on)
    parallel = count("--repeat", "2", "--execution_mode", "parallel", "--inter_op_threads", "2",
                     "--session_config", "session.intra_op.allow_spinning=0",
                     "--session_config", "session.inter_op.allow_spinning=0")
    assert 0.8 * one_pass < parallel < 2 * one_pass
    outside = count("--repeat", "2", valgrind_flags=["--collect-atstart=no"])
    assert 0 < outside < 0.5 * one_pass


def test_max_length_defaults_to_the_manifest(demo, onnx_model, corpus_subset):
    m = json.load(open(onnx_model / MANIFEST))
    dev = corpus_subset / "dev.txt"
    default = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids")
    explicit = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids",
                        "--max_seq_length", m["max_seq_length"])
    assert default.returncode == explicit.returncode == 0, default.stderr + explicit.stderr
    assert default.stdout == explicit.stdout and default.stderr == explicit.stderr
    assert f"query longer than {m['max_seq_length'] - 2} tokens, truncated" in default.stderr
    shorter = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids", "--max_seq_length", 8)
    assert shorter.returncode == 0 and shorter.stdout != default.stdout


def test_max_length_above_the_position_embeddings_is_refused(demo, onnx_model):
    limit = json.load(open(onnx_model / MANIFEST))["max_position_embeddings"]
    p = run_demo(demo, "--model_dir", onnx_model, "--max_seq_length", limit + 1, "--text", "你好")
    err = one_line_error(p)
    assert f"max length {limit + 1} is larger than max_position_embeddings {limit}" in err
    assert run_demo(demo, "--model_dir", onnx_model, "--max_seq_length", limit, "--text", "你好").returncode == 0


def flipped_dtype(m):
    return {**m, "input_dtype": {"int32": "int64", "int64": "int32"}[m["input_dtype"]]}


@pytest.mark.parametrize("case", ["missing", "truncated", "format", "dtype", "labels", "vocab", "no field"])
def test_bad_manifest_is_a_one_line_error(demo, onnx_model, tmp_path, case):
    text = (onnx_model / MANIFEST).read_text(encoding="utf-8")
    m = json.loads(text)
    cut = text[:text.rindex("}")]
    manifest_text, want = {
        "missing": (None, "deploy_config.json: not found"),
        "truncated": (cut, f"deploy_config.json: not valid JSON (byte {len(cut.encode())}: unexpected end of input)"),
        "format": (json.dumps({**m, "format": "ernie-tiny-slu/2"}),
                   'deploy_config.json: format must be "ernie-tiny-slu/1", not "ernie-tiny-slu/2"'),
        "dtype": (json.dumps(flipped_dtype(m)),
                  f"model.onnx takes {m['input_dtype']} input ids, but {tmp_path / 'm' / MANIFEST} says input_dtype "
                  f"{flipped_dtype(m)['input_dtype']}"),
        "labels": (json.dumps({**m, "num_intents": m["num_intents"] + 1}),
                   f"the model outputs {m['num_intents'] + 1} intent labels, the intent label file"),
        "vocab": (json.dumps({**m, "vocab_size": m["vocab_size"] + 1}),
                  f"vocab.txt: {m['vocab_size']} tokens, {tmp_path / 'm' / MANIFEST} says vocab_size "
                  f"{m['vocab_size'] + 1} (embedding rows)"),
        "no field": (json.dumps({k: v for k, v in m.items() if k != "max_seq_length"}),
                     'deploy_config.json: no "max_seq_length" field'),
    }[case]
    d = model_copy(onnx_model, tmp_path / "m", manifest_text)
    err = one_line_error(run_demo(demo, "--model_dir", d, "--text", "你好"))
    assert want in err and (case in ("dtype", "vocab") or f"infer_demo: error: {d / MANIFEST}: " in err), err


def test_manifest_json_syntax(demo, onnx_model, tmp_path):
    """The manifest reader takes any JSON (escapes, surrogate pairs, nesting, numbers) and keeps the top-level
    scalars; malformed JSON is refused with the byte offset."""
    text = (onnx_model / MANIFEST).read_text(encoding="utf-8")
    body = text[text.index("{") + 1:]
    extra = ('{"note": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\ud800 中", '
             '"nested": [1, -2.5e+3, 0.5E-2, true, false, null, {"a": [{}, []]}], "empty": {}, "vocab_file": 7,\n')
    d = model_copy(onnx_model, tmp_path / "ok", extra + body)  # the manifest's own vocab_file wins (the last)
    ok = run_demo(demo, "--model_dir", d, "--text", "你好", "--dump_ids")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == run_demo(demo, "--model_dir", onnx_model, "--text", "你好", "--dump_ids").stdout
    malformed = [('{"format": 1,}', "byte 13: expected a string key"),
                 ('[]', "byte 0: the top level must be an object"), ('{"a": 01}', "byte 7: expected ',' or '}'"),
                 ('{"a": "\\x"}', "byte 7: invalid escape"),
                 ('{"a": tru}', "byte 6: expected a value"), ('{"a": "\t"}', "byte 7: control character"),
                 ('{"a": 1} {}', "byte 9: unexpected text after the top-level object"),
                 ('{"a": "\\u12"}', "byte 11: expected 4 hex digits")]
    for bad, want in malformed:
        d = model_copy(onnx_model, tmp_path / "bad", bad)
        err = one_line_error(run_demo(demo, "--model_dir", d, "--text", "你好"))
        assert f"{d / MANIFEST}: not valid JSON ({want}" in err, (bad, err)


def test_unicode_tables_refuse_another_unicode_version(tmp_path):
    out = tmp_path / "unicode_tables.h"
    code = ("import runpy, sys, unicodedata; unicodedata.unidata_version = '99.0.0'; "
            f"sys.argv = ['gen_unicode_tables.py', '--output', {str(out)!r}]; "
            f"runpy.run_path({os.path.join(CPP, 'gen_unicode_tables.py')!r}, run_name='__main__')")
    p = run_py(["-c", code], check=False)
    assert p.returncode == 1 and not out.exists()
    assert "has Unicode 99.0.0, but the tokenizer tables must come from Unicode 15.0.0" in p.stderr


def test_runs_clean_under_address_sanitizer(tmp_path_factory, demo, onnx_model, corpus_subset, context_model, pico_dir,
                                            labels):
    exe = build(tmp_path_factory, asan=True)
    q = tmp_path_factory.mktemp("asan") / "q.txt"
    q.write_bytes(open(corpus_subset / "dev.txt", "rb").read() + b"\n\xff\n" + "\n".join(EDGE_CASES).encode() + b"\n")
    n = 150 + len(EDGE_CASES)
    env = {"ASAN_OPTIONS": "halt_on_error=1:detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"}
    p = run_demo(exe, "--model_dir", onnx_model, "--input_file", q, "--batch_size", "4", "--dump_ids", env=env)
    clean = lambda p: "ERROR: AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr  # noqa: E731
    assert p.returncode == 0 and clean(p), p.stderr[-4000:]
    assert len(json_rows(p.stdout)) == n
    p = run_demo(bench_of(exe), "--model_dir", onnx_model, "--input_file", q, "--batch_size", "4", "--repeat", "2",
                 "--stats_json", q.parent / "stats.json", env=env)
    assert p.returncode == 0 and clean(p) and json.load(open(q.parent / "stats.json"))["queries"] == n, \
        p.stderr[-4000:]
    p = run_demo(chars_of(exe), env=env)
    assert p.returncode == 0 and clean(p) and p.stdout == run_demo(chars_of(demo)).stdout, p.stderr[-4000:]
    bad = model_copy(onnx_model, q.parent / "bad", (onnx_model / MANIFEST).read_text(encoding="utf-8")[:99])
    p = run_demo(exe, "--model_dir", bad, "--text", "你好", env=env)
    assert p.returncode == 1 and clean(p) and "not valid JSON" in p.stderr, p.stderr[-4000:]
    # dialogue context (two inputs, turns cut to the budget) and constrained decoding; the golden driver's cases
    p = run_demo(exe, "--model_dir", context_model, "--input_file", q, "--batch_size", "4", "--dump_ids", "--text",
                 "你好", "--context", "导航到古田", "--context", "来一首周华健的花心" * 3, env=env)
    assert p.returncode == 0 and clean(p) and len(json_rows(p.stdout)) == n + 1, p.stderr[-4000:]
    d = deploy_golden.write_model_dir(q.parent / "m", pico_dir / "vocab.txt", labels, 16, 2, 12, "constrained",
                                      deploy_golden.SLOT_TABLE)
    cases = deploy_golden.decode_case_file(q.parent / "decode.tsv",
                                           deploy_golden.decode_cases(labels, deploy_golden.vocab_lines(d)))
    for mode, f in (("encode", deploy_golden.context_case_file(q.parent / "encode.tsv")), ("decode", cases)):
        p = run_demo(golden_of(exe), mode, d, f, env=env)
        assert p.returncode == 0 and clean(p) and p.stdout == run_demo(golden_of(demo), mode, d, f).stdout, \
            p.stderr[-4000:]


# ---- dialogue context and constrained slot decoding -------------------------------------------------------------
def golden_of(demo_exe):
    return os.path.join(os.path.dirname(demo_exe), "slu_golden")


def golden_rows(demo_exe, mode, model_dir, cases):
    p = run_demo(golden_of(demo_exe), mode, model_dir, cases)
    assert p.returncode == 0, p.stderr
    return json_rows(p.stdout)


@pytest.fixture(scope="module")
def python_tokenizer(pico_dir):
    from slu.predictor import PythonTokenizer

    return PythonTokenizer.from_dir(str(pico_dir))


@pytest.mark.parametrize("max_seq_length, turns, max_context_length", deploy_golden.CONTEXT_SETTINGS)
def test_context_encoding_equals_add_context(demo, pico_dir, labels, python_tokenizer, tmp_path, max_seq_length,
                                             turns, max_context_length):
    """Ids, token types, offsets and truncation of queries with their earlier turns (none, 1, 2, 3; cut to the
    budget; an empty one; every tokenizer edge case) equal data.add_context's over PaddleNLP's tokenizer, with the
    settings read from deploy_config.json."""
    d = deploy_golden.write_model_dir(tmp_path / "m", pico_dir / "vocab.txt", labels, max_seq_length, turns,
                                      max_context_length)
    rows = golden_rows(demo, "encode", d, deploy_golden.context_case_file(tmp_path / "cases.tsv"))
    expected = deploy_golden.expected_encodings(python_tokenizer, max_seq_length, turns, max_context_length)
    assert len(rows) == len(expected) == len(deploy_golden.CONTEXT_CASES)
    for row, exp, case in zip(rows, expected, deploy_golden.CONTEXT_CASES):
        assert row == exp, case
    if turns:  # the test's own premise: contexts in the input, filling the budget where it is small
        assert any(0 < r["token_type_ids"].count(1) < max_context_length for r in rows)
        assert max_context_length > 30 or any(r["token_type_ids"].count(1) == max_context_length for r in rows)


@pytest.mark.parametrize("mode", ["constrained", "argmax", "crf"])
def test_slot_decoding_equals_slot_decoder(demo, pico_dir, labels, tmp_path, mode):
    """slot_decoding (crf with seeded scores) and intent_slot_types from deploy_config.json: the slot label ids of
    seeded random logits (ties among them) and crafted cases (WordPiece continuations, slot-less intents, intents the table lacks, ties,
    special tokens inside) equal decoding.SlotDecoder's."""
    d = deploy_golden.write_model_dir(tmp_path / "m", pico_dir / "vocab.txt", labels, slot_decoding=mode,
                                      intent_slot_types=deploy_golden.SLOT_TABLE)
    vocab = deploy_golden.vocab_lines(d)
    cases = deploy_golden.decode_cases(labels, vocab)
    rows = golden_rows(demo, "decode", d, deploy_golden.decode_case_file(tmp_path / "cases.tsv", cases))
    expected = deploy_golden.expected_slot_ids(labels, vocab, mode, deploy_golden.SLOT_TABLE, cases)
    assert len(rows) == len(expected) == len(cases)
    for k, (row, exp) in enumerate(zip(rows, expected)):
        assert row == exp, k
    if mode == "crf":  # the test's own premise: the scores change answers that greedy decoding gives
        greedy = deploy_golden.expected_slot_ids(labels, vocab, "constrained", deploy_golden.SLOT_TABLE, cases)
        assert sum(g != e for g, e in zip(greedy, expected)) > 10
    if mode == "constrained":  # the test's own premise: continuations, I- labels and every slot-less answer
        assert any(labels.slots[x].startswith("I-") for r in rows for x in r)


CONTEXT_TURNS, MAX_CONTEXT_LENGTH = 2, 12


@pytest.fixture(scope="module")
def context_model(tmp_path_factory, pico_dir, corpus_subset):
    """A model with dialogue context (2 turns in 12 tokens, token_type_ids its second input) and constrained slot
    decoding, trained for 3 steps by scripts/train.sh, exported and converted to ONNX."""
    out = tmp_path_factory.mktemp("context_model")
    run_script("scripts/train.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                        DEV=corpus_subset / "dev.txt", LR="1e-3"),
               "--max_steps", "3", "--save_steps", "3", "--eval_steps", "3", "--per_device_train_batch_size", "32",
               "--load_best_model_at_end", "False", "--context_turns", CONTEXT_TURNS, "--max_context_length",
               MAX_CONTEXT_LENGTH, "--slot_decoding", "constrained")
    m = json.load(open(out / MANIFEST))
    assert [x["name"] for x in m["inputs"]] == ["input_ids", "token_type_ids"]
    assert (m["context_turns"], m["max_context_length"], m["slot_decoding"]) == (2, 12, "constrained")
    run_py(["deploy/cpp/convert_to_onnx.py", "--model_dir", str(out)])
    return out


def manifest_variant(src, dst, **changes):
    """A copy of the exported directory `src` (without checkpoints) with deploy_config.json fields changed."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    m = json.load(open(dst / MANIFEST))
    m.update(changes)
    (dst / MANIFEST).write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")
    return dst


CONTEXTS = [[], ["导航到古田"], ["你好", "来一首周华健的花心" * 3, "打电话给妈妈"]]


@pytest.mark.parametrize("variant", ["as exported", "argmax", "constrained, every type"])
def test_context_model_end_to_end_equals_python_predictor(demo, context_model, corpus_subset, tmp_path, variant):
    """infer_demo on the ONNX model with two inputs, in batches of 8, every dev query a --text with the --context
    turns (none, one, three of which the last two count, one cut to the budget): ids, token types, intents,
    confidences, slot label ids and slots equal Python's Predictor on onnx_runtime with the same context, for the
    exported constrained decoding, argmax, and constrained decoding with no intent table."""
    from slu import data
    from slu.predictor import Predictor

    changes = {"as exported": {}, "argmax": {"slot_decoding": "argmax"},
               "constrained, every type": {"intent_slot_types": {}}}[variant]
    d = manifest_variant(context_model, tmp_path / "m", **changes)
    predictor = Predictor.from_dir(str(d), backend="onnx_runtime")
    queries = [q for _, q in data.read_queries(str(corpus_subset / "dev.txt"))]
    for context in CONTEXTS:
        contexts = [context] * len(queries)
        args = [a for q in queries for a in ("--text", q)] + [a for turn in context for a in ("--context", turn)]
        ids, offsets, _, intent_logits, slot_logits = predictor.forward(queries, contexts)
        types = predictor.encode(queries, contexts)[1]
        preds = predictor.predict(queries, contexts=contexts)
        p = run_demo(demo, "--model_dir", d, "--dump_ids", "--batch_size", 8, *args)
        assert p.returncode == 0, p.stderr
        rows = json_rows(p.stdout)
        assert len(rows) == len(queries) == 150
        near_ties = 0
        for k, (row, ref) in enumerate(zip(rows, preds)):
            intent = int(intent_logits[k].argmax())
            assert (row["ids"], row["token_type_ids"]) == (ids[k], types[k]), queries[k]
            assert (row["intent"], row["confidence"]) == (ref["intent"], pytest.approx(ref["confidence"], abs=1e-4))
            # a 3-step model has a few slot logits within 1e-4 of each other, which two ONNX Runtime releases may
            # order differently: such a query's slots are not compared
            top2 = np.sort(slot_logits[k][:len(ids[k])], -1)[:, -2:]
            if (top2[:, 1] - top2[:, 0]).min() < 1e-4:
                near_ties += 1
                continue
            assert row["slot_ids"] == predictor.decoder.slot_ids(intent, ids[k], offsets[k], slot_logits[k])
            assert row["slot"] == ref["slot"], queries[k]
        assert near_ties <= 5
        if context:  # the test's own premise: the context is in the input
            assert all(1 in r["token_type_ids"] for r in rows)
    if variant != "as exported":  # ... and the decoding gives slots to compare
        assert any(r["slot"] for r in rows)


SESSIONS = [("s1", "导航到古田"), ("s1", "换一条路线"), ("s1", "不去了"), ("s2", "来一首周华健的花心"), ("s2", "下一首"), None,
            ("s2", "暂停"), "播放音乐", ("s2", "继续播放"), ("s3", "打电话给妈妈"), ("s3", "取消")]


def test_corpus_sessions_give_the_context(demo, context_model, tmp_path):
    """In a corpus-format input file, a query's context is the queries before it in its session, up to a blank or
    non-corpus line, as data.read_queries(with_context=True) gives it to the Python demo and run_eval.py; --text
    queries take the --context turns. Ids, token types, intents and confidences equal the Python predictor's."""
    from slu import data
    from slu.predictor import Predictor

    f = tmp_path / "sessions.txt"
    lines = ["" if x is None else x if isinstance(x, str) else f"{x[0]}\t{x[1]}\tOTHERS\t{x[1]}" for x in SESSIONS]
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = data.read_queries(str(f), with_context=True)
    queries, contexts = ["好的"] + [q for _, q, _ in read], [["导航到古田"]] + [c for _, _, c in read]
    assert contexts[1:] == [[], ["导航到古田"], ["导航到古田", "换一条路线"], [], ["来一首周华健的花心"], [], [], [],
                            [], ["打电话给妈妈"]]  # the test's own premise
    predictor = Predictor.from_dir(str(context_model), backend="onnx_runtime")
    ids, types, _, _ = predictor.encode(queries, contexts)
    preds = predictor.predict(queries, contexts=contexts)
    p = run_demo(demo, "--model_dir", context_model, "--text", "好的", "--context", "导航到古田", "--input_file", f,
                 "--dump_ids", "--batch_size", 4)
    assert p.returncode == 0, p.stderr
    rows = json_rows(p.stdout)
    assert [(r["query"], r["ids"], r["token_type_ids"], r["intent"]) for r in rows] == \
        [(q, i, t, r["intent"]) for q, i, t, r in zip(queries, ids, types, preds)]
    assert [r["confidence"] for r in rows] == pytest.approx([r["confidence"] for r in preds], abs=1e-4)
    p = run_demo(bench_of(demo), "--model_dir", context_model, "--input_file", f, "--text", "好的", "--context", "你好",
                 "--repeat", 2, "--batch_size", 4)
    assert p.returncode == 0 and "11 queries x 1 timed passes" in p.stdout, p.stderr


def test_context_flags_and_refusals(demo, context_model, onnx_model, tmp_path):
    """--context needs text (one-line errors); a model without context ignores it with a warning; a manifest
    whose context settings do not fit the model or the position embeddings is refused."""
    assert "--context 1: empty turn" in one_line_error(run_demo(demo, "--model_dir", context_model, "--text", "你好",
                                                                "--context", " "))
    p = run_demo(demo, "--model_dir", onnx_model, "--text", "你好", "--context", "导航", "--dump_ids")
    assert p.returncode == 0 and "the model has no dialogue context" in p.stderr
    assert p.stdout == run_demo(demo, "--model_dir", onnx_model, "--text", "你好", "--dump_ids").stdout
    assert "token_type_ids" not in p.stdout
    m = json.load(open(context_model / MANIFEST))
    cases = [({"context_turns": 0, "max_context_length": 0}, "model.onnx has 2 inputs, but"),
             ({"max_context_length": 1}, "context_turns 2 needs max_context_length >= 2"),
             ({"max_context_length": m["max_position_embeddings"]}, "max_seq_length + max_context_length exceed"),
             ({"slot_decoding": "viterbi"}, 'slot_decoding must be one of argmax, constrained, crf, not "viterbi"'),
             ({"slot_decoding": "crf"}, "slot_decoding crf needs slot_transitions (a model trained with --use_crf)"),
             ({"slot_decoding": "joint"}, 'slot_decoding must be one of argmax, constrained, crf, not "joint"'),
             ({"slot_decoding": "crf", "slot_transitions": {"start": [0.0], "end": [0.0], "transitions": [[0.0]]}},
              "slot_transitions must hold start ["),
             ({"slot_transitions": {"start": "0"}}, "slot_transitions must be an object of number arrays"),
             ({"intent_slot_types": {"OTHERS": "song"}}, "intent_slot_types must map intents to lists of slot types"),
             ({"intent_slot_types": {"OTHERS": ["nosuch"]}},
              'intent_slot_types: intent "OTHERS" allows slot type "nosuch", which the slot labels lack'),
             ({"context_turns": -1}, "context_turns must be a non-negative integer")]
    for k, (changes, want) in enumerate(cases):
        d = model_copy(context_model, tmp_path / f"m{k}", json.dumps({**m, **changes}))
        assert want in one_line_error(run_demo(demo, "--model_dir", d, "--text", "你好")), changes
    single = json.load(open(onnx_model / MANIFEST))
    single.update(context_turns=1, max_context_length=4, max_seq_length=single["max_seq_length"] - 4)
    d = model_copy(onnx_model, tmp_path / "one_input", json.dumps(single))
    assert "model.onnx has 1 input, but" in one_line_error(run_demo(demo, "--model_dir", d, "--text", "你好"))
    limit = m["max_position_embeddings"] - m["max_context_length"]
    err = one_line_error(run_demo(demo, "--model_dir", context_model, "--max_seq_length", limit + 1, "--text", "你好"))
    assert f"max length {limit + 1} + max_context_length {m['max_context_length']} is larger than" in err
    assert run_demo(demo, "--model_dir", context_model, "--max_seq_length", limit, "--text", "你好").returncode == 0


def test_older_manifest_means_no_context_and_argmax(demo, onnx_model, tmp_path):
    """A manifest without the context and decoding fields (an export before them) runs as before."""
    m = json.load(open(onnx_model / MANIFEST))
    old = {k: v for k, v in m.items()
           if k not in ("context_turns", "max_context_length", "intent_slot_types", "slot_decoding")}
    d = model_copy(onnx_model, tmp_path / "old", json.dumps(old))
    p = run_demo(demo, "--model_dir", d, "--text", "来一首周华健的花心", "--dump_ids")
    assert p.returncode == 0, p.stderr
    assert p.stdout == run_demo(demo, "--model_dir", onnx_model, "--text", "来一首周华健的花心", "--dump_ids").stdout
