"""Train -> export -> run_eval on a small subset of the shared corpus, resume, and bad arguments."""
import json
import os
import re
import shutil
from collections import Counter

import pytest

from conftest import INTENT_LABELS, run_py, run_script


def train(pico_dir, corpus_subset, out, *extra, check=True):
    """scripts/train.sh on the corpus subset."""
    env = dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt", DEV=corpus_subset / "dev.txt", LR="1e-3")
    return run_script("scripts/train.sh", env, *extra, check=check)


def test_export_writes_a_deployable_directory(trained_pico, corpus_subset, labels):
    from slu import manifest
    from slu.program import model_input_dtype

    for name in ["infer_model.pdmodel", "infer_model.pdiparams", "vocab.txt", "tokenizer_config.json",
                 "intent_label.txt", "slot_label.txt", "pretrained_model/config.json", "deploy_config.json"]:
        assert (trained_pico / name).is_file(), name
    assert model_input_dtype(str(trained_pico / "infer_model.pdmodel")) == "int32"
    config = json.load(open(trained_pico / "deploy_config.json"))
    assert manifest.read(str(trained_pico)) == config
    assert (config["max_seq_length"], config["max_position_embeddings"], config["input_dtype"]) == (16, 16, "int32")
    assert (config["num_intents"], config["num_slot_labels"]) == (11, 32)
    assert config["models"] == {"infer_model": "fine-tuned"}
    # slot-less intents: the intents seen in the subset's train + dev lines that never carry a slot there
    lines = [l.split("\t") for part in ("train", "dev") for l in open(corpus_subset / f"{part}.txt", encoding="utf-8")
             if l.strip()]
    seen, with_slot = {c[2] for c in lines}, {c[2] for c in lines if "</" in c[3]}
    assert set(config["slotless_intents"]) == seen - with_slot and config["slotless_intents"]
    # --save_total_limit 1 is honoured on one CPU process (PaddleNLP alone keeps every checkpoint)
    # (PaddleNLP keeps the best checkpoint beside the last one even with a limit of 1)
    best = json.load(open(trained_pico / "trainer_state.json"))["best_model_checkpoint"].rstrip("/").split("/")[-1]
    assert {d.name for d in trained_pico.glob("checkpoint-*")} == {"checkpoint-240", best}
    assert (trained_pico / "intent_label.txt").read_text() == open(INTENT_LABELS).read()
    # upstream's deploy/python/infer_demo.py reads slots_label.txt from the model directory
    assert (trained_pico / "slots_label.txt").read_text() == (trained_pico / "slot_label.txt").read_text()
    cfg = json.load(open(trained_pico / "config.json"))
    assert cfg["max_position_embeddings"] == 16
    assert cfg["vocab_size"] == len((trained_pico / "vocab.txt").read_text(encoding="utf-8").split("\n")) - 1


def gold_slots(annotated):
    """(type, first char, last char) of each slot of an annotated query, worked out here with a regex (the first
    ASR alternative is what the query holds)."""
    out, pos, plain = [], 0, 0
    for m in re.finditer(r"<([a-z_]+)>(.*?)</\1>", annotated):
        plain += len(annotated[pos:m.start()])
        value = m.group(2).split("||")[0]
        out.append((m.group(1), plain, plain + len(value) - 1))
        plain += len(value)
        pos = m.end()
    return out


def test_eval_report_scores_every_slot_type_and_counts_confusions(trained_pico, corpus_subset, tmp_path):
    """run_eval.py --do_eval's per-slot precision/recall/F1 and intent confusions equal counts made here from its
    own predictions (predict mode) against the corpus annotation: whole values, exact type and position. A query
    longer than the model's 14 tokens is scored on what the model sees: its gold slots are cut where PaddleNLP's
    tokenizer puts the end of the 14th token."""
    from paddlenlp.transformers import ErnieTokenizer

    tokenizer = ErnieTokenizer.from_pretrained(str(trained_pico))
    dev = corpus_subset / "dev.txt"
    prefix = str(trained_pico / "infer_model")
    p = run_py(["run_eval.py", "--infer_prefix", prefix, "--test_path", str(dev), "--do_eval",
                "--output_dir", str(tmp_path / "eval")])
    report = json.load(open(tmp_path / "eval" / "eval_results.json"))
    printed = p.stdout.strip().splitlines()
    assert printed[0].split() == ["slot", "precision", "recall", "f1", "support"]
    assert json.loads(printed[-1])["slot_f1"] == report["slot_micro"]["f1"]
    run_py(["run_eval.py", "--infer_prefix", prefix, "--test_path", str(dev), "--output_dir", str(tmp_path / "pred")])
    preds = [json.loads(x) for x in open(tmp_path / "pred" / "predictions.jsonl", encoding="utf-8")]
    rows = [l.rstrip("\n").split("\t") for l in open(dev, encoding="utf-8") if l.strip()]
    assert len(rows) == len(preds) == 150
    tp, fp, fn = Counter(), Counter(), Counter()
    truncated = 0
    for cols, pred in zip(rows, preds):
        gold = set(gold_slots(cols[3]))
        if pred.get("truncated"):
            truncated += 1
            seen = tokenizer(cols[1], return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"][13][1]
            gold = {(t, a, min(b, seen - 1)) for t, a, b in gold if a < seen}
        got = {(s["slot"], s["pos"][0], s["pos"][1]) for s in pred["slot"]}
        for t, *_ in gold & got:
            tp[t] += 1
        for t, *_ in got - gold:
            fp[t] += 1
        for t, *_ in gold - got:
            fn[t] += 1
    assert truncated and set(report["slots"]) == set(tp) | set(fp) | set(fn)
    for t, r in report["slots"].items():
        assert r["support"] == tp[t] + fn[t], t
        assert r["precision"] == pytest.approx(tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 0, abs=1e-6), t
        assert r["recall"] == pytest.approx(tp[t] / (tp[t] + fn[t]) if tp[t] + fn[t] else 0, abs=1e-6), t
    micro_p = sum(tp.values()) / (sum(tp.values()) + sum(fp.values()))
    assert report["slot_micro"]["precision"] == pytest.approx(micro_p, abs=1e-6)
    confusions = Counter((cols[2], pred["intent"]) for cols, pred in zip(rows, preds) if cols[2] != pred["intent"])
    top = sorted(confusions.values(), reverse=True)[:10]
    assert [c["count"] for c in report["intent_confusions"]] == top
    assert all(confusions[(c["gold"], c["predicted"])] == c["count"] for c in report["intent_confusions"])


def test_static_accuracy_equals_dynamic(trained_pico, corpus_subset, tmp_path):
    dev = corpus_subset / "dev.txt"
    run_py(["run_train.py", "--device", "cpu", "--model_name_or_path", str(trained_pico), "--dev_path", str(dev),
            "--output_dir", str(tmp_path / "dyn"), "--do_eval", "--per_device_eval_batch_size", "64"])
    dyn = json.load(open(tmp_path / "dyn" / "eval_results.json"))
    p = run_script("scripts/eval.sh", dict(OUTPUT=tmp_path / "static", INFER_PREFIX=trained_pico / "infer_model",
                                           TEST=dev), "--per_device_eval_batch_size", "50")
    static = json.loads(p.stdout.strip().splitlines()[-1])
    assert static["examples"] == 150
    assert static["accuracy"] == pytest.approx(dyn["eval_accuracy"], abs=1e-6)
    assert static["intent_accuracy"] == pytest.approx(dyn["eval_intent_accuracy"], abs=1e-6)
    # it learned something: better than always answering the most frequent intent of the subset
    golds = [l.split("\t")[2] for l in open(dev, encoding="utf-8") if "\t" in l]
    assert static["intent_accuracy"] > max(golds.count(g) for g in set(golds)) / len(golds)


def test_predictions_format_and_positions(trained_pico, tmp_path):
    q = tmp_path / "q.txt"
    q.write_text("打电话给18866668888\n\n来一首周华健的花心\n" + "播放" * 20 + "\n", encoding="utf-8")
    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path", str(q)])
    rows = [json.loads(x) for x in p.stdout.strip().splitlines()]
    assert [r["query"] for r in rows] == ["打电话给18866668888", "来一首周华健的花心", "播放" * 20]
    labels = open(INTENT_LABELS).read().split()
    for r in rows:
        assert r["intent"] in labels and 0 < r["confidence"] <= 1
        for s in r["slot"]:
            assert r["query"][s["pos"][0]:s["pos"][1] + 1] == s["entity"]
    assert rows[2].get("truncated") is True and "q.txt:4: query longer than 14 tokens, truncated" in p.stderr


def test_run_eval_errors(trained_pico, tmp_path):
    p = run_py(["run_eval.py", "--infer_prefix", str(tmp_path / "nothing"), "--test_path", INTENT_LABELS],
               check=False)
    assert p.returncode != 0 and f"{tmp_path / 'deploy_config.json'}: not found" in p.stderr
    os.makedirs(tmp_path / "m")
    for f in os.listdir(trained_pico):
        if not os.path.isdir(trained_pico / f) and not f.startswith("infer_model"):
            shutil.copy(trained_pico / f, tmp_path / "m")
    p = run_py(["run_eval.py", "--infer_prefix", str(tmp_path / "m" / "infer_model"), "--test_path", INTENT_LABELS],
               check=False)
    assert p.returncode != 0 and f"model file not found: {tmp_path / 'm' / 'infer_model'}.pdmodel" in p.stderr
    import numpy as np

    from slu.predictor import Predictor

    pred = Predictor.from_dir(str(trained_pico), backend="paddle_inference")
    with pytest.raises(TypeError, match="input_ids has dtype int64, the model expects int32"):
        pred.run(np.ones((1, 4), dtype="int64"))


@pytest.mark.parametrize("flags, message", [
    (["--max_seq_length", "17"], "max length 17 exceeds the model's 16 position embeddings"),
    (["--max_seq_length", "2"], "max length 2 is below 3"),
])
def test_run_eval_refuses_a_max_length_the_model_cannot_serve(trained_pico, corpus_subset, flags, message):
    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path",
                str(corpus_subset / "dev.txt"), *flags], check=False)
    assert p.returncode == 1 and message in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_label_files_that_do_not_match_the_model_are_refused(trained_pico, tmp_path):
    shutil.copytree(trained_pico, tmp_path / "m", ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    intents = (tmp_path / "m" / "intent_label.txt").read_text().split()
    (tmp_path / "m" / "intent_label.txt").write_text("\n".join(intents[:8]) + "\n")
    p = run_py(["run_eval.py", "--infer_prefix", str(tmp_path / "m" / "infer_model"), "--test_path",
                INTENT_LABELS], check=False)
    assert p.returncode == 1 and "the model outputs 11 intent labels, the intent label file has 8" in p.stderr
    # the same labels in another order would run and answer wrong (issue 13: accuracy 0.098): refused too
    (tmp_path / "m" / "intent_label.txt").write_text("\n".join(intents[1:] + intents[:1]) + "\n")
    p = run_py(["run_eval.py", "--infer_prefix", str(tmp_path / "m" / "infer_model"), "--test_path",
                INTENT_LABELS], check=False)
    assert p.returncode == 1 and "the intent labels are not the ones the model was trained with" in p.stderr


def test_bad_arguments_fail_before_training(pico_dir, corpus_subset, tmp_path):
    p = train(pico_dir, corpus_subset, tmp_path / "o", "--do_compress", "--strategy", "dynabert+qat+embeddings",
              check=False)
    assert p.returncode != 0 and "--do_compress cannot be combined with --do_train" in p.stderr
    p = run_script("scripts/train.sh", dict(MODEL=pico_dir, OUTPUT=tmp_path / "o", TRAIN=tmp_path / "missing.txt",
                                            DEV=corpus_subset / "dev.txt"), check=False)
    assert p.returncode != 0 and f"file not found: {tmp_path / 'missing.txt'}" in p.stderr
    for flags, message in ((["--max_seq_length", "2"], "--max_seq_length must be at least 3"),
                           (["--input_dtype", "float32"], "--input_dtype must be int32 or int64")):
        p = train(pico_dir, corpus_subset, tmp_path / "o", *flags, check=False)
        assert p.returncode != 0 and message in p.stderr, p.stderr[-2000:]
    p = train(pico_dir, corpus_subset, tmp_path / "o", "--max_seq_length", "3000",
              check=False)  # pico has 2048 position embeddings: refused before pruning
    assert p.returncode != 0 and "--max_seq_length 3000 exceeds the 2048 position embeddings" in p.stderr
    assert not (tmp_path / "o" / "pretrained_model").exists()


def test_an_incomplete_checkpoint_named_explicitly_is_refused(pico_dir, corpus_subset, tmp_path):
    (tmp_path / "checkpoint-5").mkdir()
    p = train(pico_dir, corpus_subset, tmp_path / "o", "--resume_from_checkpoint", tmp_path / "checkpoint-5",
              check=False)
    assert p.returncode == 1 and "incomplete checkpoint (the run stopped while writing or deleting it)" in p.stderr
