"""Training-recipe options on hand-worked cases: slot-value substitution and label smoothing."""
import os
import random
import re

import numpy as np

from slu import core


def example(annotated, intent="music.play"):
    query, spans = core.parse_annotation(annotated)
    return {"session": "1", "query": query, "intent": intent, "slots": spans, "line": 1}


def test_slot_values_are_the_spans_as_the_query_spells_them():
    exs = [example("播放<singer>周杰伦</singer>的<song>稻香</song>"), example("来一首<song>花心</song>"),
           example("<song>花心</song>"), example("给<contact_name>张三||章三</contact_name>打电话", "phone_call.make_a_phone_call")]
    assert core.slot_values(exs) == {"singer": ["周杰伦"], "song": ["稻香", "花心"], "contact_name": ["张三"]}


class Picks:
    """An rng whose choice() returns the given values in turn."""

    def __init__(self, *values):
        self.values = list(values)

    def choice(self, options):
        value = self.values.pop(0)
        assert value in options
        return value


def test_substitution_replaces_every_value_and_moves_the_spans():
    ex = example("播放<singer>周杰伦</singer>的<song>稻香</song>")
    values = {"singer": ["周杰伦", "Taylor Swift"], "song": ["稻香", "一"]}
    new = core.substitute_slots(ex, values, Picks("Taylor Swift", "一"))
    assert new["query"] == "播放Taylor Swift的一"
    assert new["slots"] == [("singer", 2, 14, "Taylor Swift"), ("song", 15, 16, "一")]
    assert [new["query"][s:e] for _, s, e, _ in new["slots"]] == ["Taylor Swift", "一"]
    assert ex["query"] == "播放周杰伦的稻香"  # the original is left alone
    assert core.substitute_slots(example("暂停", "music.pause"), values, Picks()) == example("暂停", "music.pause")


def test_substituted_examples_encode_with_labels_on_the_new_values(labels):
    values = core.slot_values([example("<singer>刘德华</singer>")])
    new = core.substitute_slots(example("播放<singer>周杰伦</singer>的歌"), values, random.Random(0))
    assert new["query"] == "播放刘德华的歌" and new["slots"] == [("singer", 2, 5, "刘德华")]
    offsets = [(0, 0)] + [(k, k + 1) for k in range(7)] + [(0, 0)]
    got = [labels.slots[i] for i in core.spans_to_token_labels(offsets, new["slots"], labels)]
    assert got == ["PAD", "O", "O", "B-singer", "I-singer", "I-singer", "O", "O", "PAD"]


def test_label_smoothing_matches_its_formula_and_skips_pad():
    import paddle

    from slu.model import JointLoss

    rng = np.random.RandomState(0)
    intent_logits, slot_logits = rng.randn(2, 4), rng.randn(2, 3, 5)
    intent_label, slot_label = np.array([1, 3]), np.array([[0, 2, 4], [0, 1, 0]])  # 0 = PAD, ignored

    def smoothed(logits, label, eps=0.1):  # (1 - eps) * NLL + eps * mean NLL over classes, by hand
        lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return (1 - eps) * -lp[label] + eps * -lp.mean()

    want = np.mean([smoothed(intent_logits[k], intent_label[k]) for k in range(2)]) + np.mean(
        [smoothed(slot_logits[b, t], slot_label[b, t]) for b in range(2) for t in range(3) if slot_label[b, t]])
    t = paddle.to_tensor
    got = JointLoss(0, 0.1)((t(intent_logits, dtype="float32"), t(slot_logits, dtype="float32")),
                            (t(intent_label), t(slot_label)))
    assert abs(float(got) - want) < 1e-5


def test_recipe_script_trains_with_rdrop_averages_the_last_two_epochs_and_exports_crf(pico_dir, corpus_subset, tmp_path):
    import json

    import paddle

    from conftest import run_script

    out = tmp_path / "recipe"
    p = run_script("scripts/recipe_single.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                                     DEV=corpus_subset / "dev.txt", EPOCHS="3", MLM_EPOCHS="0",
                                                     OMP_NUM_THREADS=""),
                   "--per_device_train_batch_size", "64", "--load_best_model_at_end", "False")
    assert "R-Drop: each training batch runs twice, KL weight 1.0" in p.stdout + p.stderr
    # one process: every core of this machine (Paddle would use one thread without OMP_NUM_THREADS)
    assert re.search(rf"CPU threads per process: {len(os.sched_getaffinity(0))}\b", p.stdout + p.stderr)
    steps = sorted(int(d.name.split("-")[1]) for d in out.glob("checkpoint-*"))
    assert steps == [10, 20, 30]  # 600 lines / 64 = 10 steps an epoch, 3 epochs, --save_total_limit 3
    a, b = (paddle.load(str(out / f"checkpoint-{s}" / "model_state.pdparams")) for s in steps[-2:])
    avg = paddle.load(str(out / "averaged" / "model_state.pdparams"))
    for key in ("intent_classifier.weight", "crf.transitions"):
        assert np.allclose(avg[key].numpy(), (a[key].numpy() + b[key].numpy()) / 2, atol=1e-6)
    config = json.load(open(out / "averaged" / "deploy_config.json"))
    assert config["slot_decoding"] == "crf" and config["context_turns"] == 0
    assert np.allclose(config["slot_transitions"]["transitions"], avg["crf.transitions"].numpy(), atol=1e-6)
    assert (out / "averaged" / "infer_model.pdmodel").is_file()
    assert 0 < json.load(open(out / "averaged" / "eval_results.json"))["accuracy"] <= 1
