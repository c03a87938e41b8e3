"""Careless input to the entry scripts: a one-line `script: error: ...` naming the file or flag, exit code 1, no
traceback, and nothing written or aborted. (split_data.py: tests/test_split_data.py; the server: test_server.py.)"""
import shutil

import pytest

from conftest import run_py, run_script

DEMO = "deploy/python/infer_demo.py"


def assert_one_line_error(p, script, message):
    assert p.returncode == 1, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{script}: error: ") and message in last, last


@pytest.fixture
def model_copy(trained_pico, tmp_path):
    """An exported directory to damage."""
    d = tmp_path / "m"
    shutil.copytree(trained_pico, d, ignore=shutil.ignore_patterns("checkpoint-*", "runs", "pretrained_model"))
    return d


def test_run_train_empty_train_file(pico_dir, corpus_subset, tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    p = run_script("scripts/train.sh", dict(MODEL=pico_dir, OUTPUT=tmp_path / "o", TRAIN=tmp_path / "empty.txt",
                                            DEV=corpus_subset / "dev.txt"), check=False)
    assert_one_line_error(p, "run_train.py", f"{tmp_path / 'empty.txt'}: no examples")
    assert not (tmp_path / "o" / "pretrained_model").exists()


def test_run_train_output_dir_is_a_file_and_missing_model(pico_dir, corpus_subset, tmp_path):
    (tmp_path / "out").write_text("not a directory")
    env = dict(MODEL=pico_dir, OUTPUT=tmp_path / "out", TRAIN=corpus_subset / "train.txt",
               DEV=corpus_subset / "dev.txt")
    p = run_py(["run_train.py", "--do_train", "--model_name_or_path", str(pico_dir), "--output_dir",
                str(tmp_path / "out"), "--train_path", env["TRAIN"], "--device", "cpu"], check=False)
    assert_one_line_error(p, "run_train.py", f"--output_dir {tmp_path / 'out'} is a file, not a directory")
    assert (tmp_path / "out").read_text() == "not a directory"
    p = run_script("scripts/train.sh", dict(env, MODEL=tmp_path / "nothing", OUTPUT=tmp_path / "o2"), check=False)
    assert_one_line_error(p, "run_train.py", f"--model_name_or_path {tmp_path / 'nothing'}: no such directory")


def test_run_eval_output_dir_is_a_file(trained_pico, corpus_subset, tmp_path):
    (tmp_path / "out").write_text("x")
    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path",
                str(corpus_subset / "dev.txt"), "--output_dir", str(tmp_path / "out")], check=False)
    assert_one_line_error(p, "run_eval.py", f"--output_dir {tmp_path / 'out'} is a file, not a directory")


@pytest.mark.parametrize("vocab, message", [
    (b"", "no [PAD], [CLS], [SEP], [UNK] tokens"),
    (b"[PAD]\n[CLS]\n\xff\xfe\n", "vocab.txt:3: not valid UTF-8"),
    ("[CLS]\n[PAD]\n[SEP]\n[UNK]\n".encode(), "[PAD] is on line 2, deploy_config.json says pad_token_id 0"),
])
def test_corrupt_vocab(model_copy, vocab, message):
    (model_copy / "vocab.txt").write_bytes(vocab)
    for script, args in (("run_eval.py", ["--test_path", str(model_copy / "intent_label.txt")]),
                         (DEMO, ["--model_dir", str(model_copy), "--backend", "onnx_runtime", "--use_fast"])):
        cmd = [script, "--infer_prefix", str(model_copy / "infer_model"), *args] if script == "run_eval.py" else \
            [script, *args]
        assert_one_line_error(run_py(cmd, check=False), script.split("/")[-1], message)


def test_vocab_longer_than_the_embedding_table(model_copy):
    with open(model_copy / "vocab.txt", "a", encoding="utf-8") as f:
        f.write("多\n余\n")
    p = run_py([DEMO, "--model_dir", str(model_copy), "--backend", "onnx_runtime"], check=False)
    assert_one_line_error(p, "infer_demo.py", "tokens, the model has")


@pytest.mark.parametrize("backend", ["onnx_runtime", "paddle", "paddle_lite", "paddle_inference"])
def test_truncated_parameters_are_refused_before_the_runtime_aborts(model_copy, backend):
    params = model_copy / "infer_model.pdiparams"
    params.write_bytes(params.read_bytes()[:params.stat().st_size // 2])
    p = run_py([DEMO, "--model_dir", str(model_copy), "--backend", backend, "--text", "暂停"], check=False)
    assert_one_line_error(p, "infer_demo.py", f"{params}: truncated or corrupt")


def test_garbage_program_and_parameters(model_copy):
    (model_copy / "infer_model.pdiparams").write_bytes(b"\x00" * 64)
    p = run_py([DEMO, "--model_dir", str(model_copy), "--backend", "onnx_runtime"], check=False)
    assert_one_line_error(p, "infer_demo.py", "infer_model.pdiparams: ")
    (model_copy / "infer_model.pdmodel").write_bytes(b"not a program")
    p = run_py(["run_eval.py", "--infer_prefix", str(model_copy / "infer_model"), "--test_path",
                str(model_copy / "intent_label.txt")], check=False)
    assert_one_line_error(p, "run_eval.py", "infer_model.pdmodel: not a Paddle program")


def test_demo_empty_input_file_is_an_error_not_the_built_in_examples(trained_pico, tmp_path):
    (tmp_path / "q.txt").write_text("\n  \n")
    p = run_py([DEMO, "--model_dir", str(trained_pico), "--backend", "onnx_runtime", "--input_file",
                str(tmp_path / "q.txt")], check=False)
    assert_one_line_error(p, "infer_demo.py", f"{tmp_path / 'q.txt'}: no queries")
    assert "来一首周华健的花心" not in p.stdout
