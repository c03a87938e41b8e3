"""R-Drop (run_train.py --rdrop_alpha): the regulariser against its formula, the training loss of a step against
two seeded dropout runs worked out in numpy, a run whose R-Drop term vanishes without dropout, and refusals."""
import json
import shutil

import numpy as np
import paddle
import pytest

from conftest import run_py
from helpers import log_softmax, numpy_kl
from slu import data


def numpy_rdrop(first, second, slot_label):
    """Symmetric KL, the mean of both directions: intent averaged over queries, slots over non-PAD tokens."""
    keep = slot_label != 0

    def one_way(a, b):
        return numpy_kl(a[0], b[0]).mean() + numpy_kl(a[1], b[1])[keep].mean()
    return 0.5 * (one_way(first, second) + one_way(second, first))


def test_rdrop_loss_is_the_symmetric_kl_of_intent_and_query_tokens():
    from slu.model import rdrop_loss

    rng = np.random.RandomState(0)
    first = (rng.randn(3, 5), rng.randn(3, 4, 6))
    second = (rng.randn(3, 5), rng.randn(3, 4, 6))
    slot_label = np.array([[0, 2, 1, 0], [0, 1, 0, 0], [0, 3, 3, 1]])  # 0: PAD (special tokens, padding)
    got = rdrop_loss([paddle.to_tensor(x) for x in first], [paddle.to_tensor(x) for x in second],
                     paddle.to_tensor(slot_label))
    assert float(got) == pytest.approx(numpy_rdrop(first, second, slot_label), rel=1e-6)
    # KL is not symmetric: one direction alone differs from the mean of both
    one_way = numpy_kl(first[0], second[0]).mean() + numpy_kl(first[1], second[1])[slot_label != 0].mean()
    assert abs(one_way - float(got)) > 1e-3
    same = rdrop_loss([paddle.to_tensor(x) for x in first], [paddle.to_tensor(x) for x in first],
                      paddle.to_tensor(slot_label))
    assert float(same) == pytest.approx(0.0, abs=1e-7)


def numpy_joint_loss(outputs, intent_label, slot_label):
    intent = -log_softmax(outputs[0])[np.arange(len(intent_label)), intent_label].mean()
    logp = log_softmax(outputs[1])
    keep = slot_label != 0
    token = -np.take_along_axis(logp, slot_label[..., None], axis=-1)[..., 0]
    return intent + token[keep].mean()


def test_a_training_step_is_the_mean_of_two_dropout_runs_plus_alpha_times_their_kl(trained_pico, labels,
                                                                                     corpus_subset, tmp_path):
    """The trainer's loss for one batch, against the same two dropout runs (same seed) redone outside it."""
    from paddlenlp.trainer import TrainingArguments
    from paddlenlp.transformers import AutoTokenizer
    from slu.model import JointErnie, JointLoss
    from slu.training import Collator, JointTrainer, encode_examples

    tokenizer = AutoTokenizer.from_pretrained(str(trained_pico))
    model = JointErnie.from_pretrained(str(trained_pico), intent_dim=len(labels.intents), slot_dim=len(labels.slots),
                                       dropout=0.3)
    examples = data.read_examples(str(corpus_subset / "train.txt"), labels)[:8]
    batch = Collator(tokenizer.pad_token_id)(encode_examples(examples, tokenizer, labels, 16))
    assert (batch["slot_label"] > 1).any()  # some query has slots
    inputs = {k: paddle.to_tensor(v) for k, v in batch.items()}
    args = TrainingArguments(output_dir=str(tmp_path / "out"), label_names=["intent_label", "slot_label"],
                             device="cpu")
    trainer = JointTrainer(model=model, criterion=JointLoss(), args=args)
    trainer.rdrop_alpha = 0.7
    model.train()
    paddle.seed(11)
    got = float(trainer.compute_loss(model, dict(inputs)))
    paddle.seed(11)
    runs = [[t.numpy().astype("float64") for t in model(inputs["input_ids"])] for _ in range(2)]
    assert not np.allclose(runs[0][0], runs[1][0])  # dropout made the two runs differ
    hard = [numpy_joint_loss(r, batch["intent_label"], batch["slot_label"]) for r in runs]
    kl = numpy_rdrop(runs[0], runs[1], batch["slot_label"])
    assert kl > 1e-4
    assert got == pytest.approx((hard[0] + hard[1]) / 2 + 0.7 * kl, rel=1e-4)
    trainer.rdrop_alpha = 0.0
    paddle.seed(11)
    assert float(trainer.compute_loss(model, dict(inputs))) == pytest.approx(hard[0], rel=1e-4)


def first_logged_loss(out):
    history = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))["log_history"]
    return next(h["loss"] for h in history if "loss" in h)


def train_one_step(model, corpus_subset, out, *flags):
    run_py(["run_train.py", "--model_name_or_path", str(model), "--train_path", str(corpus_subset / "train.txt"),
            "--output_dir", str(out), "--do_train", "--max_steps", "1", "--logging_steps", "1", "--learning_rate",
            "1e-9", "--device", "cpu", "--label_names", "intent_label", "slot_label", "--save_strategy", "no",
            *flags])
    return first_logged_loss(out)


def test_the_rdrop_flag_reaches_the_training_loss(trained_pico, corpus_subset, tmp_path):
    """Without any dropout the two runs are equal and --rdrop_alpha changes nothing; with dropout, a large alpha
    adds its large multiple of a positive KL to the first step's loss."""
    still = tmp_path / "no_dropout"
    shutil.copytree(trained_pico, still, ignore=shutil.ignore_patterns("checkpoint-*"))
    config = json.loads((still / "config.json").read_text(encoding="utf-8"))
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (still / "config.json").write_text(json.dumps(config), encoding="utf-8")
    plain = train_one_step(still, corpus_subset, tmp_path / "plain", "--dropout", "0")
    same = train_one_step(still, corpus_subset, tmp_path / "same", "--dropout", "0", "--rdrop_alpha", "1000")
    assert same == pytest.approx(plain, rel=1e-4)
    dropped = train_one_step(trained_pico, corpus_subset, tmp_path / "dropped", "--dropout", "0.3")
    regularised = train_one_step(trained_pico, corpus_subset, tmp_path / "regularised", "--dropout", "0.3",
                                 "--rdrop_alpha", "1000")
    assert regularised > dropped + 1.0


@pytest.mark.parametrize("flags, message", [
    (["--do_train", "--rdrop_alpha", "-0.5"], "--rdrop_alpha must be 0 (off) or positive, not -0.5"),
    (["--do_eval", "--rdrop_alpha", "1"], "--rdrop_alpha needs --do_train (it is a fine-tuning loss)"),
])
def test_impossible_rdrop_settings_are_one_line_errors(trained_pico, corpus_subset, tmp_path, flags, message):
    p = run_py(["run_train.py", "--model_name_or_path", str(trained_pico), "--train_path",
                str(corpus_subset / "train.txt"), "--dev_path", str(corpus_subset / "dev.txt"), "--output_dir",
                str(tmp_path / "x"), "--device", "cpu", *flags], check=False)
    assert p.returncode != 0
    assert message in p.stderr.strip().splitlines()[-1]
