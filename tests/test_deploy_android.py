"""deploy/android: the plain-Java tokenizer, labels and slot decoding against the Python pipeline (JDK)."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT

CORE = os.path.join(ROOT, "deploy", "android", "slu-core", "src")


@pytest.fixture(scope="module")
def java(tmp_path_factory):
    if not (shutil.which("javac") and shutil.which("java")):
        print("SKIPPED: no JDK (javac/java) on this machine: the plain-Java part cannot be compiled")
        pytest.skip("no JDK (javac/java): the plain-Java part cannot be compiled")
    out = tmp_path_factory.mktemp("javac")
    sources = [os.path.join(d, f) for base in ("main", "test") for d, _, fs in os.walk(os.path.join(CORE, base))
               for f in fs if f.endswith(".java")]
    p = subprocess.run(["javac", "-encoding", "UTF-8", "-Xlint:all", "-Werror", "-d", str(out), *sources],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def run_java(classes, *args):
    p = subprocess.run(["java", "-cp", str(classes), "com.ernietiny.slu.GoldenMain", *map(str, args)],
                       capture_output=True, text=True, encoding="utf-8", timeout=300)
    return p


def test_golden_ids_and_decoded_slots_on_every_dev_query(java, trained_pico, corpus_subset, tmp_path):
    """Token ids equal PaddleNLP's; given the same logits (from the exported model), intent, confidence and
    slots equal core.postprocess's."""
    from paddlenlp.transformers import AutoTokenizer

    from slu import core, manifest
    from slu.predictor import PaddleInferenceRuntime

    labels = manifest.labels(str(trained_pico))
    tok = AutoTokenizer.from_pretrained(str(trained_pico))
    queries = [q for _, q in core.read_queries(str(corpus_subset / "dev.txt"))]
    predictor = PaddleInferenceRuntime(str(trained_pico / "infer_model"))
    cases, expected = [], []
    for q in queries:
        ids, offsets, truncated = core.encode_queries(tok, [q], 16)
        il, sl = predictor(np.array(ids, dtype="int32"))
        expected.append({"query": q, "ids": ids[0], "truncated": truncated[0],
                         **core.postprocess([q], offsets, il, sl, labels)[0]})
        cases.append(f"{q}\t{' '.join(repr(float(x)) for x in il[0])}\t"
                     f"{' '.join(repr(float(x)) for x in sl[0].reshape(-1))}")
    (tmp_path / "cases.tsv").write_text("\n".join(cases) + "\n", encoding="utf-8")
    p = run_java(java, trained_pico / "vocab.txt", trained_pico / "intent_label.txt", trained_pico / "slot_label.txt",
                 tmp_path / "cases.tsv")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(rows) == len(expected) == 150
    for row, exp in zip(rows, expected):
        assert row["ids"] == exp["ids"], exp["query"]
        assert row["truncated"] == exp["truncated"]
        assert (row["intent"], row["slot"]) == (exp["intent"], exp["slot"]), exp["query"]
        assert row["confidence"] == pytest.approx(exp["confidence"], abs=1e-6)


def test_tokenizer_edge_cases(java, trained_pico, tmp_path):
    from paddlenlp.transformers import AutoTokenizer

    from slu import core

    texts = ["播放Taylor Swift的Shape of You", "Café Déjà Vu", "ＡＢＣ１２３", "导航到,北京!西站?", "  打 电话\u3000给 110 ",
             "放一首𠮷野家", "来一首周华健的花心" * 3, "ÀÉÎÕÜ ñ ß İ", "ok"]
    ids, _, truncated = core.encode_queries(AutoTokenizer.from_pretrained(str(trained_pico)), texts, 16)
    (tmp_path / "cases.tsv").write_text("\n".join(texts) + "\n", encoding="utf-8")
    p = run_java(java, trained_pico / "vocab.txt", trained_pico / "intent_label.txt", trained_pico / "slot_label.txt",
                 tmp_path / "cases.tsv")
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["ids"] for r in rows] == ids
    assert [r["truncated"] for r in rows] == truncated


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


def test_model_dir_golden_mode_takes_files_and_settings_from_the_manifest(java, tmp_path):
    """--model-dir reads DIR/deploy_config.json as SluPredictor does: its file names, lower-casing, max length,
    and the label files' sizes checked against the model's output sizes."""
    (tmp_path / "words.txt").write_text("[PAD]\n[CLS]\n[SEP]\n[UNK]\n你\n好\nab\n", encoding="utf-8")
    (tmp_path / "intents.txt").write_text("A\nB\n", encoding="utf-8")
    (tmp_path / "slots.txt").write_text("O\nB-x\nI-x\n", encoding="utf-8")
    manifest = dict(vocab_file="words.txt", intent_label_file="intents.txt", slot_label_file="slots.txt",
                    num_intents=2, num_slot_labels=3, max_seq_length=4, max_position_embeddings=8,
                    do_lower_case=True)
    path = write_manifest(tmp_path / "deploy_config.json", **manifest)
    slot_logits = "9 0 0 0 9 0 0 0 9 9 0 0"  # [CLS] O, 你 B-x, 好 I-x, [SEP] O
    (tmp_path / "cases.tsv").write_text(f"你好AB\n你好\t0 1\t{slot_logits}\n", encoding="utf-8")

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
    if not shutil.which("javac"):
        pytest.skip("no JDK (javac)")
    sources = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(CORE, "main")) for f in fs
               if f.endswith(".java")]
    p = subprocess.run(["javac", "--release", "8", "-encoding", "UTF-8", "-Xlint:all,-options", "-Werror",
                        "-d", str(tmp_path), *sources], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
