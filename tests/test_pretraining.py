"""In-domain masked-LM pretraining: masking units and draws on hand-worked cases, the loss against its formula, and
run_pretrain.py -> run_train.py on the corpus subset (the fine-tuning starts from the pretrained encoder)."""
import json

import numpy as np
import pytest

from conftest import INTENT_LABELS, SLOT_LABELS, run_py, run_script
from slu import pretraining


def slot_ids(labels, names):
    return [labels.slot2id[n] for n in names]


# [CLS] 播 放 周 杰 伦 的 稻 香 [SEP]
QUERY_SLOTS = ["PAD", "O", "O", "B-singer", "I-singer", "I-singer", "O", "B-song", "I-song", "PAD"]


def test_mask_units_keep_slot_values_whole_and_skip_cls_and_sep(labels):
    ids = slot_ids(labels, QUERY_SLOTS)
    assert pretraining.mask_units(ids, labels, whole_slots=True) == [[1], [2], [3, 4, 5], [6], [7, 8]]
    assert pretraining.mask_units(ids, labels, whole_slots=False) == [[k] for k in range(1, 9)]
    # a B- of one type followed by an I- of another type: two units
    mixed = slot_ids(labels, ["PAD", "B-singer", "I-song", "PAD"])
    assert pretraining.mask_units(mixed, labels, whole_slots=True) == [[1], [2]]


class Draws:
    """An rng whose permutation, random_sample and randint return the given values in turn."""

    def __init__(self, order, samples, ints=()):
        self.order, self.samples, self.ints = list(order), list(samples), list(ints)

    def permutation(self, n):
        assert sorted(self.order) == list(range(n))
        return self.order

    def random_sample(self):
        return self.samples.pop(0)

    def randint(self, high):
        value = self.ints.pop(0)
        assert 0 <= value < high
        return value


def test_mask_query_takes_whole_units_until_the_share_and_applies_80_10_10():
    ids = [1, 11, 12, 13, 14, 15, 16, 17, 18, 2]  # [CLS]=1, [SEP]=2, [MASK]=3; specials {0, 1, 2, 3}
    units = [[1], [2], [3, 4, 5], [6], [7, 8]]
    special = {0, 1, 2, 3}
    # 8 tokens * 0.15 = 1.2 -> 1 wanted; the first unit drawn is the singer value: all three are masked
    masked, positions, originals = pretraining.mask_query(ids, units, 0.15, Draws([2, 0, 1, 3, 4], [0.5, 0.85, 0.95],
                                                                                 ints=[2, 40]), 3, 50, special)
    assert positions == [3, 4, 5] and originals == [13, 14, 15]
    # 0.5 -> [MASK]; 0.85 -> random token (2 is special, drawn again: 40); 0.95 -> unchanged
    assert masked == [1, 11, 12, 3, 40, 15, 16, 17, 18, 2]
    assert ids == [1, 11, 12, 13, 14, 15, 16, 17, 18, 2]  # the input is left alone
    # 0.5 * 8 = 4 wanted: units [6], [1], [7, 8] give 4 tokens, then it stops
    masked, positions, originals = pretraining.mask_query(ids, units, 0.5, Draws([3, 0, 4, 1, 2], [0.1] * 4), 3, 50,
                                                          special)
    assert positions == [1, 6, 7, 8] and originals == [11, 16, 17, 18]
    assert masked == [1, 3, 12, 13, 14, 15, 3, 3, 3, 2]


def test_collator_indexes_the_flattened_padded_batch():
    batch = [{"input_ids": [1, 3, 9, 2], "positions": [1], "originals": [7]},
             {"input_ids": [1, 5, 3, 3, 6, 2], "positions": [2, 3], "originals": [8, 9]}]
    out = pretraining.MaskingCollator(pad_token_id=0)(batch)
    assert out["input_ids"].tolist() == [[1, 3, 9, 2, 0, 0], [1, 5, 3, 3, 6, 2]]
    assert out["masked_positions"].tolist() == [1, 6 + 2, 6 + 3]
    assert out["masked_labels"].tolist() == [7, 8, 9]


class FakeTokenizer:
    mask_token_id, all_special_ids = 3, [0, 1, 2, 3]

    def __len__(self):
        return 50


def test_with_context_only_the_query_is_masked_and_token_types_pass_through(labels):
    # [CLS] 播 周 杰 [SEP] | 上 一 句 [SEP]: the query's singer value is one unit; the context is never a unit
    item = {"input_ids": [1, 11, 12, 13, 2, 21, 22, 23, 2], "token_type_ids": [0, 0, 0, 0, 0, 1, 1, 1, 1],
            "slot_label": slot_ids(labels, ["PAD", "O", "B-singer", "I-singer", "PAD", "PAD", "PAD", "PAD", "PAD"])}
    dataset = pretraining.MaskingDataset([item], labels, FakeTokenizer(), 0.9, True, seed=0)
    assert dataset.units == [[[1], [2, 3]]]
    for _ in range(20):
        drawn = dataset[0]
        assert drawn["positions"] == [1, 2, 3]  # 0.9 * 3 query tokens: all of them, never a context token
        assert drawn["input_ids"][4:] == [2, 21, 22, 23, 2]
        assert drawn["token_type_ids"] == item["token_type_ids"]
    batch = pretraining.MaskingCollator(pad_token_id=0)([drawn, {"input_ids": [1, 3, 2], "positions": [1],
                                                                  "originals": [9], "token_type_ids": [0, 0, 0]}])
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 1], [0] * 9]
    assert batch["masked_positions"].tolist() == [1, 2, 3, 9 + 1]


def test_masked_lm_loss_is_cross_entropy_of_tied_output_embeddings():
    import paddle
    from paddlenlp.transformers import ErnieConfig

    paddle.seed(0)
    config = ErnieConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=16, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)
    model = pretraining.ErnieMaskedLM(config)
    model.eval()
    ids = paddle.to_tensor([[1, 5, 7, 2, 0], [1, 9, 11, 12, 2]])
    positions, targets = paddle.to_tensor([2, 5 + 1, 5 + 3]), paddle.to_tensor([7, 9, 12])
    loss, logits = model(ids, positions, targets)

    hidden = model.ernie(ids)[0].numpy().reshape(-1, 8)[[2, 6, 8]]  # by hand from here on
    h = hidden @ model.mlm_transform.weight.numpy() + model.mlm_transform.bias.numpy()
    h = 0.5 * h * (1 + np.vectorize(__import__("math").erf)(h / np.sqrt(2)))  # exact GELU
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + config.layer_norm_eps)
    h = h * model.mlm_layer_norm.weight.numpy() + model.mlm_layer_norm.bias.numpy()
    want_logits = h @ model.ernie.embeddings.word_embeddings.weight.numpy().T + model.mlm_bias.numpy()
    logp = want_logits - np.log(np.exp(want_logits).sum(-1, keepdims=True))
    assert np.allclose(logits.numpy(), want_logits, atol=1e-4)
    assert abs(float(loss) - -logp[np.arange(3), [7, 9, 12]].mean()) < 1e-5


def test_pretraining_lowers_the_loss_and_fine_tuning_starts_from_its_encoder(pico_dir, corpus_subset, tmp_path):
    import paddle

    mlm = tmp_path / "mlm"
    run_py(["run_pretrain.py", "--device", "cpu", "--model_name_or_path", str(pico_dir), "--train_path",
            str(corpus_subset / "train.txt"), "--output_dir", str(mlm), "--max_steps", "60", "--learning_rate", "1e-3",
            "--per_device_train_batch_size", "32", "--logging_steps", "10", "--save_steps", "30",
            "--disable_tqdm", "True", "--seed", "3"])
    losses = [h["loss"] for h in json.load(open(mlm / "checkpoint-60" / "trainer_state.json"))["log_history"]
              if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5, losses  # about ln(vocab) at first
    pretrained = paddle.load(str(mlm / "model_state.pdparams"))
    start = paddle.load(str(pico_dir / "model_state.pdparams"))
    key = "encoder.layers.0.linear1.weight"
    assert not np.allclose(pretrained["ernie." + key].numpy(), start[key].numpy())  # pretraining changed it

    from slu.model import JointErnie
    model = JointErnie.from_pretrained(str(mlm), intent_dim=11, slot_dim=32)
    assert np.array_equal(model.ernie.encoder.layers[0].linear1.weight.numpy(), pretrained["ernie." + key].numpy())
    assert np.array_equal(model.ernie.embeddings.word_embeddings.weight.numpy(),
                          pretrained["ernie.embeddings.word_embeddings.weight"].numpy())


def test_recipe_script_pretrains_first_when_asked(pico_dir, corpus_subset, tmp_path):
    import paddle

    out = tmp_path / "recipe"
    run_script("scripts/recipe_single.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                                 DEV=corpus_subset / "dev.txt", EPOCHS="2", MLM_EPOCHS="1"),
               "--per_device_train_batch_size", "64", "--load_best_model_at_end", "False")
    mlm = paddle.load(str(out / "mlm" / "model_state.pdparams"))
    start = paddle.load(str(pico_dir / "model_state.pdparams"))
    # the fine-tuning's starting point (the pruned copy of MODEL, encoder untouched by pruning) is the MLM output
    fine_tune_start = paddle.load(str(out / "pretrained_model" / "model_state.pdparams"))
    key = "encoder.layers.0.linear1.weight"
    assert np.array_equal(fine_tune_start["ernie." + key].numpy(), mlm["ernie." + key].numpy())
    assert not np.allclose(mlm["ernie." + key].numpy(), start[key].numpy())
    assert json.load(open(out / "averaged" / "deploy_config.json"))["slot_decoding"] == "crf"
    assert 0 < json.load(open(out / "averaged" / "eval_results.json"))["accuracy"] <= 1


@pytest.mark.parametrize("flags, message", [
    (["--mask_unit", "word"], "--mask_unit must be one of slot, token, not 'word'"),
    (["--mask_prob", "0"], "--mask_prob must be in (0, 1), not 0.0"),
    (["--max_seq_length", "2"], "--max_seq_length must be at least 3"),
    (["--context_turns", "-1"], "--context_turns must be 0 or more, not -1"),
    (["--context_turns", "1", "--max_context_length", "1"], "--max_context_length must be at least 2"),
])
def test_bad_settings_are_one_line_errors(pico_dir, flags, message, tmp_path):
    p = run_py(["run_pretrain.py", "--model_name_or_path", str(pico_dir), "--train_path", INTENT_LABELS,
                "--output_dir", str(tmp_path / "o"), *flags], check=False)
    assert p.returncode != 0
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("run_pretrain.py: error: ") and message in last, last


def test_missing_train_file_is_named(pico_dir, tmp_path):
    p = run_py(["run_pretrain.py", "--model_name_or_path", str(pico_dir), "--train_path", str(tmp_path / "none.txt"),
                "--slot_label_path", SLOT_LABELS, "--output_dir", str(tmp_path / "o"), "--device", "cpu"], check=False)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1] == f"run_pretrain.py: error: file not found: {tmp_path / 'none.txt'}"
    # without --device, PaddleNLP's default (gpu) is refused on a CPU build, beside the other errors
    p = run_py(["run_pretrain.py", "--model_name_or_path", str(pico_dir), "--train_path", str(tmp_path / "none.txt"),
                "--output_dir", str(tmp_path / "o")], check=False)
    assert p.stderr.strip().splitlines()[-1].startswith("run_pretrain.py: error: --device gpu (PaddleNLP's default): "
                                                       "this PaddlePaddle has no CUDA; pass --device cpu")
