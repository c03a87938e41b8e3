"""Slot encoding from character offsets, slot decoding and the sentence metric, on hand-worked cases."""
import pytest

from slu import data, decoding, metrics

VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "打", "电", "话", "给", "播", "放", "的", "来", "一", "首",
         "周", "华", "健", "花", "心", "188", "##666", "##688", "##88", "##8", "shape", "of", "you", "taylor",
         "sw", "##ift", "去", "北", "京"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from paddlenlp.transformers import ErnieTokenizer

    p = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    p.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return ErnieTokenizer(str(p))


def test_phone_number_pieces_get_b_then_i_and_decode_back(tok, labels):
    q = "打电话给18866668888"
    ids, offsets, truncated = data.encode_queries(tok, [q], 16)
    # [CLS] 打 电 话 给 188 ##666 ##688 ##88 [SEP]: worked by hand from the vocab above
    assert tok.convert_ids_to_tokens(ids[0]) == ["[CLS]", "打", "电", "话", "给", "188", "##666", "##688", "##88",
                                                 "[SEP]"]
    assert offsets[0] == [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 7), (7, 10), (10, 13), (13, 15), (0, 0)]
    assert truncated == [False]
    _, spans = data.parse_annotation("打电话给<phone_num>18866668888</phone_num>")
    got = [labels.slots[i] for i in data.spans_to_token_labels(offsets[0], spans, labels)]
    assert got == ["PAD", "O", "O", "O", "O", "B-phone_num", "I-phone_num", "I-phone_num", "I-phone_num", "PAD"]
    slot_ids = [labels.slot2id[x] for x in got]
    assert decoding.decode_slots(q, offsets[0], slot_ids, labels) == [
        {"slot": "phone_num", "entity": "18866668888", "pos": [4, 14]}]


def test_latin_words_keep_case_and_spaces_in_entity(tok, labels):
    q = "播放Taylor Swift的Shape of You"
    ids, offsets, _ = data.encode_queries(tok, [q], 16)
    assert tok.convert_ids_to_tokens(ids[0])[1:-1] == ["播", "放", "taylor", "sw", "##ift", "的", "shape", "of", "you"]
    _, spans = data.parse_annotation("播放<singer>Taylor Swift</singer>的<song>Shape of You</song>")
    slot_ids = data.spans_to_token_labels(offsets[0], spans, labels)
    assert [labels.slots[i] for i in slot_ids] == ["PAD", "O", "O", "B-singer", "I-singer", "I-singer", "O",
                                                   "B-song", "I-song", "I-song", "PAD"]
    assert decoding.decode_slots(q, offsets[0], slot_ids, labels) == [
        {"slot": "singer", "entity": "Taylor Swift", "pos": [2, 13]},
        {"slot": "song", "entity": "Shape of You", "pos": [15, 26]}]  # entity at the very end is kept


def test_decode_rules(labels):
    s = labels.slot2id
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (0, 0)]
    q = "来周华健"
    # I- without a B- starts an entity; a different type's I- starts a new one; [SEP] ends an entity
    assert decoding.decode_slots(q, offsets, [0, s["O"], s["I-singer"], s["I-song"], s["I-song"], 0], labels) == [
        {"slot": "singer", "entity": "周", "pos": [1, 1]}, {"slot": "song", "entity": "华健", "pos": [2, 3]}]
    # B- B- gives two entities
    assert decoding.decode_slots(q, offsets, [0, s["B-song"], s["B-song"], s["O"], s["O"], 0], labels) == [
        {"slot": "song", "entity": "来", "pos": [0, 0]}, {"slot": "song", "entity": "周", "pos": [1, 1]}]


def test_truncation_is_flagged(tok):
    ids, offsets, truncated = data.encode_queries(tok, ["来一首周华健的花心" * 3, "来一首"], 8)
    assert [len(x) for x in ids] == [8, 5] and truncated == [True, False]


def test_sentence_metric_hand_worked(labels):
    i, s = labels.intent2id, labels.slot2id
    O, B, I = s["O"], s["B-song"], s["I-song"]
    intent_gold = [i["music.play"], i["music.play"], i["OTHERS"], i["music.play"], i["music.pause"]]
    intent_pred = [i["music.play"], i["music.play"], i["OTHERS"], i["OTHERS"], i["music.pause"]]
    slot_gold = [[0, O, B, I, 0], [0, O, B, I, 0], [0, O, O, 0, 0], [0, B, I, 0, 0], [0, O, 0, -100, -100]]
    slot_pred = [[5, O, B, I, 7], [0, O, B, O, 0], [0, B, B, 0, 0], [0, B, I, 0, 0], [0, B, 0, 3, 3]]
    m = metrics.sentence_metrics(intent_pred, intent_gold, slot_pred, slot_gold, labels,
                                 slotless=["OTHERS", "music.pause"])
    # 1: right (PAD positions ignored); 2: wrong slot; 3: slot-less intent, slots ignored; 4: wrong intent;
    # 5: slot-less, right. Sentence 3/5, intent 4/5.
    assert m == {"accuracy": pytest.approx(3 / 5), "intent_accuracy": pytest.approx(4 / 5)}
    m = metrics.sentence_metrics(intent_pred, intent_gold, slot_pred, slot_gold, labels, slotless=[])
    assert m["accuracy"] == pytest.approx(1 / 5)  # 3 and 5 now need their slots right: both wrong


def test_score_predictions_lays_gold_on_the_offsets(labels):
    """Argmax predictions (what the C++ demo gives) against corpus examples: gold B/I labels come from the slot
    spans laid on each prediction's token offsets."""
    i, s = labels.intent2id, labels.slot2id
    O, B, I = s["O"], s["B-song"], s["I-song"]
    examples = [{"query": "放花心", "intent": "music.play", "slots": [("song", 1, 3)]},
                {"query": "放花心", "intent": "music.play", "slots": [("song", 1, 3)]},
                {"query": "暂停", "intent": "music.pause", "slots": []}]
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (0, 0)]  # [CLS] 放 花 心 [SEP]
    preds = [(offsets, i["music.play"], [0, O, B, I, 0]),            # right
             (offsets, i["music.play"], [0, O, B, B, 0]),            # 心 should be I-song
             ([(0, 0), (0, 1), (1, 2), (0, 0)], i["music.pause"], [0, B, B, 0])]  # slot-less: slots ignored
    m = metrics.score_predictions(examples, labels, ["music.pause"], preds)
    assert m == {"accuracy": pytest.approx(2 / 3), "intent_accuracy": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="2 predictions for 3 examples"):
        metrics.score_predictions(examples, labels, ["music.pause"], preds[:2])


def test_slotless_intents_from_data(labels):
    ex = [{"intent": "music.play", "slots": [("song", 0, 1, "x")]}, {"intent": "music.play", "slots": []},
          {"intent": "OTHERS", "slots": []}, {"intent": "music.next", "slots": []}]
    assert data.slotless_intents(ex, labels) == ["OTHERS", "music.next"]


def test_postprocess_confidence_and_slots(labels):
    import numpy as np

    intent_logits = np.zeros((1, len(labels.intents)))
    intent_logits[0, labels.intent2id["music.play"]] = np.log(9 * (len(labels.intents) - 1))
    slot_logits = np.zeros((1, 4, len(labels.slots)))
    for t, name in enumerate(["PAD", "B-singer", "I-singer", "PAD"]):
        slot_logits[0, t, labels.slot2id[name]] = 5
    out = decoding.postprocess(["刘德华"], [[1, 15, 16, 2]], [[(0, 0), (0, 1), (1, 3), (0, 0)]], intent_logits,
                               slot_logits, labels)
    assert out == [{"intent": "music.play", "confidence": 0.9,
                    "slot": [{"slot": "singer", "entity": "刘德华", "pos": [0, 2]}]}]


def test_slot_report_hand_worked(labels):
    """Per-slot precision/recall/F1 over whole values, counted by hand: song TP 1, FP 2, FN 1; singer TP 1, FN 1."""
    s = labels.slot2id
    O, Bs, Is, Bg, Ig = s["O"], s["B-song"], s["I-song"], s["B-singer"], s["I-singer"]
    slot_gold = [[0, O, Bs, Is, 0], [0, Bg, Ig, O, Bs, 0], [0, O, O, O, 0, -100], [0, Bg, 0]]
    slot_pred = [[3, O, Bs, Is, 3], [0, Bg, Ig, O, 0, 0], [0, Bs, O, O, Bs, Bs], [0, Bs, 0]]
    # sentence 2's predicted PAD on 'B-song' counts as O (a miss); padding positions are not scored
    r = metrics.slot_report(slot_pred, slot_gold, labels)
    assert r["slots"]["song"] == {"precision": round(1 / 3, 6), "recall": 0.5, "f1": 0.4, "support": 2}
    assert r["slots"]["singer"] == {"precision": 1.0, "recall": 0.5, "f1": round(2 / 3, 6), "support": 2}
    assert set(r["slots"]) == {"song", "singer"}
    assert r["slot_micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 4}


def test_intent_confusions_commonest_first(labels):
    a, b, c = (labels.intent2id[x] for x in ("music.play", "OTHERS", "music.pause"))
    gold = [a, a, a, b, b, b, b, b, c]
    pred = [a, b, b, a, a, a, c, b, c]
    assert metrics.intent_confusions(pred, gold, labels) == [
        {"gold": "OTHERS", "predicted": "music.play", "count": 3},
        {"gold": "music.play", "predicted": "OTHERS", "count": 2},
        {"gold": "OTHERS", "predicted": "music.pause", "count": 1}]
    assert metrics.intent_confusions(pred, gold, labels, top=1) == [
        {"gold": "OTHERS", "predicted": "music.play", "count": 3}]
