"""Train -> export -> run_eval on a small subset of the shared corpus, resume, and bad arguments."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import INTENT_LABELS, ROOT, SLOT_LABELS, run_py, train_args


def test_export_writes_a_deployable_directory(trained_pico):
    from run_eval import model_input_dtype

    for name in ["infer_model.pdmodel", "infer_model.pdiparams", "vocab.txt", "tokenizer_config.json",
                 "intent_label.txt", "slot_label.txt", "pretrained_model/config.json"]:
        assert (trained_pico / name).is_file(), name
    assert model_input_dtype(str(trained_pico / "infer_model.pdmodel")) == "int32"
    # --save_total_limit 1 is honoured on one CPU process (PaddleNLP alone keeps every checkpoint)
    assert sorted(d.name for d in trained_pico.glob("checkpoint-*")) == ["checkpoint-240"]
    assert (trained_pico / "intent_label.txt").read_text() == open(INTENT_LABELS).read()
    cfg = json.load(open(trained_pico / "config.json"))
    assert cfg["max_position_embeddings"] == 16
    assert cfg["vocab_size"] == len((trained_pico / "vocab.txt").read_text(encoding="utf-8").split("\n")) - 1


def test_static_accuracy_equals_dynamic(trained_pico, corpus_subset, tmp_path):
    dev = corpus_subset / "dev.txt"
    run_py(["run_train.py", "--device", "cpu", "--model_name_or_path", str(trained_pico), "--dev_path", str(dev),
            "--output_dir", str(tmp_path / "dyn"), "--do_eval", "--per_device_eval_batch_size", "64",
            "--label_names", "intent_label", "slot_label", "--intent_label_path", INTENT_LABELS,
            "--slot_label_path", SLOT_LABELS])
    dyn = json.load(open(tmp_path / "dyn" / "eval_results.json"))
    p = run_py(["run_eval.py", "--device", "cpu", "--model_name_or_path", str(trained_pico), "--infer_prefix",
                str(trained_pico / "infer_model"), "--output_dir", str(tmp_path / "static"), "--test_path", str(dev),
                "--intent_label_path", INTENT_LABELS, "--slot_label_path", SLOT_LABELS, "--max_seq_length", "16",
                "--per_device_eval_batch_size", "50", "--do_eval"])
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
    assert p.returncode != 0 and f"model file not found: {tmp_path / 'nothing'}.pdmodel" in p.stderr
    from run_eval import StaticPredictor
    import numpy as np

    pred = StaticPredictor(str(trained_pico / "infer_model"))
    with pytest.raises(TypeError, match="input_ids has dtype int64, the model expects int32"):
        pred(np.ones((1, 4), dtype="int64"))


def test_bad_arguments_fail_before_training(pico_dir, corpus_subset, tmp_path):
    p = run_py(train_args(pico_dir, tmp_path / "o", corpus_subset / "train.txt", corpus_subset / "dev.txt",
                          "--do_compress", "--strategy", "dynabert+qat+embeddings"), check=False)
    assert p.returncode != 0 and "--do_compress cannot be combined with --do_train" in p.stderr
    p = run_py(train_args(pico_dir, tmp_path / "o", tmp_path / "missing.txt", corpus_subset / "dev.txt"), check=False)
    assert p.returncode != 0 and f"file not found: {tmp_path / 'missing.txt'}" in p.stderr
    assert not (tmp_path / "o" / "pretrained_model").exists()


def test_resume_after_interruption(pico_dir, corpus_subset, tmp_path):
    """Kill training after its first checkpoint; the same command without --overwrite_output_dir resumes there
    and finishes the planned steps."""
    out = tmp_path / "run"
    args = [a for a in train_args(pico_dir, out, corpus_subset / "train.txt", corpus_subset / "dev.txt",
                                  "--max_steps", "60", "--save_steps", "10", "--eval_steps", "10", "--per_device_train_batch_size", "16",
                                  "--save_total_limit", "3") if a != "--overwrite_output_dir"]
    proc = subprocess.Popen([sys.executable] + args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoint-20" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoint-60").exists() and not (out / "infer_model.pdmodel").exists()
    done = sorted(int(d.name.split("-")[1]) for d in out.glob("checkpoint-*")
                  if (d / "trainer_state.json").exists())
    p = run_py(args)
    log = p.stdout + p.stderr
    assert f"Resuming from {out / f'checkpoint-{done[-1]}'}" in log
    assert f"Continuing training from global step {done[-1]}" in log
    state = json.load(open(out / "trainer_state.json"))
    assert state["global_step"] == 60
    assert (out / "infer_model.pdmodel").is_file()
