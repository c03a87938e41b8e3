"""A tiny end-to-end compression (pico, corpus subset, few steps, through scripts/compress.sh) and its
argument checks."""
import json
import os

import numpy as np
import pytest

from conftest import run_py, run_script


def compress(model, out, corpus_subset, *extra, check=True):
    """scripts/compress.sh on the corpus subset."""
    env = dict(MODEL=model, OUTPUT=out, TRAIN=corpus_subset / "train.txt", DEV=corpus_subset / "dev.txt")
    return run_script("scripts/compress.sh", env, *extra, check=check)


def ids_batch(model_dir, queries):
    from paddlenlp.transformers import AutoTokenizer

    from slu import data

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids, _, _ = data.encode_queries(tok, queries, 16)
    return data.pad_batch(ids, tok.pad_token_id, "int32")


def dev_queries(corpus_subset, n=64):
    return [l.split("\t")[1] for l in open(corpus_subset / "dev.txt", encoding="utf-8") if "\t" in l][:n]


def assert_int8_matches_qat_model(width_dir, ids):
    """The INT8 program against the dynamic-graph QAT model it was saved from (fake-quant layers); returns the
    QAT model's logits."""
    import paddle

    from helpers import load_qat_model
    from slu.predictor import PaddleInferenceRuntime

    qat = [t.numpy() for t in load_qat_model(str(width_dir))(paddle.to_tensor(ids))]
    # the program as exported, quantization simulated in float (MKLDNN off): measured max difference about 1% of
    # the largest logit, from activation rounding
    int8 = PaddleInferenceRuntime(str(width_dir / "int8"), mkldnn=False)(ids)
    np.testing.assert_allclose(int8[0], qat[0], atol=0.02 * np.abs(qat[0]).max())
    np.testing.assert_allclose(int8[1], qat[1], atol=0.02 * np.abs(qat[1]).max())
    assert (int8[0].argmax(-1) == qat[0].argmax(-1)).mean() >= 0.95
    # Paddle Inference's INT8 oneDNN path (the default runtime) computes in INT8: further off (about 4%), same answers
    onednn = PaddleInferenceRuntime(str(width_dir / "int8"))(ids)
    assert (onednn[0].argmax(-1) == qat[0].argmax(-1)).mean() >= 0.95
    assert (onednn[1].argmax(-1) == qat[1].argmax(-1)).mean() >= 0.95
    return qat


def weight_matmuls(pdmodel):
    """(quantized, plain): how many matmuls of a static program multiply by a dequantized INT8 weight, and how
    many by an FP32 parameter."""
    from slu import program

    block = program.read_program(str(pdmodel)).blocks[0]
    params = {v.name for v in block.vars if v.persistable}
    quantized = plain = 0
    for op in block.ops:
        if op.type in ("matmul", "matmul_v2"):
            y = next(a for i in op.inputs if i.parameter == "Y" for a in i.arguments)
            quantized += y.endswith(".quantized.dequantized")
            plain += y in params
    return quantized, plain


def test_stage_files_and_sizes_shrink(compressed, trained_pico):
    w = compressed / "width_mult_0.5"
    for name in ["model_state.pdparams", "config.json", "pruned.pdmodel", "int8.pdmodel", "int8.pdiparams",
                 "quant_emb.pdmodel", "quant_emb.pdiparams", "vocab.txt", "tokenizer_config.json",
                 "intent_label.txt", "slot_label.txt", "deploy_config.json", "quant_emb.onnx"]:
        assert (w / name).is_file(), name
    config = json.load(open(w / "deploy_config.json"))  # max length and slot-less intents from the fine-tuned one
    fine_tuned = json.load(open(trained_pico / "deploy_config.json"))
    assert config["models"] == {"pruned": "pruned", "int8": "int8", "quant_emb": "int8+emb"}
    assert {k: v for k, v in config.items() if k != "models"} == {k: v for k, v in fine_tuned.items() if k != "models"}
    size = lambda p: os.path.getsize(str(p) + ".pdmodel") + os.path.getsize(str(p) + ".pdiparams")
    sizes = [size(trained_pico / "infer_model"), size(w / "pruned"), size(w / "int8"), size(w / "quant_emb")]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4, sizes
    report = json.load(open(compressed / "compress_report.json"))["stages"]
    assert [r["stage"] for r in report] == ["fine-tuned", "+ pruning (vocab + width)", "+ INT8 matmul (QAT)",
                                            "+ INT8 embeddings"]
    assert [round(s / 2 ** 20, 3) for s in sizes] == [r["size_mib"] for r in report]
    # pico: 128 hidden, 2 heads, 512 ffn; width 1/2 halves q/k/v/out and ffn weights of 3 layers
    fp, pr = report[0]["params"], report[1]["params"]
    assert fp - pr == 3 * (4 * 128 * 64 + 3 * 64 + 2 * 128 * 256 + 256)
    assert (compressed / "compress_report.md").read_text().count("\n|") == 6  # header, rule, 4 stages
    assert (compressed / "compress_report.png").stat().st_size > 5000


def test_width_pruned_weights_reload_and_static_agrees(compressed, corpus_subset):
    import paddle

    from slu.model import JointErnie
    from slu.predictor import PaddleInferenceRuntime

    w = compressed / "width_mult_0.5"
    model = JointErnie.from_pretrained(str(w), intent_dim=11, slot_dim=32)
    model.eval()
    assert model.ernie.encoder.layers[0].self_attn.q_proj.weight.shape == [128, 64]
    assert model.ernie.encoder.layers[0].linear1.weight.shape == [128, 256]
    ids = ids_batch(w, dev_queries(corpus_subset))
    dyn = [t.numpy() for t in model(paddle.to_tensor(ids))]
    static = PaddleInferenceRuntime(str(w / "pruned"))(ids)
    np.testing.assert_allclose(static[0], dyn[0], atol=1e-4)
    np.testing.assert_allclose(static[1], dyn[1], atol=1e-4)
    qat = assert_int8_matches_qat_model(w, ids)
    emb = PaddleInferenceRuntime(str(w / "quant_emb"))(ids)  # + log-quantized embeddings: close, not equal
    assert (emb[0].argmax(-1) == qat[0].argmax(-1)).mean() >= 0.95
    assert (emb[1].argmax(-1) == qat[1].argmax(-1)).mean() >= 0.95


def test_fine_tuned_static_agrees_with_dynamic(trained_pico, corpus_subset):
    import paddle

    from slu.model import JointErnie
    from slu.predictor import PaddleInferenceRuntime

    model = JointErnie.from_pretrained(str(trained_pico), intent_dim=11, slot_dim=32)
    model.eval()
    ids = ids_batch(trained_pico, dev_queries(corpus_subset))
    dyn = [t.numpy() for t in model(paddle.to_tensor(ids))]
    static = PaddleInferenceRuntime(str(trained_pico / "infer_model"))(ids)
    np.testing.assert_allclose(static[0], dyn[0], atol=1e-4)
    np.testing.assert_allclose(static[1], dyn[1], atol=1e-4)


@pytest.mark.parametrize("stage", ["pruned", "int8", "quant_emb"])
def test_run_eval_on_every_stage_matches_report(compressed, corpus_subset, stage):
    w = compressed / "width_mult_0.5"
    p = run_py(["run_eval.py", "--infer_prefix", str(w / stage), "--test_path", str(corpus_subset / "dev.txt"),
                "--do_eval", "--per_device_eval_batch_size", "256"])
    got = json.loads(p.stdout.strip().splitlines()[-1])
    row = {r["model"]: r for r in json.load(open(compressed / "compress_report.json"))["stages"]}[str(w / stage)]
    assert round(100 * got["accuracy"], 2) == row["accuracy"]
    assert round(100 * got["intent_accuracy"], 2) == row["intent_accuracy"]


@pytest.mark.parametrize("strategy, files, absent", [
    ("dynabert", ["pruned.pdmodel", "model_state.pdparams"], ["int8.pdmodel"]),
    ("dynabert+qat", ["pruned.pdmodel", "int8.pdmodel"], ["quant_emb.pdmodel"]),
])
def test_other_supported_strategies(trained_pico, corpus_subset, tmp_path, strategy, files, absent):
    compress(trained_pico, tmp_path, corpus_subset, "--strategy", strategy, "--width_mult_list", "0.5",
             "--max_steps", "10", "--save_steps", "10")
    for f in files:
        assert (tmp_path / "width_mult_0.5" / f).is_file(), f
    for f in absent:
        assert not (tmp_path / "width_mult_0.5" / f).exists(), f
    assert len(json.load(open(tmp_path / "compress_report.json"))["stages"]) == 1 + len(files) - 1 + (
        strategy == "dynabert+qat")


@pytest.mark.parametrize("extra, message", [
    (["--strategy", "dynabert+magic"], "unknown --strategy 'dynabert+magic'"),
    (["--strategy", "dynabert+ptq"], "--strategy 'dynabert+ptq' is refused: post-training quantization"),
    (["--strategy", "ptq"], "--strategy 'ptq' is refused"),
    (["--strategy", "qat"], "--strategy 'qat' is refused"),
    (["--strategy", "dynabert+embeddings"], "--strategy 'dynabert+embeddings' is refused"),
    (["--width_mult_list", "1.5"], "--width_mult_list value '1.5' is not a number between 0 and 1"),
    (["--width_mult_list", "0.5", "0.75"], "--width_mult_list takes one width"),
    (["--do_train"], "--do_compress cannot be combined with --do_train"),
    (["--qat_distill_alpha", "1.5"], "--qat_distill_alpha must be in [0, 1], not 1.5"),
    (["--qat_distill_alpha", "0.5", "--distill_temperature", "0"], "--distill_temperature must be positive, not 0.0"),
])
def test_malformed_compression_arguments(trained_pico, corpus_subset, tmp_path, extra, message):
    p = compress(trained_pico, tmp_path / "out", corpus_subset, *extra, check=False)
    assert p.returncode != 0 and message in p.stderr, p.stderr[-1500:]
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_qat_distillation_loss_mixes_gold_labels_and_a_frozen_copy_of_the_pruned_model(trained_pico, labels):
    """QATDistillation: the loss is 0.75 * gold + 0.25 * T^2 * (intent KL + mean slot KL over the query's
    tokens) against the model as it was when QAT began, even after training has changed the model."""
    import paddle

    from helpers import numpy_kl
    from slu.compression import QATDistillation
    from slu.model import JointErnie, JointLoss

    model = JointErnie.from_pretrained(str(trained_pico), intent_dim=len(labels.intents), slot_dim=len(labels.slots))
    model.eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 200, size=(4, 7))
    slot_label = rng.integers(1, len(labels.slots), size=(4, 7))
    slot_label[:, 0] = slot_label[:, -1] = slot_label[3, 4:] = 0  # [CLS], [SEP], padding: PAD, left out of the mean
    batch = {"input_ids": paddle.to_tensor(ids), "token_type_ids": paddle.zeros([4, 7], "int64"),
             "intent_label": paddle.to_tensor(rng.integers(0, len(labels.intents), size=(4, 1))),
             "slot_label": paddle.to_tensor(slot_label)}
    with paddle.no_grad():
        before = [t.numpy() for t in model(batch["input_ids"], token_type_ids=batch["token_type_ids"])]
    gold = JointLoss()
    distillation = QATDistillation(model, gold, ["intent_label", "slot_label"], 0.25, 2.0)
    for name, p in model.named_parameters():  # what QAT's steps do to the student; the teacher must not follow
        if name.startswith("intent_classifier") or name.startswith("slot_classifier"):
            p.set_value(p.numpy() + rng.normal(0, 0.5, size=p.shape).astype("float32"))

    loader = distillation.recording([dict(batch)])
    assert len(loader) == 1
    got_batch = next(iter(loader))
    labels_given = (got_batch.pop("intent_label"), got_batch.pop("slot_label"))  # as the QAT loop pops them
    with paddle.no_grad():
        logits = model(got_batch["input_ids"], token_type_ids=got_batch["token_type_ids"])
        got = float(distillation.loss(logits, labels_given))
        gold_value = float(gold(logits, labels_given))
    after = [t.numpy() for t in logits]
    assert not np.allclose(after[0], before[0], atol=1e-3)
    mask = slot_label != 0
    soft = 4.0 * (numpy_kl(before[0], after[0], 2.0).mean() + numpy_kl(before[1], after[1], 2.0)[mask].mean())
    assert soft > 0.01
    assert abs(got - (0.75 * gold_value + 0.25 * soft)) < 1e-4 * max(1.0, got)


@pytest.mark.parametrize("extra, distils", [([], True), (["--qat_distill_alpha", "0"], False)])
def test_compress_sh_distils_in_qat_unless_told_not_to(trained_pico, corpus_subset, tmp_path, extra, distils):
    """compress.sh's QAT distils from the pruned model by default (docs/experiments.md, twelfth amendment); the
    INT8 program it saves is still the QAT model's."""
    p = compress(trained_pico, tmp_path, corpus_subset, "--strategy", "dynabert+qat", "--width_mult_list", "0.5",
                 "--max_steps", "10", "--save_steps", "10", *extra)
    line = "QAT distils from the width-pruned FP32 model: weight 0.5, temperature 2.0 (--qat_distill_alpha)"
    assert (line in p.stdout + p.stderr) == distils
    w = tmp_path / "width_mult_0.5"
    assert_int8_matches_qat_model(w, ids_batch(w, dev_queries(corpus_subset)))


def test_qat_distillation_needs_compression(trained_pico, corpus_subset, tmp_path):
    p = run_py(["run_train.py", "--model_name_or_path", str(trained_pico), "--train_path",
                str(corpus_subset / "train.txt"), "--dev_path", str(corpus_subset / "dev.txt"), "--output_dir",
                str(tmp_path / "x"), "--device", "cpu", "--do_train", "--qat_distill_alpha", "0.5"], check=False)
    assert p.returncode != 0
    assert "--qat_distill_alpha needs --do_compress" in p.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x").exists()
