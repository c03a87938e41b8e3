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
                       capture_output=True, text=True, timeout=300)
    return p


def test_golden_ids_and_decoded_slots_on_every_dev_query(java, trained_pico, corpus_subset, tmp_path):
    """Token ids equal PaddleNLP's; given the same logits (from the exported model), intent, confidence and
    slots equal utils.postprocess's."""
    from paddlenlp.transformers import AutoTokenizer

    import utils
    from run_eval import StaticPredictor

    labels = utils.LabelSet.from_dir(str(trained_pico))
    tok = AutoTokenizer.from_pretrained(str(trained_pico))
    queries = [q for _, q in utils.read_queries(str(corpus_subset / "dev.txt"))]
    predictor = StaticPredictor(str(trained_pico / "infer_model"))
    cases, expected = [], []
    for q in queries:
        ids, offsets, truncated = utils.encode_queries(tok, [q], 16)
        il, sl = predictor(np.array(ids, dtype="int32"))
        expected.append({"query": q, "ids": ids[0], "truncated": truncated[0],
                         **utils.postprocess([q], offsets, il, sl, labels)[0]})
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

    import utils

    texts = ["播放Taylor Swift的Shape of You", "Café Déjà Vu", "ＡＢＣ１２３", "导航到,北京!西站?", "  打 电话\u3000给 110 ",
             "放一首𠮷野家", "来一首周华健的花心" * 3, "ÀÉÎÕÜ ñ ß İ", "ok"]
    ids, _, truncated = utils.encode_queries(AutoTokenizer.from_pretrained(str(trained_pico)), texts, 16)
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
