"""Dialogue context (sessions, encoding, manifest) and constrained slot decoding, on hand-worked cases."""
import json

import numpy as np
import pytest

from slu import data, decoding, manifest

VOCAB = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "取", "消", "导", "航", "到", "古", "田", "播", "放", "tay",
         "##lor", "swift", "的", "shape", "of", "you"]


@pytest.fixture(scope="module")
def tokenize(tmp_path_factory):
    from paddlenlp.transformers import ErnieTokenizer

    p = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    p.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tok = ErnieTokenizer(str(p))
    return lambda texts, max_length: data.encode_queries(tok, texts, max_length)


def corpus_examples(tmp_path, labels, text):
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    return data.read_examples(str(path), labels)


# ------------------------------------------------------------------------------------------------ sessions
def test_context_is_the_earlier_turns_of_the_same_session(tmp_path, labels):
    ex = corpus_examples(tmp_path, labels,
                         "1\t导航\tnavigation.open\t导航\n"
                         "1\t古田\tnavigation.navigation\t<destination>古田</destination>\n"
                         "1\t取消\tnavigation.cancel_navigation\t取消\n"
                         "2\t播放\tmusic.play\t播放\n"          # another session id: no context
                         "\n"
                         "2\t取消\tmusic.pause\t取消\n")         # same id after a blank line: a new session
    assert [e["context"] for e in data.attach_context(ex, 1)] == [[], ["导航"], ["古田"], [], []]
    assert [e["context"] for e in data.attach_context(ex, 2)] == [[], ["导航"], ["导航", "古田"], [], []]
    assert [e["context"] for e in data.attach_context(ex, 0)] == [[]] * 5
    assert [e["context"] for e in data.attach_context(ex, 3)][2] == ["导航", "古田"]  # fewer turns than asked: all


def test_read_queries_gives_a_corpus_file_its_sessions_and_plain_lines_none(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("7\t导航\tnavigation.open\t导航\n7\t取消\tOTHERS\t取消\n取消\n", encoding="utf-8")
    assert data.read_queries(str(path), with_context=True) == [(1, "导航", []), (2, "取消", ["导航"]), (3, "取消", [])]
    assert data.read_queries(str(path)) == [(1, "导航"), (2, "取消"), (3, "取消")]


# ------------------------------------------------------------------------------------------------ encoding
def test_context_follows_the_query_most_recent_turn_first_with_token_type_1(tokenize):
    ids, offsets, _ = tokenize(["取消"], 16)
    # worked by hand from VOCAB: [CLS] 取 消 [SEP] | 导 航 到 古 田 [SEP] | 播 放 [SEP]
    got_ids, types, got_offsets = data.add_context(tokenize, ids, offsets, [["播放", "导航到古田"]], 2, 16)
    assert got_ids == [[1, 5, 6, 2, 7, 8, 9, 10, 11, 2, 12, 13, 2]]
    assert types == [[0, 0, 0, 0] + [1] * 9]
    assert got_offsets == [[(0, 0), (0, 1), (1, 2), (0, 0)] + [(0, 0)] * 9]
    assert data.add_context(tokenize, ids, offsets, [["播放", "导航到古田"]], 1, 16)[0] == [[1, 5, 6, 2, 7, 8, 9, 10,
                                                                                          11, 2]]


def test_context_is_cut_to_max_context_length(tokenize):
    ids, offsets, _ = tokenize(["取消"], 16)
    ctx = [["播放", "导航到古田"]]
    assert data.add_context(tokenize, ids, offsets, ctx, 2, 4)[0] == [[1, 5, 6, 2, 7, 8, 9, 2]]  # older turn dropped
    assert data.add_context(tokenize, ids, offsets, ctx, 2, 8)[0] == [[1, 5, 6, 2, 7, 8, 9, 10, 11, 2, 12, 2]]
    assert data.add_context(tokenize, ids, offsets, ctx, 0, 16) == (ids, [[0, 0, 0, 0]], offsets)  # no context model
    assert data.add_context(tokenize, ids, offsets, [[]], 2, 16)[0] == ids  # first turn of a session


def test_slot_labels_are_only_on_the_query(tmp_path, labels):
    from paddlenlp.transformers import ErnieTokenizer

    from slu.training import Collator, encode_examples

    (tmp_path / "v.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tok = ErnieTokenizer(str(tmp_path / "v.txt"))
    ex = corpus_examples(tmp_path, labels, "1\t导航到古田\tnavigation.navigation\t导航到<destination>古田</destination>\n"
                                           "1\t古田\tnavigation.navigation\t<destination>古田</destination>\n")
    items = encode_examples(data.attach_context(ex, 1), tok, labels, 16, 1, 16)
    second = items[1]
    assert second["input_ids"] == [1, 10, 11, 2, 7, 8, 9, 10, 11, 2]
    assert second["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    names = [labels.slots[i] for i in second["slot_label"]]
    assert names == ["PAD", "B-destination", "I-destination", "PAD"] + ["PAD"] * 6  # 古田 in the context: no label
    batch = Collator(0)(items)
    assert batch["token_type_ids"].tolist() == [[0] * 7 + [0] * 3, second["token_type_ids"]]
    assert "token_type_ids" not in encode_examples(ex, tok, labels, 16)[0]


# ------------------------------------------------------------------------------------------------ decoding
PIECES = ["[CLS]", "播", "放", "tay", "##lor", "swift", "的", "shape", "of", "you", "[SEP]"]
QUERY = "播放taylor swift的shape of you"
OFFSETS = [(0, 0), (0, 1), (1, 2), (2, 5), (5, 8), (9, 14), (14, 15), (15, 20), (21, 23), (24, 27), (0, 0)]


def logits_for(labels, wanted):
    """Slot logits [T, labels]: for each token, {label: logit}; every other label 0."""
    out = np.zeros((len(wanted), len(labels.slots)))
    for k, row in enumerate(wanted):
        for label, value in row.items():
            out[k, labels.slot2id[label]] = value
    return out


@pytest.fixture()
def pieces_logits(labels):
    return logits_for(labels, [{}, {"O": 5}, {"O": 5}, {"B-singer": 5}, {"B-song": 5, "I-singer": 2},
                               {"I-song": 5, "I-singer": 4}, {"I-song": 5, "O": 3}, {"B-song": 5}, {"I-song": 5},
                               {"I-song": 5}, {}])


def decode(decoder, labels, intent, logits, query=QUERY):
    ids = [VOCAB.index(t) for t in PIECES]
    slot_ids = decoder.slot_ids(labels.intent2id[intent], ids, OFFSETS, logits)
    return [(s["slot"], s["entity"]) for s in decoding.decode_slots(query, OFFSETS, slot_ids, labels)]


def test_argmax_splits_a_word_between_slots(labels, pieces_logits):
    got = decode(decoding.SlotDecoder(labels), labels, "music.play", pieces_logits)
    assert got == [("singer", "tay"), ("song", "lor swift的"), ("song", "shape of you")]


def test_constrained_decoding_keeps_words_whole_and_bio_valid(labels, pieces_logits):
    decoder = decoding.SlotDecoder(labels, "constrained", {"music.play": ["song", "singer"]},
                                   decoding.continuation_ids(VOCAB))
    # ##lor takes tay's slot (I-singer); swift cannot be I-song after a singer: its best allowed label is I-singer;
    # 的 cannot continue a song that never started: O (3) beats B-* (0)
    got = decode(decoder, labels, "music.play", pieces_logits)
    assert got == [("singer", "taylor swift"), ("song", "shape of you")]


def test_constrained_decoding_allows_only_the_slot_types_of_the_intent(labels, pieces_logits):
    types = {"music.play": ["singer"], "music.pause": []}
    decoder = decoding.SlotDecoder(labels, "constrained", types, decoding.continuation_ids(VOCAB))
    # shape: B-song (5) is out, every other allowed label is 0: O comes first among equals
    assert decode(decoder, labels, "music.play", pieces_logits) == [("singer", "taylor swift")]
    assert decode(decoder, labels, "music.pause", pieces_logits) == []  # a slot-less intent has no slots
    # an intent missing from the table (no evidence in training) allows every type
    assert decode(decoder, labels, "OTHERS", pieces_logits) == [("singer", "taylor swift"), ("song", "shape of you")]


def test_special_tokens_get_pad_and_ties_go_to_o(labels):
    decoder = decoding.SlotDecoder(labels, "constrained", {}, decoding.continuation_ids(VOCAB))
    zeros = np.zeros((len(PIECES), len(labels.slots)))
    assert decoder.slot_ids(0, [VOCAB.index(t) for t in PIECES], OFFSETS, zeros) == [0] + [labels.O] * 9 + [0]


def test_unknown_decoding_is_refused(labels):
    with pytest.raises(data.UsageError, match="slot decoding must be one of argmax, constrained, crf, not 'viterbi'"):
        decoding.SlotDecoder(labels, "viterbi")


def test_intent_slot_types_come_from_the_examples(tmp_path, labels):
    ex = corpus_examples(tmp_path, labels, "1\t播放周杰伦的稻香\tmusic.play\t播放<singer>周杰伦</singer>的<song>稻香</song>\n"
                                           "2\t暂停\tmusic.pause\t暂停\n")
    assert data.intent_slot_types(ex, labels) == {"music.play": ["song", "singer"], "music.pause": []}


# ------------------------------------------------------------------------------------------------ manifest
def written_manifest(tmp_path, labels, **fields):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    data.write_lines(tmp_path / "intent_label.txt", labels.intents)
    data.write_lines(tmp_path / "slot_label.txt", labels.slots)
    m = manifest.build(max_seq_length=16, max_position_embeddings=32, input_dtype="int32", labels=labels, slotless=[],
                       vocab_size=len(VOCAB), **fields)
    (tmp_path / manifest.NAME).write_text(json.dumps(m), encoding="utf-8")
    return m


def test_manifest_carries_context_and_decoding(tmp_path, labels):
    m = written_manifest(tmp_path, labels, context_turns=1, max_context_length=16,
                         intent_slot_types={"music.play": ["song"]}, slot_decoding="constrained")
    assert [i["name"] for i in m["inputs"]] == ["input_ids", "token_type_ids"]
    read = manifest.read(str(tmp_path))
    assert (read["context_turns"], read["max_context_length"], read["slot_decoding"]) == (1, 16, "constrained")
    with pytest.raises(manifest.ManifestError, match="max length 17 exceeds .* use at most 16"):
        manifest.max_length(read, 17)


def test_an_older_manifest_means_no_context_and_argmax(tmp_path, labels):
    m = written_manifest(tmp_path, labels)
    for key in ("context_turns", "max_context_length", "intent_slot_types", "slot_decoding"):
        del m[key]
    (tmp_path / manifest.NAME).write_text(json.dumps(m), encoding="utf-8")
    read = manifest.read(str(tmp_path))
    assert [i["name"] for i in read["inputs"]] == ["input_ids"]
    assert (read["context_turns"], read["max_context_length"], read["slot_decoding"]) == (0, 0, "argmax")


@pytest.mark.parametrize("fields, message", [
    ({"context_turns": -1}, "context_turns must be a non-negative integer, not -1"),
    ({"context_turns": 1, "max_context_length": 1}, "context_turns 1 needs max_context_length >= 2"),
    ({"context_turns": 1, "max_context_length": 17}, "max_seq_length \\+ max_context_length exceed the 32"),
    ({"slot_decoding": "viterbi"}, "slot_decoding must be one of argmax, constrained, crf, not 'viterbi'"),
    ({"slot_decoding": "crf"}, "slot_decoding crf needs slot_transitions"),
    ({"slot_transitions": {"start": [0] * 9, "end": [0] * 9, "transitions": [[0] * 9] * 9}},
     r"slot_transitions.start must be finite numbers of shape \[{n}\]"),
    ({"intent_slot_types": {"music.play": "song"}}, "intent_slot_types must map intents to lists of slot types"),
])
def test_impossible_context_or_decoding_settings_are_refused(tmp_path, labels, fields, message):
    m = written_manifest(tmp_path, labels)
    m.update(fields)
    (tmp_path / manifest.NAME).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(manifest.ManifestError, match=message.replace("{n}", str(len(labels.slots)))):
        manifest.read(str(tmp_path))
