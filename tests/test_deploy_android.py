"""deploy/android: the plain-Java tokenizer, labels, slot decoding and SluEngine against the Python pipeline (JDK);
predictor/ and app/ type-checked against stubs of android.* and Paddle Lite's real Java API (its sources in the
vendored Paddle-Lite v2.13-rc archive)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest

import deploy_golden
from conftest import ROOT, run_legacy
from helpers import TOKENIZER_EDGE_CASES, missing_prerequisite

ANDROID = os.path.join(ROOT, "deploy", "android")


def java_sources(*dirs):
    return sorted(os.path.join(d, f) for top in dirs for d, _, fs in os.walk(os.path.join(ANDROID, top))
                  for f in fs if f.endswith(".java"))


def javac(out, *args):
    p = subprocess.run(["javac", "-encoding", "UTF-8", "-d", str(out), *map(str, args)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    return out


def need_javac():
    if not shutil.which("javac"):
        missing_prerequisite("no JDK (javac): the Java sources cannot be compiled", "bash scripts/system_packages.sh")


@pytest.fixture(scope="module")
def java(tmp_path_factory):
    if not (shutil.which("javac") and shutil.which("java")):
        missing_prerequisite("no JDK (javac/java): the plain-Java part cannot be compiled",
                             "bash scripts/system_packages.sh")
    sources = java_sources("slu-core/src/main", "slu-core/src/test")
    return javac(tmp_path_factory.mktemp("javac"), "-Xlint:all", "-Werror", *sources)


def run_java(classes, *args):
    p = subprocess.run(["java", "-cp", str(classes), "com.ernietiny.slu.GoldenMain", *map(str, args)],
                       capture_output=True, text=True, encoding="utf-8", timeout=300)
    return p


def java_rows(classes, *args):
    p = run_java(classes, *args)
    assert p.returncode == 0, p.stderr
    return [json.loads(x) for x in p.stdout.split("\n") if x]


def floats(a):
    return " ".join(repr(float(x)) for x in np.asarray(a).reshape(-1))


def case_line(query, intent_logits, slot_logits):
    """A GoldenMain case: the query and the outputs (data and shape) its fake runtime returns."""
    shapes = [" ".join(map(str, np.shape(x))) for x in (intent_logits, slot_logits)]
    return "\t".join([query, floats(intent_logits), floats(slot_logits), *shapes])


LITE_OUTPUTS = """
import sys, numpy as np
from slu import lite
run = lite.LiteRuntime(lite.convert(sys.argv[1], "x86"))
ids = np.load(sys.argv[2])
np.savez(sys.argv[3], *[o for k in range(len(ids.files)) for o in run(ids[f"arr_{k}"])])
"""


def model_outputs(kind, trained_pico, batches, tmp_path):
    """(intent logits, slot logits) of the exported model on each id batch: Paddle Inference here, or Paddle Lite's
    x86 .nb in the legacy environment (which has Lite's Python package)."""
    prefix = str(trained_pico / "infer_model")
    if kind == "paddle_inference":
        from slu.predictor import PaddleInferenceRuntime

        run = PaddleInferenceRuntime(prefix)
        return [run(b) for b in batches]
    np.savez(tmp_path / "ids.npz", *batches)
    run_legacy(["-c", LITE_OUTPUTS, prefix, str(tmp_path / "ids.npz"), str(tmp_path / "out.npz")])
    out = np.load(tmp_path / "out.npz")
    return [(out[f"arr_{2 * k}"], out[f"arr_{2 * k + 1}"]) for k in range(len(batches))]


@pytest.mark.parametrize("runtime", ["lite_x86_nb", "paddle_inference"])
def test_golden_ids_and_decoded_slots_on_every_dev_query(java, trained_pico, corpus_subset, tmp_path, runtime):
    """Token ids equal PaddleNLP's; SluEngine, given the outputs of the exported model (Paddle Lite's x86 .nb, the
    format the app runs, or Paddle Inference) with their shapes, hands the runtime those ids and gives the intent,
    confidence and slots of decoding.postprocess."""
    from paddlenlp.transformers import AutoTokenizer

    from slu import data, decoding, manifest

    labels = manifest.labels(str(trained_pico))
    tok = AutoTokenizer.from_pretrained(str(trained_pico))
    queries = [q for _, q in data.read_queries(str(corpus_subset / "dev.txt"))]
    encoded = [data.encode_queries(tok, [q], 16) for q in queries]
    outputs = model_outputs(runtime, trained_pico, [np.array(e[0], dtype="int32") for e in encoded], tmp_path)
    cases, expected = [], []
    for q, (ids, offsets, truncated), (il, sl) in zip(queries, encoded, outputs):
        assert il.shape == (1, len(labels.intents)) and sl.shape == (1, len(ids[0]), len(labels.slots))
        expected.append({"query": q, "ids": ids[0], "truncated": truncated[0],
                         **decoding.postprocess([q], ids, offsets, il, sl, labels)[0]})
        cases.append(case_line(q, il, sl))
    (tmp_path / "cases.tsv").write_text("\n".join(cases) + "\n", encoding="utf-8")
    rows = java_rows(java, trained_pico / "vocab.txt", trained_pico / "intent_label.txt",
                     trained_pico / "slot_label.txt", tmp_path / "cases.tsv")
    assert len(rows) == len(expected) == 150
    for row, exp in zip(rows, expected):
        assert row["ids"] == exp["ids"], exp["query"]
        assert row["truncated"] == exp["truncated"]
        assert (row["intent"], row["slot"]) == (exp["intent"], exp["slot"]), exp["query"]
        assert row["confidence"] == pytest.approx(exp["confidence"], abs=1e-6)


EDGE_CASES = TOKENIZER_EDGE_CASES + ["  打 电话\u3000给 110 ", "a\ue000b"]


def test_tokenizer_edge_cases(java, trained_pico, tmp_path):
    from paddlenlp.transformers import AutoTokenizer

    from slu import data

    ids, _, truncated = data.encode_queries(AutoTokenizer.from_pretrained(str(trained_pico)), EDGE_CASES, 16)
    (tmp_path / "cases.tsv").write_text("\n".join(EDGE_CASES) + "\n", encoding="utf-8")
    rows = java_rows(java, trained_pico / "vocab.txt", trained_pico / "intent_label.txt",
                     trained_pico / "slot_label.txt", tmp_path / "cases.tsv")
    assert [r["ids"] for r in rows] == ids
    assert [r["truncated"] for r in rows] == truncated


# PaddleNLP's view of every code point (the class GoldenMain --classes gives, and what lower-casing + accent
# stripping make of it), from its own predicates, in the interpreter that runs this
UNICODE_VIEW = """
import json, unicodedata
from paddlenlp.transformers.bert.tokenizer import BasicTokenizer
from paddlenlp.transformers.tokenizer_utils import _is_control, _is_punctuation, _is_symbol, _is_whitespace
basic = BasicTokenizer()
def char_class(cp):
    ch = chr(cp)
    if cp in (0, 0xFFFD) or _is_control(ch):
        return "d"  # _clean_text drops it
    if _is_whitespace(ch) or ch.isspace():
        return "w"  # _clean_text's spaces, and what str.split() splits on
    if basic._is_chinese_char(cp):
        return "z"
    return "p" if _is_punctuation(ch) or _is_symbol(ch) else "."
normalized = []
for cp in range(0x110000):
    n = basic._run_strip_accents(chr(cp).lower())
    if n != chr(cp):
        normalized.append(f"{cp:x}:" + "".join(f" {ord(x):x}" for x in n))
print(json.dumps({"version": unicodedata.unidata_version,
                  "classes": "".join(char_class(cp) for cp in range(0x110000)), "normalized": normalized,
                  "unassigned": [cp for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Cn"]}))
"""


def unicode_view(venv):
    p = subprocess.run([os.path.join(ROOT, venv, "bin", "python"), "-c", UNICODE_VIEW], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout.splitlines()[-1])


def run_length(classes):
    rows, last = [], None
    for cp, c in enumerate(classes):
        if c != last:
            rows.append(f"{cp:x} {c}")
        last = c
    return rows


def test_character_classes_and_normalization_equal_paddlenlp_for_every_code_point(java):
    """Java's Unicode tables (JDK 17: Unicode 13.0, its javadoc) and PaddleNLP's on the same Unicode version (the
    legacy environment's CPython 3.9) agree on every code point: what is dropped, whitespace, CJK, punctuation or
    symbol, and what lower-casing + accent stripping make of it. Training runs on CPython 3.12 (Unicode 15.0): its
    view differs on code points Unicode 13 leaves unassigned (characters added in 14.0 and 15.0) and on one more,
    U+1734 HANUNOO SIGN PAMUDPOD, which Unicode 14 moved from Mn to Mc (accent stripping drops it on 13 only)."""
    legacy, default = unicode_view(".venv-legacy"), unicode_view(".venv")
    assert legacy["version"] == "13.0.0" and default["version"] == "15.0.0"
    assert run_java(java, "--classes").stdout.splitlines() == run_length(legacy["classes"])
    assert run_java(java, "--normalized").stdout.splitlines() == legacy["normalized"]
    differ = [cp for cp, (a, b) in enumerate(zip(legacy["classes"], default["classes"])) if a != b]
    differ += [int(x.split(":")[0], 16) for x in set(legacy["normalized"]) ^ set(default["normalized"])]
    assert differ and set(differ) - set(legacy["unassigned"]) == {0x1734}


def test_vocab_lines_as_paddlenlp_reads_them_a_repeated_token_keeps_its_last(java, trained_pico, tmp_path):
    from paddlenlp.transformers import ErnieTokenizer

    from slu import data

    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "你", "好", "℃", "26", "你", "ab", "##c", "℃", "[UNK]",
             "οδοσ", "οδος", "##6"]
    # line ends \n, \r\n and \r: Python's universal newlines and Java's readLine both end lines at each
    ends = ["\n", "\r\n", "\r"] * len(vocab)
    (tmp_path / "vocab.txt").write_bytes("".join(t + e for t, e in zip(vocab, ends)).encode("utf-8"))
    texts = ["你好你", "26℃", "abc zz", "ΟΔΟΣ", "2"]
    ids, _, truncated = data.encode_queries(ErnieTokenizer(str(tmp_path / "vocab.txt")), texts, 16)
    assert ids[0] == [1, 9, 6, 9, 2] and ids[1][-2] == 12 and ids[4] == [1, 13, 2]  # the test's own premise
    (tmp_path / "cases.tsv").write_text("\n".join(texts) + "\n", encoding="utf-8")
    rows = java_rows(java, tmp_path / "vocab.txt", trained_pico / "intent_label.txt",
                     trained_pico / "slot_label.txt", tmp_path / "cases.tsv")
    assert [r["ids"] for r in rows] == ids


def test_engine_refuses_outputs_that_do_not_match_the_labels(java, trained_pico, tmp_path):
    """SluEngine checks the runtime's output shapes against the label files and the query's length."""
    intents = (trained_pico / "intent_label.txt").read_text(encoding="utf-8").split()
    slots = (trained_pico / "slot_label.txt").read_text(encoding="utf-8").split()
    n_i, n_s = len(intents), len(slots)
    good_i, good_s = np.zeros((1, n_i)), np.zeros((1, 4, n_s))  # 你好: [CLS] 你 好 [SEP]
    lines = [case_line("你好", good_i, good_s), case_line("你好", np.zeros((1, n_i - 1)), good_s),
             case_line("你好", good_i, np.zeros((1, 5, n_s))), case_line("你好", good_i, np.zeros((1, 4, n_s + 1))),
             "\t".join(["你好", floats(good_i), floats(good_s), f"{n_i}", f"1 4 {n_s}"])]
    (tmp_path / "cases.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = java_rows(java, trained_pico / "vocab.txt", trained_pico / "intent_label.txt",
                     trained_pico / "slot_label.txt", tmp_path / "cases.tsv")
    assert "error" not in rows[0] and rows[0]["intent"] == intents[0]
    assert rows[1]["error"] == (f"the model's intent logits: shape [1, {n_i - 1}] with {n_i - 1} values; expected "
                                f"[1, {n_i}] (num_intents {n_i} in deploy_config.json)")
    assert (f"slot logits: shape [1, 5, {n_s}] with {5 * n_s} values; expected [1, 4, {n_s}] (4 tokens"
            in rows[2]["error"])
    assert f"slot logits: shape [1, 4, {n_s + 1}]" in rows[3]["error"]
    assert f"intent logits: shape [{n_i}] with {n_i} values" in rows[4]["error"]


def test_vocab_without_special_tokens_is_refused(java, trained_pico, tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[CLS]\n[UNK]\n你\n", encoding="utf-8")
    (tmp_path / "cases.tsv").write_text("你\n", encoding="utf-8")
    p = run_java(java, tmp_path / "vocab.txt", trained_pico / "intent_label.txt", trained_pico / "slot_label.txt",
                 tmp_path / "cases.tsv")
    assert p.returncode != 0 and f"{tmp_path / 'vocab.txt'}: vocab has no [SEP] token" in p.stderr


# A realistic deploy_config.json (docs/deploy_config.md) written by hand: nested arrays and objects to skip,
# \uXXXX escapes (a surrogate pair too), raw non-ASCII text, an escaped key, every JSON value kind, CRLF and tabs.
MANIFEST = (
    '{\r\n\t"format": "ernie-tiny-slu/1",\r\n'
    '  "max_seq_length": 16, "max_position_embeddings" : 32,\n'
    '  "input_dtype": "int64",\n'
    '  "inputs": [{"name": "input_ids", "dtype": "int64", "shape": [-1, -1], "note": "[{\\"x\\": \\\\}]"}],\n'
    '  "outputs": ["intent_logits", "slot_logits"],\n'
    '  "vocab_file": "vocab.txt",\n'
    '  "do_lower_\\u0063ase": false,\n'
    '  "pad_token_id": 0,\n'
    '  "intent_label_file": "\\u5bfc\\u822a_intent_label.txt",\n'
    '  "slot_label_file": "槽位_slot_label\\ud83d\\ude00.txt",\n'
    '  "num_intents": 11, "num_slot_labels": 32,\n'
    '  "slotless_intents": ["OTHERS", "music.next", "\\u5bfc\\u822a", "播放\\/\\b\\f\\n\\r\\t\\"", "\\ud83c\\udfb5"],\n'
    '  "models": {"infer_model": "fine-tuned",\n'
    '             "pruned": {"n": [1.5e-3, -0, 2E+2, -7.25, null, true, false, {}, []]}},\n'
    '  "empty": {}, "nothing": null, "ratio": 0.75\n'
    '}\n')
FIELDS = ("format", "max_seq_length", "max_position_embeddings", "input_dtype", "vocab_file", "do_lower_case",
          "pad_token_id", "intent_label_file", "slot_label_file", "num_intents", "num_slot_labels")
# added after the first release, with what an older manifest (MANIFEST) means
OPTIONAL_FIELDS = {"context_turns": 0, "max_context_length": 0, "slot_decoding": "argmax", "intent_slot_types": {}}


def write_manifest(path, text=None, **changes):
    """MANIFEST, or `text`, with top-level fields replaced (None: removed); returns the path."""
    if changes:
        m = json.loads(text or MANIFEST)
        m.update(changes)
        text = json.dumps({k: v for k, v in m.items() if v is not None}, ensure_ascii=False)
    path.write_text(MANIFEST if text is None else text, encoding="utf-8")
    return path


def java_config(java, path, *max_length):
    return run_java(java, "--config", path, *max_length)


def one_line_error(p, path):
    """The error of a refused run: non-zero exit, one line on stderr naming the manifest."""
    assert p.returncode != 0 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}: "), p.stderr
    return lines[0]


def test_deploy_config_reader_equals_json_load(java, tmp_path):
    path = write_manifest(tmp_path / "deploy_config.json")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert expected["intent_label_file"] == "导航_intent_label.txt"  # the test's own premise
    p = java_config(java, path)
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)
    assert {k: row[k] for k in FIELDS} == {k: expected[k] for k in FIELDS}
    assert row["max_length"] == expected["max_seq_length"] == 16
    assert {k: row[k] for k in OPTIONAL_FIELDS} == OPTIONAL_FIELDS


def test_deploy_config_reads_context_and_slot_decoding(java, tmp_path):
    """context_turns, max_context_length, slot_decoding and intent_slot_types (nested: an object of arrays, a
    repeated key keeping its last value, escapes) as json.load reads them."""
    table = ('{"OTHERS": [], "music.play": ["song", "singer"], "OTHERS": ["\\u6b4c"], '
             '"navigation.navigation": ["destination", "origin"]}')
    text = MANIFEST.replace('"empty": {}', '"context_turns": 2, "max_context_length": 12, '
                            f'"slot_decoding": "constrained", "intent_slot_types": {table}, "empty": {{}}')
    path = write_manifest(tmp_path / "deploy_config.json", text)
    expected = json.loads(text)
    assert expected["intent_slot_types"]["OTHERS"] == ["歌"]  # the test's own premise
    p = java_config(java, path)
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)
    assert {k: row[k] for k in OPTIONAL_FIELDS} == {k: expected[k] for k in OPTIONAL_FIELDS}
    assert list(row["intent_slot_types"]) == list(expected["intent_slot_types"])


@pytest.mark.parametrize("text", [
    '{"format": "ernie-tiny-slu/1", "max_seq_length": 16,}',
    '{"format": "导航😀", "max_seq_length" 16}',
    '{"slotless_intents": ["播放", "😀"], "a": tru}',
    '{"inputs": [{"name": "input_ids"} {"x": 1}]}',
    '{"vocab_file": "vocab.txt", "note": "导航\\x"}',
    '{"vocab_file": "vocab.txt", "note": "导航\n"}',
    '{"vocab_file": "vocab.txt", "note": "导航',
    '{"a": [1, 2}',
    '{"a": 01}',
    '{"a": 1} {"b": 2}',
    '\ufeff{"a": 1}',
    '',
])
def test_deploy_config_malformed_json_is_refused_at_its_offset(java, tmp_path, text):
    """One line naming the file and the code-point offset Python's json reports for the same text."""
    path = write_manifest(tmp_path / "deploy_config.json", text)
    with pytest.raises(json.JSONDecodeError) as e:
        json.loads(text)
    line = one_line_error(java_config(java, path), path)
    assert f"malformed JSON at character {e.value.pos}:" in line


def test_deploy_config_top_level_must_be_an_object(java, tmp_path):
    path = write_manifest(tmp_path / "deploy_config.json", '["ernie-tiny-slu/1"]')
    assert "malformed JSON at character 0: expected a JSON object" in one_line_error(java_config(java, path), path)


def test_deploy_config_must_be_utf8(java, tmp_path):
    path = tmp_path / "deploy_config.json"
    path.write_bytes(MANIFEST.encode("utf-8").replace(b"slot_label", b"slot_\xff_label"))
    assert one_line_error(java_config(java, path), path).endswith(": not UTF-8 text")


@pytest.mark.parametrize("changes, message", [
    ({"format": "ernie-tiny-slu/2"}, 'format must be "ernie-tiny-slu/1", not "ernie-tiny-slu/2"'),
    ({"format": None}, "format is missing"),
    ({"input_dtype": "float32"}, 'input_dtype must be int32 or int64, not "float32"'),
    ({"input_dtype": "int 64\n"}, 'input_dtype must be int32 or int64, not "int 64\\u000a"'),
    ({"max_seq_length": 33}, "max_seq_length 33 exceeds max_position_embeddings 32"),
    ({"max_seq_length": 0}, "max_seq_length must be a positive integer, not 0"),
    ({"max_seq_length": "16"}, 'max_seq_length must be a positive integer, not "16"'),
    ({"max_seq_length": 16.0}, "max_seq_length must be a positive integer, not 16.0"),
    ({"max_position_embeddings": 2 ** 31}, "max_position_embeddings must be a positive integer, not 2147483648"),
    ({"num_intents": [11]}, "num_intents must be a positive integer, not an array or object"),
    ({"num_slot_labels": None}, "num_slot_labels is missing"),
    ({"pad_token_id": -1}, "pad_token_id must be an integer >= 0, not -1"),
    ({"do_lower_case": 1}, "do_lower_case must be true or false, not 1"),
    ({"vocab_file": "../vocab.txt"}, 'vocab_file must be a file name in the model directory, not "../vocab.txt"'),
    ({"slot_label_file": ""}, 'slot_label_file must be a file name in the model directory, not ""'),
    ({"context_turns": -1}, "context_turns must be an integer >= 0, not -1"),
    ({"context_turns": 1, "max_context_length": "8"}, 'max_context_length must be an integer >= 0, not "8"'),
    ({"context_turns": 1, "max_context_length": 1}, "context_turns 1 needs max_context_length >= 2"),
    ({"context_turns": 1, "max_context_length": 17},
     "max_seq_length 16 + max_context_length 17 exceed max_position_embeddings 32"),
    ({"slot_decoding": "viterbi"}, 'slot_decoding must be argmax, constrained or crf, not "viterbi"'),
    ({"slot_decoding": "crf"}, "slot_decoding crf needs slot_transitions (a model trained with --use_crf)"),
    ({"slot_decoding": "joint"}, 'slot_decoding must be argmax, constrained or crf, not "joint"'),
    ({"slot_transitions": {"start": [0.0], "end": [0.0], "transitions": [[0.0]]}},
     "slot_transitions must hold start [32], end [32] and transitions [32][32] of numbers (the slot labels)"),
    ({"intent_slot_types": ["song"]}, "intent_slot_types must map intents to lists of slot types"),
    ({"intent_slot_types": {"OTHERS": "song"}}, "intent_slot_types must map intents to lists of slot types"),
    ({"intent_slot_types": {"OTHERS": [1]}}, "intent_slot_types must map intents to lists of slot types"),
])
def test_deploy_config_invalid_fields_are_refused(java, tmp_path, changes, message):
    path = write_manifest(tmp_path / "deploy_config.json", **changes)
    assert one_line_error(java_config(java, path), path) == f"{path}: {message}"


def test_requested_max_length_is_checked_against_the_position_embeddings(java, tmp_path):
    path = write_manifest(tmp_path / "deploy_config.json")  # max_seq_length 16, max_position_embeddings 32
    for requested, served in ((0, 16), (8, 8), (32, 32)):
        p = java_config(java, path, requested)
        assert p.returncode == 0 and json.loads(p.stdout)["max_length"] == served, p.stderr
    line = one_line_error(java_config(java, path, 33), path)
    assert "max length 33 exceeds max_position_embeddings 32" in line
    assert "max length 2 is below 3" in one_line_error(java_config(java, path, 2), path)
    path = write_manifest(tmp_path / "deploy_config.json", context_turns=1, max_context_length=8)
    assert json.loads(java_config(java, path, 24).stdout)["max_length"] == 24  # 24 + 8 positions
    line = one_line_error(java_config(java, path, 25), path)
    assert "max length 25 + max_context_length 8 exceed max_position_embeddings 32" in line and "at most 24" in line


def test_model_dir_golden_mode_takes_files_and_settings_from_the_manifest(java, tmp_path):
    """--model-dir loads DIR through SluEngine.load, as SluPredictor does: the manifest's file names,
    lower-casing, max length, and the label files' sizes checked against the model's output sizes."""
    (tmp_path / "words.txt").write_text("[PAD]\n[CLS]\n[SEP]\n[UNK]\n你\n好\nab\n", encoding="utf-8")
    (tmp_path / "intents.txt").write_text("A\nB\n", encoding="utf-8")
    (tmp_path / "slots.txt").write_text("O\nB-x\nI-x\n", encoding="utf-8")
    manifest = dict(vocab_file="words.txt", intent_label_file="intents.txt", slot_label_file="slots.txt",
                    num_intents=2, num_slot_labels=3, max_seq_length=4, max_position_embeddings=8,
                    do_lower_case=True)
    path = write_manifest(tmp_path / "deploy_config.json", **manifest)
    slot_logits = "9 0 0 0 9 0 0 0 9 9 0 0"  # [CLS] O, 你 B-x, 好 I-x, [SEP] O
    (tmp_path / "cases.tsv").write_text(f"你好AB\n你好\t0 1\t{slot_logits}\t1 2\t1 4 3\n", encoding="utf-8")

    def rows(*max_length):
        p = run_java(java, "--model-dir", tmp_path, tmp_path / "cases.tsv", *max_length)
        assert p.returncode == 0, p.stderr
        return [json.loads(x) for x in p.stdout.splitlines()]

    first, second = rows()
    assert (first["ids"], first["truncated"]) == ([1, 4, 5, 2], True)  # max_seq_length 4
    assert (second["intent"], second["slot"]) == ("B", [{"slot": "x", "entity": "你好", "pos": [0, 1]}])
    assert rows(5)[0]["ids"] == [1, 4, 5, 6, 2]
    write_manifest(path, **{**manifest, "do_lower_case": False})
    assert rows(5)[0]["ids"] == [1, 4, 5, 3, 2]  # "AB" is [UNK] without lower-casing
    write_manifest(path, **{**manifest, "num_slot_labels": 4})
    p = run_java(java, "--model-dir", tmp_path, tmp_path / "cases.tsv")
    assert one_line_error(p, path) == f"{path}: num_slot_labels is 4 but slots.txt has 3 labels"
    write_manifest(path, **{**manifest, "pad_token_id": 3})
    p = run_java(java, "--model-dir", tmp_path, tmp_path / "cases.tsv")
    assert one_line_error(p, path) == f"{path}: pad_token_id is 3 but [PAD] is id 0 in words.txt"


def test_slu_core_compiles_at_the_android_modules_java_level(tmp_path):
    """predictor/ and app/ compile slu-core with Java 8 source and target (their build.gradle)."""
    need_javac()
    javac(tmp_path, "--release", "8", "-Xlint:all", "-Werror", *java_sources("slu-core/src/main"))


def generated_r(tmp_path):
    """The app's R class as AGP would generate it from res/ (ids, layouts, strings): a name the code uses that
    res/ lacks fails to compile."""
    res = os.path.join(ANDROID, "app", "src", "main", "res")

    def names(folder, pattern):
        return {x for f in os.listdir(os.path.join(res, folder))
                for x in re.findall(pattern, open(os.path.join(res, folder, f), encoding="utf-8").read())}

    ids, strings = names("layout", r'"@\+id/(\w+)"'), names("values", r'<string name="(\w+)"')
    layouts = {f[:-4] for f in os.listdir(os.path.join(res, "layout"))}
    n = iter(range(0x7f010000, 0x7f020000))
    body = ""
    for kind, members in (("id", ids), ("layout", layouts), ("string", strings)):
        fields = "".join(f"        public static final int {m} = {next(n)};\n" for m in sorted(members))
        body += f"    public static final class {kind} {{\n{fields}    }}\n"
    path = tmp_path / "gen" / "com" / "ernietiny" / "slu" / "app" / "R.java"
    path.parent.mkdir(parents=True)
    path.write_text(f"package com.ernietiny.slu.app;\n\npublic final class R {{\n{body}}}\n", encoding="utf-8")
    return path


LITE_ARCHIVE = os.path.join(ROOT, "vendor", "paddle-lite-v2.13-rc-102697b.tar.xz")
LITE_JAVA = "Paddle-Lite/lite/api/android/jni/src/com/baidu/paddle/lite/"


def paddle_lite_java_sources(out):
    """Paddle Lite v2.13-rc's Java API (com.baidu.paddle.lite) from the vendored archive, whose sha256 is the one
    scripts/build_lite_arm.sh pins."""
    pinned = re.search(r"^ARCHIVE_SHA256=([0-9a-f]{64})$", open(os.path.join(ROOT, "scripts", "build_lite_arm.sh")).read(),
                       re.M).group(1)
    assert hashlib.sha256(open(LITE_ARCHIVE, "rb").read()).hexdigest() == pinned
    with tarfile.open(LITE_ARCHIVE) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(LITE_JAVA) and m.name.endswith(".java")]
        tar.extractall(out, members)
    return sorted(str(out / m.name) for m in members)


@pytest.fixture(scope="module")
def android_classes(tmp_path_factory):
    """predictor/ + app/ + slu-core compiled as the Gradle modules are (Java 8) against stubs of android.* and
    Paddle Lite 2.13-rc's own Java classes, every lint warning an error."""
    need_javac()
    tmp = tmp_path_factory.mktemp("android")
    lite_sources = paddle_lite_java_sources(tmp / "lite_src")
    assert {os.path.basename(f) for f in lite_sources} >= {"MobileConfig.java", "PaddlePredictor.java", "Tensor.java",
                                                           "PowerMode.java", "ConfigBase.java"}
    lite = javac(tmp / "lite", "--release", "8", *lite_sources)
    stubs = javac(tmp / "stubs", "--release", "8", *java_sources("stubs"))
    sources = java_sources("slu-core/src/main", "predictor/src/main", "app/src/main")
    return javac(tmp / "classes", "--release", "8", "-Xlint:all", "-Werror", "-cp", f"{stubs}:{lite}", *sources,
                 generated_r(tmp))


def test_predictor_and_app_type_check_against_android_stubs_and_the_real_paddle_lite_api(android_classes):
    names = {os.path.relpath(os.path.join(d, f), android_classes) for d, _, fs in os.walk(android_classes)
             for f in fs}
    assert {"com/ernietiny/slu/android/SluPredictor.class", "com/ernietiny/slu/app/MainActivity.class",
            "com/ernietiny/slu/SluEngine.class"} <= names


def referenced_java_api(classes):
    """The java.* classes, and (class, name, descriptor) of the java.* fields and methods, that the compiled
    classes use."""
    files = [os.path.join(d, f) for d, _, fs in os.walk(classes) for f in fs if f.endswith(".class")]
    out = subprocess.run(["javap", "-c", "-p", *files], capture_output=True, text=True, check=True).stdout
    members = set(re.findall(r'// (?:Method|InterfaceMethod|Field) (java/[\w/$]+)\.("?[\w<>$]+"?):(\S+)', out))
    return set(re.findall(r"// class (java/[\w/$]+)", out)) | {m[0] for m in members}, members


class Java7Api:
    """The Java SE 7 API, read from the JDK's ct.sym (the signatures javac --release 7 compiles against)."""

    def __init__(self, tmp):
        ct = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("javac")))), "lib", "ct.sym")
        self.zip, self.tmp, self.members, self.supers = zipfile.ZipFile(ct), tmp, {}, {}
        self.entries = {}
        for name in self.zip.namelist():  # "<releases>/<module>/java/lang/String.sig": releases "7", "79A", ...
            releases, _, path = (name.split("/", 2) + ["", ""])[:3]
            if "7" in releases and path.endswith(".sig"):
                self.entries[path[:-4]] = name

    def load(self, cls):
        """False if `cls` is not in Java 7's API."""
        if cls in self.members or cls not in self.entries:
            return cls in self.members
        path = os.path.join(self.tmp, cls.replace("/", "_") + ".class")
        with open(path, "wb") as f:
            f.write(self.zip.read(self.entries[cls]))
        out = subprocess.run(["javap", "-p", "-s", path], capture_output=True, text=True, check=True).stdout
        header = out.split("{", 1)[0]
        while re.search(r"<[^<>]*>", header):
            header = re.sub(r"<[^<>]*>", "", header)  # "class A extends B implements C, D" without generics
        self.supers[cls] = [x.replace(".", "/") for x in re.findall(r"(?:extends|implements|,)\s+([\w.$]+)", header)]
        self.members[cls] = set()
        for decl, desc in re.findall(r"\n  (.*?);\n    descriptor: (\S+)", out):
            name = decl.split("(")[0].split()[-1]
            self.members[cls].add(('"<init>"' if name == cls.replace("/", ".") else name, desc))
        return True

    def has(self, cls, name, desc):
        if not self.load(cls):
            return False
        return (name, desc) in self.members[cls] or any(
            self.has(s, name, desc) for s in self.supers[cls] + ["java/lang/Object"] if s != cls)


def test_android_modules_use_only_apis_of_their_min_sdk(android_classes, tmp_path):
    """minSdk 23: the java.* members that slu-core, predictor/ and app/ use are all in Java 7's API (Android 7.0,
    API 24, brought Java 8's: streams, String.codePoints(), Map.putIfAbsent, ...), and none in the Java 7 packages
    Android added at API 26. android.* is held to API 23 by the stubs, which declare nothing newer."""
    if not shutil.which("javap"):
        missing_prerequisite("no javap", "bash scripts/system_packages.sh")
    for f in ("app", "predictor"):
        assert re.search(r"minSdk 23\b", open(os.path.join(ANDROID, f, "build.gradle")).read()), f
    api = Java7Api(tmp_path)
    classes, members = referenced_java_api(android_classes)
    assert {"java/lang/String", "java/text/Normalizer", "java/io/File"} <= classes  # the test's own premise
    bad = sorted(c for c in classes if c.startswith(("java/nio/file/", "java/lang/invoke/")) or not api.load(c))
    bad += sorted(f"{o}.{n}:{d}" for o, n, d in members if not api.has(o, n, d))
    assert not bad, "not in Android API 23: " + ", ".join(bad)


def test_gradle_fetches_the_static_libcxx_archive_pinned_by_sha256():
    """c++_static: libpaddle_lite_jni.so then needs no libc++_shared.so, which the app does not package. The
    release is the one of the paddlelite package that writes the .nb: requirements-legacy.txt's 2.13rc0 is the GitHub
    tag v2.13-rc (2.12 would be v2.12)."""
    pin = re.findall(r"^paddlelite==(\d+\.\d+)(rc\d+)?$", open(os.path.join(ROOT, "requirements-legacy.txt")).read(), re.M)
    assert len(pin) == 1
    tag = "v" + pin[0][0] + ("-rc" if pin[0][1] else "")
    assert tag == "v2.13-rc"  # the release the stubs follow (stubs/README.md): another one needs them re-checked
    props = dict(re.findall(r"^(\w+)=(.*)$", open(os.path.join(ANDROID, "gradle.properties")).read(), re.M))
    assert re.fullmatch(r"https://github\.com/PaddlePaddle/Paddle-Lite/releases/download/" + re.escape(tag) + "/"
                        r"inference_lite_lib\.android\.armv8\.clang\.c\+\+_static\.with_extra\.with_cv\.tar\.gz",
                        props["paddleLiteUrl"])
    assert re.fullmatch(r"|[0-9a-f]{64}", props["paddleLiteSha256"])  # empty until checked on a first fetch
    gradle = open(os.path.join(ANDROID, "predictor", "build.gradle")).read()
    assert "paddleLiteSha256" in gradle and "SHA-256" in gradle and "libc++_shared.so" in gradle


def test_gradle_refuses_to_download_without_a_sha256():
    """fetchPaddleLite's first statement refuses a paddleLiteSha256 that is not 64 hex digits (the empty pin of
    gradle.properties included), before the download. Read from the task's text: no Gradle can run here."""
    gradle = open(os.path.join(ANDROID, "predictor", "build.gradle")).read()
    body = gradle[gradle.index("tasks.register('fetchPaddleLite')"):]
    body = body[body.index("doLast {") + len("doLast {"):]
    first = re.match(r"\s*(?://[^\n]*\n\s*)*if \(!\(pin ==~ /\[0-9a-f\]\{64\}/\)\) \{\s*throw new GradleException\(", body)
    assert first, body[:400]
    assert "refusing" in body[:body.index("new URL(")] and "new URL(" not in body[:first.end()]
    assert "pin = (project.findProperty('paddleLiteSha256') ?: '').trim().toLowerCase()" in gradle


def test_predictor_never_calls_tensor_set_data_long(android_classes):
    """Paddle Lite v2.13-rc declares Tensor.setData(long[]) but exports its native half under a wrong JNI name
    (stubs/README.md): a call would throw UnsatisfiedLinkError on the phone. Inputs are fed as int32."""
    if not shutil.which("javap"):
        missing_prerequisite("no javap", "bash scripts/system_packages.sh")
    files = [os.path.join(d, f) for d, _, fs in os.walk(android_classes) for f in fs if f.endswith(".class")]
    out = subprocess.run(["javap", "-c", "-p", *files], capture_output=True, text=True, check=True).stdout
    calls = re.findall(r"// Method com/baidu/paddle/lite/Tensor\.setData:\((\[.)\)Z", out)
    assert calls and set(calls) == {"[I"}, calls


# ---- dialogue context and constrained slot decoding -------------------------------------------------------------
@pytest.fixture(scope="module")
def python_tokenizer(pico_dir):
    from slu.predictor import PythonTokenizer

    return PythonTokenizer.from_dir(str(pico_dir))


@pytest.mark.parametrize("max_seq_length, turns, max_context_length", deploy_golden.CONTEXT_SETTINGS)
def test_context_encoding_equals_add_context(java, pico_dir, labels, python_tokenizer, tmp_path, max_seq_length,
                                             turns, max_context_length):
    """SluEngine.encode of queries with their earlier turns (none, 1, 2, 3; cut to the budget; an empty one; every
    tokenizer edge case), the settings from deploy_config.json: ids, token types, offsets and truncation equal
    data.add_context's over PaddleNLP's tokenizer."""
    d = deploy_golden.write_model_dir(tmp_path / "m", pico_dir / "vocab.txt", labels, max_seq_length, turns,
                                      max_context_length)
    rows = java_rows(java, "--encode", d, deploy_golden.context_case_file(tmp_path / "cases.tsv"))
    expected = deploy_golden.expected_encodings(python_tokenizer, max_seq_length, turns, max_context_length)
    assert len(rows) == len(expected) == len(deploy_golden.CONTEXT_CASES)
    for row, exp, case in zip(rows, expected, deploy_golden.CONTEXT_CASES):
        assert row == exp, case
    if turns:  # the test's own premise: contexts in the input, filling the budget where it is small
        assert any(0 < r["token_type_ids"].count(1) < max_context_length for r in rows)
        assert max_context_length > 30 or any(r["token_type_ids"].count(1) == max_context_length for r in rows)


@pytest.mark.parametrize("mode", ["constrained", "argmax", "crf"])
def test_slot_decoding_equals_slot_decoder(java, pico_dir, labels, tmp_path, mode):
    """SlotDecoder as deploy_config.json sets it (slot_decoding, crf with seeded scores, intent_slot_types): the slot
    label ids of seeded random logits (ties among them) and crafted cases (WordPiece continuations, slot-less intents, intents the table
    lacks, ties, special tokens inside) equal decoding.SlotDecoder's."""
    d = deploy_golden.write_model_dir(tmp_path / "m", pico_dir / "vocab.txt", labels, slot_decoding=mode,
                                      intent_slot_types=deploy_golden.SLOT_TABLE)
    vocab = deploy_golden.vocab_lines(d)
    cases = deploy_golden.decode_cases(labels, vocab)
    rows = java_rows(java, "--decode", d, deploy_golden.decode_case_file(tmp_path / "cases.tsv", cases))
    expected = deploy_golden.expected_slot_ids(labels, vocab, mode, deploy_golden.SLOT_TABLE, cases)
    assert len(rows) == len(expected) == len(cases)
    for k, (row, exp) in enumerate(zip(rows, expected)):
        assert row == exp, k
    if mode == "crf":  # the test's own premise: the scores change answers that greedy decoding gives
        greedy = deploy_golden.expected_slot_ids(labels, vocab, "constrained", deploy_golden.SLOT_TABLE, cases)
        assert sum(g != e for g, e in zip(greedy, expected)) > 10


@pytest.mark.parametrize("mode", ["constrained", "argmax"])
def test_engine_with_context_and_constrained_decoding(java, pico_dir, labels, python_tokenizer, tmp_path, mode):
    """SluEngine.load of a directory whose manifest has context (2 turns in 12 tokens) and the decoding `mode`:
    predict(query, context) hands the runtime the ids and token types of data.add_context, and gives the intent,
    confidence and slots of decoding.postprocess with decoding.SlotDecoder on the runtime's outputs (seeded random
    logits: slots of every kind)."""
    from slu import decoding

    d = deploy_golden.write_model_dir(tmp_path / "m", pico_dir / "vocab.txt", labels, 16, 2, 12, mode,
                                      deploy_golden.SLOT_TABLE)
    cases = [(q, turns) for q, turns in deploy_golden.CONTEXT_CASES if "" not in turns]  # predict refuses ""
    encoded = deploy_golden.expected_encodings(python_tokenizer, 16, 2, 12, cases)
    decoder = decoding.SlotDecoder(labels, mode, deploy_golden.SLOT_TABLE,
                                   decoding.continuation_ids(deploy_golden.vocab_lines(d)))
    rng = np.random.default_rng(1)
    lines, expected = [], []
    for (q, turns), enc in zip(cases, encoded):
        il = rng.normal(0, 2, (1, len(labels.intents))).astype("float32")
        sl = rng.normal(0, 2, (1, len(enc["ids"]), len(labels.slots))).astype("float32")
        lines.append("\t".join([case_line(q, il, sl), *turns]))
        ref = decoding.postprocess([q], [enc["ids"]], [enc["offsets"]], il, sl, labels, decoder)[0]
        expected.append({"query": q, "ids": enc["ids"], "token_type_ids": enc["token_type_ids"],
                         "truncated": enc["truncated"], **ref})
    (tmp_path / "cases.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = java_rows(java, "--model-dir", d, tmp_path / "cases.tsv")
    assert len(rows) == len(expected)
    for row, exp in zip(rows, expected):
        assert row["confidence"] == pytest.approx(exp.pop("confidence"), abs=1e-6)
        del row["confidence"]
        assert row == exp, exp["query"]
    assert any(r["slot"] for r in rows)  # the test's own premise


def test_engine_refuses_a_slot_table_the_labels_cannot_hold(java, pico_dir, labels, tmp_path):
    d = deploy_golden.write_model_dir(tmp_path / "m", pico_dir / "vocab.txt", labels, slot_decoding="constrained",
                                      intent_slot_types={"OTHERS": ["nosuch"]})
    (tmp_path / "cases.tsv").write_text("你好\n", encoding="utf-8")
    path = d / "deploy_config.json"
    line = one_line_error(run_java(java, "--model-dir", d, tmp_path / "cases.tsv"), path)
    assert line == f'{path}: intent_slot_types: intent "OTHERS" allows slot type "nosuch", which the slot labels lack'
