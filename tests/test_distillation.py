"""Distillation (run_train.py --distill_from): the loss against its formula, the teacher's view of the student's
token ids, refusals, and a run whose distillation term vanishes exactly when the student is its teacher."""
import json
import shutil

import numpy as np
import paddle
import pytest

from conftest import run_py
from helpers import numpy_kl
from slu import data
from slu.training import Settings

DATA = Settings(max_seq_length=16, context_turns=0, max_context_length=0, slot_decoding="argmax")


def test_distillation_loss_is_t_squared_times_intent_and_token_kl():
    from slu.distillation import distillation_loss

    rng = np.random.RandomState(0)
    s_int, t_int = rng.randn(3, 5), rng.randn(3, 5)
    s_slot, t_slot = rng.randn(3, 4, 6), rng.randn(3, 4, 6)
    slot_label = np.array([[0, 2, 1, 0], [0, 1, 0, 0], [0, 3, 3, 1]])  # 0: PAD (special tokens, padding)
    got = distillation_loss([paddle.to_tensor(s_int), paddle.to_tensor(s_slot)],
                            [paddle.to_tensor(t_int), paddle.to_tensor(t_slot)], paddle.to_tensor(slot_label), 2.0)
    tokens = numpy_kl(t_slot, s_slot, 2.0)[slot_label != 0]  # KL(teacher || student)
    expected = 4.0 * (numpy_kl(t_int, s_int, 2.0).mean() + tokens.mean())
    assert float(got) == pytest.approx(expected, rel=1e-6)
    assert tokens.size == 6


def permuted_copy(model_dir, out):
    """`model_dir` with its vocabulary lines and embedding rows in another order: the same model, other ids."""
    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns("checkpoint-*", "*.pdmodel", "*.pdiparams",
                                                                  "deploy_config.json"))
    vocab = data.read_utf8_lines(str(out / "vocab.txt"))
    order = np.random.RandomState(1).permutation(len(vocab))
    data.write_lines(str(out / "vocab.txt"), [vocab[i] for i in order])
    state = paddle.load(str(out / "model_state.pdparams"))
    key = "ernie.embeddings.word_embeddings.weight"
    state[key] = paddle.to_tensor(state[key].numpy()[order])
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config["pad_token_id"] = int(np.flatnonzero(order == vocab.index("[PAD]"))[0])
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    paddle.save(state, str(out / "model_state.pdparams"))
    return out


def test_the_teacher_sees_the_students_tokens_through_its_own_vocabulary(trained_pico, labels, tmp_path):
    from paddlenlp.transformers import AutoTokenizer
    from slu.distillation import Teacher
    from slu.model import JointErnie

    tokenizer = AutoTokenizer.from_pretrained(str(trained_pico))
    teacher = Teacher(str(permuted_copy(trained_pico, tmp_path / "teacher")), tokenizer, labels, DATA, 0.5, 2.0)
    original = JointErnie.from_pretrained(str(trained_pico), intent_dim=len(labels.intents),
                                          slot_dim=len(labels.slots))
    original.eval()
    ids = paddle.to_tensor(tokenizer(["播放周杰伦的稻香", "导航到古田"], padding=True)["input_ids"])
    got, expected = teacher.logits({"input_ids": ids}), original(ids)
    assert not np.array_equal(teacher.id_map.numpy(), np.arange(len(teacher.id_map)))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.numpy(), atol=1e-5)


def test_a_teacher_with_other_labels_or_missing_tokens_is_refused(trained_pico, labels, tmp_path):
    from paddlenlp.transformers import AutoTokenizer
    from slu.distillation import Teacher

    tokenizer = AutoTokenizer.from_pretrained(str(trained_pico))
    other = tmp_path / "other_labels"
    shutil.copytree(trained_pico, other, ignore=shutil.ignore_patterns("checkpoint-*"))
    data.write_lines(str(other / "slot_label.txt"), labels.slots[:1] + labels.slots[2:] + labels.slots[1:2])
    with pytest.raises(data.UsageError, match="slot_label.txt: not this run's labels"):
        Teacher(str(other), tokenizer, labels, DATA, 0.5, 2.0)
    other_tok = tmp_path / "other_token"
    shutil.copytree(trained_pico, other_tok, ignore=shutil.ignore_patterns("checkpoint-*"))
    vocab = data.read_utf8_lines(str(other_tok / "vocab.txt"))
    data.write_lines(str(other_tok / "vocab.txt"), ["[unused1]" if t == "播" else t for t in vocab])
    with pytest.raises(data.UsageError, match="1 tokens of the student's vocabulary are not in the teacher's "
                                              r"\(e.g. '播'\)"):
        Teacher(str(other_tok), tokenizer, labels, DATA, 0.5, 2.0)


def first_logged_loss(out):
    history = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    return next(h["loss"] for h in history if "loss" in h)


def test_the_distillation_term_vanishes_when_the_student_is_its_teacher(trained_pico, corpus_subset, tmp_path):
    """Student and teacher are the same model without dropout: with alpha 1 the first step's loss is the KL of a
    model to itself, 0; with alpha 0 it is the gold-label loss."""
    model = tmp_path / "no_dropout"
    shutil.copytree(trained_pico, model, ignore=shutil.ignore_patterns("checkpoint-*"))
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    losses = {}
    for alpha in ("1.0", "0.0"):
        out = tmp_path / f"alpha_{alpha}"
        run_py(["run_train.py", "--model_name_or_path", str(model), "--distill_from", str(model), "--distill_alpha",
                alpha, "--dropout", "0", "--train_path", str(corpus_subset / "train.txt"), "--output_dir", str(out),
                "--do_train", "--max_steps", "1", "--logging_steps", "1", "--learning_rate", "1e-9", "--device", "cpu",
                "--label_names", "intent_label", "slot_label", "--save_strategy", "no"])
        losses[alpha] = first_logged_loss(out)
    assert losses["1.0"] == pytest.approx(0.0, abs=1e-5)
    assert losses["0.0"] > 0.1


@pytest.mark.parametrize("flags, message", [
    (["--distill_alpha", "1.5"], "--distill_alpha must be in [0, 1], not 1.5"),
    (["--distill_temperature", "0"], "--distill_temperature must be positive, not 0.0"),
])
def test_impossible_distillation_settings_are_one_line_errors(trained_pico, corpus_subset, tmp_path, flags, message):
    p = run_py(["run_train.py", "--model_name_or_path", str(trained_pico), "--distill_from", str(trained_pico),
                "--train_path", str(corpus_subset / "train.txt"), "--output_dir", str(tmp_path / "x"), "--do_train",
                "--device", "cpu", *flags], check=False)
    assert p.returncode != 0
    assert message in p.stderr.strip().splitlines()[-1]
