"""Careless input to the entry scripts: a one-line `script: error: ...` naming the file or flag, exit code 1, no
traceback, and nothing written or aborted. (split_data.py: tests/test_split_data.py; the server: test_server.py.)"""
import json
import shutil
import struct

import pytest

from conftest import run_py, run_script
from helpers import crafted_loop, crafted_negative_dimension

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


@pytest.mark.parametrize("damage, message", [
    ("loop", "negative dimension"),
    ("negative dimension", "negative dimension"),
    ("first half zeroed", "truncated or corrupt"),
    ("header size -1", "negative header size -1"),
    ("appended bytes", "more data after the"),
])
def test_crafted_parameter_files_get_a_one_line_refusal_and_never_hang(model_copy, damage, message):
    params = model_copy / "infer_model.pdiparams"
    data = params.read_bytes()
    if damage == "loop":
        crafted_loop(params)
    elif damage == "negative dimension":
        crafted_negative_dimension(params)
    elif damage == "first half zeroed":
        params.write_bytes(b"\x00" * (len(data) // 2) + data[len(data) // 2:])
    elif damage == "header size -1":
        params.write_bytes(data[:16] + struct.pack("<i", -1) + data[20:])
    else:
        params.write_bytes(data + b"\x00" * 24)
    for script, args in (("run_eval.py", ["--infer_prefix", str(model_copy / "infer_model"), "--test_path",
                                          str(model_copy / "intent_label.txt")]),
                         (DEMO, ["--model_dir", str(model_copy), "--backend", "onnx_runtime", "--text", "暂停"])):
        p = run_py([script, *args], check=False, timeout=300)  # it used to loop forever on the first one
        assert_one_line_error(p, script.split("/")[-1], f"{params}: truncated or corrupt")
        assert message in p.stderr


def test_walking_a_damaged_parameter_file_always_ends(model_copy):
    """Every single-byte change in the first 4 KiB (the headers of the first tensors) is refused or accepted,
    never loops or raises anything but ValueError."""
    from slu import program

    params = model_copy / "infer_model.pdiparams"
    data = params.read_bytes()
    for pos in range(0, 4096, 7):
        params.write_bytes(data[:pos] + bytes([data[pos] ^ 0xA5]) + data[pos + 1:])
        try:
            program.check_params(str(model_copy / "infer_model"))
        except ValueError as e:
            assert str(e).startswith(f"{params}: "), e


@pytest.mark.parametrize("flags, message", [
    (["--cpu_num_threads", "0"], "--cpu_num_threads must be at least 1, not 0"),
    (["--batch_size", "0"], "--batch_size must be at least 1, not 0"),
])
def test_demo_refuses_impossible_settings(trained_pico, flags, message):
    p = run_py([DEMO, "--model_dir", str(trained_pico), "--backend", "paddle", *flags], check=False)
    assert_one_line_error(p, "infer_demo.py", message)


def test_run_eval_refuses_an_empty_input_file_and_zero_batch(trained_pico, tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    prefix = str(trained_pico / "infer_model")
    for extra, message in (([], "no queries"), (["--do_eval"], "no examples")):
        p = run_py(["run_eval.py", "--infer_prefix", prefix, "--test_path", str(tmp_path / "empty.txt"), *extra],
                   check=False)
        assert_one_line_error(p, "run_eval.py", f"{tmp_path / 'empty.txt'}: {message}")
    p = run_py(["run_eval.py", "--infer_prefix", prefix, "--test_path", str(tmp_path / "empty.txt"),
                "--per_device_eval_batch_size", "0"], check=False)
    assert_one_line_error(p, "run_eval.py", "--per_device_eval_batch_size must be at least 1, not 0")


def test_run_train_without_device_on_a_cpu_build_is_a_one_line_error(pico_dir, corpus_subset, tmp_path):
    p = run_py(["run_train.py", "--do_train", "--model_name_or_path", str(pico_dir), "--output_dir",
                str(tmp_path / "o"), "--train_path", str(corpus_subset / "train.txt")], check=False)
    assert_one_line_error(p, "run_train.py", "--device gpu (PaddleNLP's default): this PaddlePaddle has no CUDA")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("backend", ["paddle", "onnx_runtime", "openvino", "paddle_lite", "paddle_inference"])
def test_demo_stdout_holds_only_its_json_lines_one_query_at_a_time(trained_pico, backend):
    """FastDeploy prints "[INFO] ... Runtime initialized" on stdout: it goes to stderr now. One query at a time
    (batch 1) on every backend: OpenVINO was seen to fail on batch 1."""
    texts = ["暂停", "来一首周华健的花心"]
    p = run_py([DEMO, "--model_dir", str(trained_pico), "--backend", backend, *[a for t in texts for a in ("--text", t)]])
    lines = p.stdout.splitlines()
    assert [json.loads(x)["query"] for x in lines] == texts, p.stdout


@pytest.fixture
def pir_only_copy(model_copy):
    """An exported directory with Paddle 3's PIR program (infer_model.json) and no .pdmodel."""
    (model_copy / "infer_model.pdmodel").unlink()
    return model_copy


def test_a_pir_only_directory_gets_the_same_refusals(pir_only_copy):
    """Crafted parameters are counted against the PIR program's parameters; a damaged PIR program and a backend
    that cannot read PIR are one-line errors naming the file."""
    params, prefix = pir_only_copy / "infer_model.pdiparams", str(pir_only_copy / "infer_model")
    eval_cmd = ["run_eval.py", "--infer_prefix", prefix, "--test_path", str(pir_only_copy / "intent_label.txt")]
    data = params.read_bytes()
    params.write_bytes(data + b"\x00" * 24)
    assert_one_line_error(run_py(eval_cmd, check=False), "run_eval.py", f"{params}: truncated or corrupt")
    crafted_loop(params)
    assert_one_line_error(run_py(eval_cmd, check=False, timeout=300), "run_eval.py", f"{params}: truncated or corrupt")
    params.write_bytes(data)
    p = run_py([DEMO, "--model_dir", str(pir_only_copy), "--backend", "onnx_runtime", "--text", "暂停"], check=False)
    assert_one_line_error(p, "infer_demo.py", f"{prefix}.json is Paddle 3's PIR program, which only --backend "
                                              f"paddle_inference runs; onnx_runtime reads {prefix}.pdmodel")
    program = pir_only_copy / "infer_model.json"
    program.write_bytes(program.read_bytes()[:5000])
    assert_one_line_error(run_py(eval_cmd, check=False), "run_eval.py", f"{program}: not a Paddle PIR program")
    program.unlink()
    assert_one_line_error(run_py(eval_cmd, check=False), "run_eval.py",
                          f"model file not found: {prefix}.pdmodel (nor Paddle 3's PIR program {prefix}.json)")
