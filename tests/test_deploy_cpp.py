"""deploy/cpp: the ONNX Runtime C++ demo against golden outputs of the Python pipeline, the deployment manifest,
bad input, slu_bench, ASan."""
import json
import os
import shutil
import subprocess
import unicodedata

import pytest

from conftest import ROOT, run_py
from helpers import TOKENIZER_EDGE_CASES

CPP = os.path.join(ROOT, "deploy", "cpp")
MANIFEST = "deploy_config.json"


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
    assert p.stdout.splitlines()[-2:] == [str(d / "slu_bench"), str(d / "infer_demo")]
    return str(d / "infer_demo")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build(tmp_path_factory, asan=False)


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
    from slu import core
    from paddlenlp.transformers import AutoTokenizer

    queries = [q for _, q in core.read_queries(str(queries_file))]
    ids, _, _ = core.encode_queries(AutoTokenizer.from_pretrained(str(trained_pico)), queries, 16)
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
    from slu import core
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
    ids, _, _ = core.encode_queries(AutoTokenizer.from_pretrained(str(d)), texts, 16)
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
    """--dump_ids also writes each token's slot label id: decoded by the project's core.decode_slots on
    PaddleNLP's offsets they give the demo's slots."""
    from slu import core, manifest
    from paddlenlp.transformers import AutoTokenizer

    queries = [q for _, q in core.read_queries(str(corpus_subset / "dev.txt"))][:20]
    q = tmp_path / "q.txt"
    q.write_text("\n".join(queries) + "\n", encoding="utf-8")
    p = run_demo(demo, "--model_dir", onnx_model, "--input_file", q, "--dump_ids")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    labels = manifest.labels(str(onnx_model))
    _, offsets, _ = core.encode_queries(AutoTokenizer.from_pretrained(str(onnx_model)), queries, 16)
    for row, text, off in zip(rows, queries, offsets):
        assert len(row["slot_ids"]) == len(row["ids"])
        assert core.decode_slots(text, off, row["slot_ids"], labels) == row["slot"], text


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


def test_max_length_defaults_to_the_manifest(demo, onnx_model, corpus_subset):
    m = json.load(open(onnx_model / MANIFEST))
    dev = corpus_subset / "dev.txt"
    default = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids")
    explicit = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids",
                        "--max_length", m["max_seq_length"])
    assert default.returncode == explicit.returncode == 0, default.stderr + explicit.stderr
    assert default.stdout == explicit.stdout and default.stderr == explicit.stderr
    assert f"query longer than {m['max_seq_length'] - 2} tokens, truncated" in default.stderr
    shorter = run_demo(demo, "--model_dir", onnx_model, "--input_file", dev, "--dump_ids", "--max_length", 8)
    assert shorter.returncode == 0 and shorter.stdout != default.stdout


def test_max_length_above_the_position_embeddings_is_refused(demo, onnx_model):
    limit = json.load(open(onnx_model / MANIFEST))["max_position_embeddings"]
    p = run_demo(demo, "--model_dir", onnx_model, "--max_length", limit + 1, "--text", "你好")
    err = one_line_error(p)
    assert f"max length {limit + 1} is larger than max_position_embeddings {limit}" in err
    assert run_demo(demo, "--model_dir", onnx_model, "--max_length", limit, "--text", "你好").returncode == 0


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
    assert "has Unicode 99.0.0, but the tokenizer tables must come from Unicode 13.0.0" in p.stderr


def test_runs_clean_under_address_sanitizer(tmp_path_factory, demo, onnx_model, corpus_subset):
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
