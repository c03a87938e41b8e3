"""The CRF slot head (--use_crf) and its decoding, against brute-force enumeration and hand-worked cases."""
import itertools
import json
import shutil

import numpy as np
import paddle
import pytest

from conftest import run_py, run_script
from slu import data, decoding, manifest

LABELS = data.LabelSet(["music.play", "music.pause"], ["PAD", "O", "B-a", "I-a", "B-b", "I-b", "B-c", "I-c"])


def path_score(crf, emissions, ids):
    return (crf["start"][ids[0]] + crf["end"][ids[-1]] + sum(emissions[k, i] for k, i in enumerate(ids)) +
            sum(crf["transitions"][a, b] for a, b in zip(ids, ids[1:])))


def test_crf_nll_is_the_log_partition_minus_the_gold_score_over_the_query_tokens():
    from slu.model import LinearChainCrf

    paddle.seed(0)
    crf = LinearChainCrf(4)
    rng = np.random.RandomState(0)
    emissions = rng.randn(3, 6, 4).astype("float32")
    labels = rng.randint(0, 4, (3, 6))
    mask = np.zeros((3, 6), bool)
    mask[0, 1:5] = mask[1, 1:2] = mask[2, 1:6] = True  # query tokens: after [CLS], before [SEP] and padding
    got = float(crf.nll(paddle.to_tensor(emissions), paddle.to_tensor(labels), paddle.to_tensor(mask)))
    scores = {k: np.asarray(v) for k, v in crf.scores().items()}
    expected = []
    for b in range(3):
        pos = np.flatnonzero(mask[b])
        every = [path_score(scores, emissions[b, pos], y) for y in itertools.product(range(4), repeat=len(pos))]
        expected.append(np.log(np.exp(every).sum()) - path_score(scores, emissions[b, pos], labels[b, pos]))
    assert got == pytest.approx(np.mean(expected), rel=1e-5)


def allowed_paths(n, allowed_types, continuing):
    """Every label sequence the constraints allow, enumerated from their definition."""
    names = ["O"] + [p + t for t in allowed_types for p in ("B-", "I-")]
    for seq in itertools.product(names, repeat=n):
        ok = not seq[0].startswith("I-")
        for k in range(1, n):
            prev, cur = seq[k - 1], seq[k]
            if cur.startswith("I-") and prev[2:] != cur[2:]:
                ok = False
            if continuing[k] and (cur.startswith("B-") or (cur == "O") != (prev == "O")):
                ok = False
        if ok:
            yield [LABELS.slot2id[x] for x in seq]


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_finds_the_best_sequence_the_constraints_allow(seed):
    rng = np.random.RandomState(seed)
    crf = decoding.check_transitions({"start": rng.randn(8), "end": rng.randn(8), "transitions": rng.randn(8, 8)}, 8)
    emissions = rng.randn(4, 8)
    allowed = [["a", "b"], ["c"], ["a", "b", "c"]][seed % 3]
    continuing = [False, bool(seed % 2), False, bool(seed % 3)]
    got, score = decoding.constrained_viterbi(emissions, crf, LABELS, allowed, continuing, with_score=True)
    best = max(allowed_paths(4, allowed, continuing), key=lambda ids: path_score(crf, emissions, ids))
    assert got == best
    assert score == pytest.approx(path_score(crf, emissions, best))


def test_transitions_overrule_a_token_level_argmax():
    """Worked by hand: token 2 alone prefers O (1.0 against 0.8 for I-a), but B-a -> I-a scores 0.5 more than
    B-a -> O, so the CRF joins it to the entity (1.3 > 1.0); the greedy constrained decoder does not."""
    zeros = np.zeros(8)
    trans = np.zeros((8, 8))
    trans[LABELS.slot2id["B-a"], LABELS.slot2id["I-a"]] = 0.5
    crf = {"start": zeros, "end": zeros, "transitions": trans}
    logits = np.zeros((4, 8))
    logits[1, LABELS.slot2id["B-a"]] = 2.0
    logits[2, LABELS.slot2id["O"]] = 1.0
    logits[2, LABELS.slot2id["I-a"]] = 0.8
    offsets = [(0, 0), (0, 1), (1, 2), (0, 0)]
    ids = [1, 5, 6, 2]
    crf_decoder = decoding.SlotDecoder(LABELS, "crf", {"music.play": ["a"]}, transitions=crf)
    crf_ids = crf_decoder.slot_ids(0, ids, offsets, logits)
    greedy = decoding.SlotDecoder(LABELS, "constrained", {"music.play": ["a"]}).slot_ids(0, ids, offsets, logits)
    assert [LABELS.slots[i] for i in crf_ids] == ["PAD", "B-a", "I-a", "PAD"]
    assert [LABELS.slots[i] for i in greedy] == ["PAD", "B-a", "O", "PAD"]
    # a slot-less intent: O everywhere whatever the scores
    none = decoding.SlotDecoder(LABELS, "crf", {"music.pause": []}, transitions=crf).slot_ids(1, ids, offsets, logits)
    assert [LABELS.slots[i] for i in none] == ["PAD", "O", "O", "PAD"]


def test_crf_decoding_is_refused_without_scores_or_with_wrong_shapes():
    mode = "crf"
    with pytest.raises(data.UsageError, match=f"slot decoding {mode} needs .* --use_crf"):
        decoding.SlotDecoder(LABELS, mode)
    bad = {"start": [0.0] * 8, "end": [0.0] * 7, "transitions": [[0.0] * 8] * 8}
    with pytest.raises(data.UsageError, match=r"slot_transitions.end must be finite numbers of shape \[8\]"):
        decoding.SlotDecoder(LABELS, "crf", transitions=bad)



# ------------------------------------------------------------------------------ run_train.py --use_crf
@pytest.fixture(scope="module")
def crf_model(tmp_path_factory, pico_dir, corpus_subset):
    out = tmp_path_factory.mktemp("crf_pico")
    run_script("scripts/train.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                        DEV=corpus_subset / "dev.txt", LR="1e-3"),
               "--use_crf", "--slot_decoding", "crf", "--max_steps", "60", "--save_steps", "60", "--eval_steps", "60",
               "--evaluation_strategy", "steps", "--per_device_train_batch_size", "32",
               "--load_best_model_at_end", "False")
    return out


def test_training_with_use_crf_exports_the_learned_scores(crf_model):
    config = json.loads((crf_model / "config.json").read_text(encoding="utf-8"))
    assert config["use_crf"] is True
    state = paddle.load(str(crf_model / "model_state.pdparams"))
    m = manifest.read(str(crf_model))
    assert m["slot_decoding"] == "crf"
    for key in ("start", "end", "transitions"):
        assert np.allclose(m["slot_transitions"][key], state["crf." + key].numpy(), atol=1e-6)
    # the scores were trained: they left their initial range of [-0.1, 0.1]
    assert np.abs(state["crf.transitions"].numpy()).max() > 0.1


def test_a_crf_model_directory_keeps_its_head_without_the_flag(crf_model, tmp_path):
    """Exporting again from the trained directory (as the recipe does after averaging), with no --use_crf: the CRF
    head and its decoding come from config.json and deploy_config.json."""
    out = tmp_path / "again"
    run_py(["run_train.py", "--model_name_or_path", str(crf_model), "--output_dir", str(out), "--do_export",
            "--device", "cpu", "--input_dtype", "int32"])
    m, trained = manifest.read(str(out)), manifest.read(str(crf_model))
    assert m["slot_decoding"] == "crf"
    assert m["slot_transitions"] == trained["slot_transitions"]


def costly_o_predictions(crf_model, corpus_subset, labels, tmp_path, intent_slot_types, slot_decoding):
    """A copy of the export where O -> O costs 1000, so that the scores surely change answers, with the given
    intent_slot_types; its manifest, vocabulary, 40 dev queries, the predictor's answers and forward outputs."""
    from slu.predictor import Predictor

    export = tmp_path / "export"
    shutil.copytree(crf_model, export, ignore=shutil.ignore_patterns("checkpoint-*"))
    m = manifest.read(str(export))
    m["slot_transitions"]["transitions"][labels.O][labels.O] = -1000.0
    m["intent_slot_types"] = intent_slot_types
    data.save_json(str(export / manifest.NAME), m)
    predictor = Predictor.from_dir(str(export), backend="paddle_inference", slot_decoding=slot_decoding)
    vocab = data.read_utf8_lines(str(export / "vocab.txt"))
    queries = [line.split("\t")[1] for line in (corpus_subset / "dev.txt").read_text(encoding="utf-8").splitlines()
               if line.strip()][:40]
    return m, vocab, queries, predictor.predict(queries), predictor.forward(queries)


def test_predictor_decodes_by_viterbi_over_the_exported_scores(crf_model, corpus_subset, labels, tmp_path):
    """The wiring: the predictor's slots are constrained_viterbi (checked against enumeration above) over the
    runtime's logits with deploy_config.json's scores. In a copy of the export every intent may take every slot type
    and O -> O is made very costly, so that the scores surely change answers that greedy decoding would give (the
    briefly trained model answers OTHERS, slot-less, to everything)."""
    m, vocab, queries, got, (ids, offsets, _, intent_logits, slot_logits) = costly_o_predictions(
        crf_model, corpus_subset, labels, tmp_path, {}, None)
    crf = decoding.check_transitions(m["slot_transitions"], len(labels.slots))
    greedy = decoding.SlotDecoder(labels, "constrained", m["intent_slot_types"], decoding.continuation_ids(vocab))
    differs = 0
    for k, query in enumerate(queries):
        intent = int(np.argmax(intent_logits[k]))
        types = m["intent_slot_types"].get(labels.intents[intent], labels.slot_types)
        pos = [j for j, (s, e) in enumerate(offsets[k]) if e > s]
        cont = [j > 0 and vocab[ids[k][p]].startswith("##") for j, p in enumerate(pos)]
        slot_ids = [data.PAD_SLOT_ID] * len(offsets[k])
        for p, sid in zip(pos, decoding.constrained_viterbi(slot_logits[k][pos], crf, labels, types, cont)):
            slot_ids[p] = sid
        assert got[k]["intent"] == labels.intents[intent]
        assert got[k]["slot"] == decoding.decode_slots(query, offsets[k], slot_ids, labels)
        differs += slot_ids != greedy.slot_ids(intent, ids[k], offsets[k], slot_logits[k])
    assert differs > 0


def test_crf_decoding_of_a_model_without_crf_is_a_one_line_error(trained_pico, tmp_path):
    mode = "crf"
    p = run_py(["run_train.py", "--model_name_or_path", str(trained_pico), "--output_dir", str(tmp_path / "x"),
                "--do_export", "--slot_decoding", mode, "--device", "cpu"], check=False)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1] == (f"run_train.py: error: --slot_decoding {mode}: {trained_pico} has "
                                                 "no CRF slot head (train it with --use_crf)")
