"""Test-only code shared by the C++ and Java golden tests of dialogue context (data.add_context) and slot decoding
(decoding.SlotDecoder): the cases, model directories without a model (a vocabulary, the label files and a
deploy_config.json), the case files both drivers read (slu_golden, GoldenMain) and the Python answers."""
import os
import shutil

import numpy as np

from helpers import TOKENIZER_EDGE_CASES

# (query, earlier turns oldest first): no context, 1, 2 and 3 turns, a turn longer than the whole budget, a query
# that is truncated, WordPiece continuations, an empty turn (its [SEP] alone), every tokenizer edge case as a turn and
# as a query (its offsets: PaddleNLP's offset mapping, quirks included)
CONTEXT_CASES = [
    ("来一首周华健的花心", []),
    ("导航到古田", ["打电话给妈妈"]),
    ("不去了", ["导航到古田", "换一条路线"]),
    ("播放", ["你好", "来一首歌", "下一首"]),
    ("暂停", ["来一首周华健的花心" * 3]),
    ("来一首周华健的花心" * 3, ["导航到古田", "打电话给18866668888"]),
    ("打电话给他", ["Taylor Swift的Shape of You", "ok"]),
    ("好", ["a", "", "b"]),
    ("好的", ["一二三", "四五六七"]),
    ("好的", ["一二", "三四五"]),
] + [("那个呢", [turn]) for turn in TOKENIZER_EDGE_CASES] + [(query, ["好的"]) for query in TOKENIZER_EDGE_CASES]

# (max_seq_length, context_turns, max_context_length): none; one turn; two; a budget of 6 tokens, which a turn of 4
# tokens leaves too small for another (budget < 2) and one of 3 leaves 2 (one token and its [SEP]); a budget larger
# than every context
CONTEXT_SETTINGS = [(16, 0, 0), (16, 1, 8), (16, 2, 12), (8, 2, 6), (16, 3, 40)]

# intent_slot_types for the constrained decoding cases: slot-less intents ([]), types in another order than the
# slot labels' (ties go to the table's order); the intents left out allow every type
SLOT_TABLE = {"OTHERS": [], "music.pause": [], "music.play": ["singer", "song", "language"],
              "navigation.navigation": ["destination", "custom_destination", "origin"],
              "phone_call.make_a_phone_call": ["phone_num", "contact_name"]}


def crf_scores(labels, seed=0):
    """Seeded CRF scores over `labels`' slot labels, as a --use_crf export writes them (float32 values)."""
    rng = np.random.default_rng(seed)
    n = len(labels.slots)
    return {key: rng.normal(0, 1, shape).astype("float32").tolist()
            for key, shape in (("start", n), ("end", n), ("transitions", (n, n)))}


def write_model_dir(path, vocab_path, labels, max_seq_length=16, context_turns=0, max_context_length=0,
                    slot_decoding="argmax", intent_slot_types=None):
    """A model directory without a model: `vocab_path`, the label files of `labels` and a deploy_config.json that
    manifest.build writes with these settings (and manifest.check_optional accepts); slot_decoding "crf" gets the
    scores of crf_scores(labels)."""
    from slu import data, manifest

    path.mkdir()
    shutil.copy(vocab_path, path / "vocab.txt")
    data.write_lines(str(path / "intent_label.txt"), labels.intents)
    data.write_lines(str(path / "slot_label.txt"), labels.slots)
    vocab = data.read_utf8_lines(str(path / "vocab.txt"))
    m = manifest.build(max_seq_length=max_seq_length, max_position_embeddings=512, input_dtype="int64", labels=labels,
                       slotless=[], vocab_size=len(vocab), pad_token_id=vocab.index("[PAD]"), context_turns=context_turns, max_context_length=max_context_length,
                       intent_slot_types=intent_slot_types, slot_decoding=slot_decoding,
                       slot_transitions=crf_scores(labels) if slot_decoding == "crf" else None)
    manifest.check_optional(m, str(path))
    data.save_json(str(path / manifest.NAME), m)
    return path


def context_case_file(path, cases=CONTEXT_CASES):
    """One line per case: the query, then its turns, tab separated."""
    path.write_text("".join("\t".join([q, *turns]) + "\n" for q, turns in cases), encoding="utf-8")
    return path


def expected_encodings(tokenizer, max_seq_length, turns, max_context_length, cases=CONTEXT_CASES):
    """data.add_context over the query tokenizer (slu.predictor.PythonTokenizer): the rows the drivers print."""
    from slu import data

    ids, offsets, truncated = tokenizer([q for q, _ in cases], max_seq_length)
    ids, types, offsets = data.add_context(tokenizer, ids, offsets, [t for _, t in cases], turns, max_context_length)
    return [{"ids": i, "token_type_ids": t, "offsets": [list(o) for o in off], "truncated": tr}
            for i, t, off, tr in zip(ids, types, offsets, truncated)]


def _rows(labels, n, marks):
    """float32 slot logits [n, slot labels], 0 but `marks` {(token, label): value}."""
    logits = np.zeros((n, len(labels.slots)), dtype="float32")
    for (t, label), v in marks.items():
        logits[t, labels.slot2id[label]] = v
    return logits


def decode_cases(labels, vocab, seed=0, count=300):
    """(intent id, token ids, offsets, slot logits [T, S] float32): seeded random ones (continuation tokens, special
    tokens inside, logits either normal or small integers, which tie often) and crafted ones."""
    rng = np.random.default_rng(seed)
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    cont = [i for i, t in enumerate(vocab) if t.startswith("##")]
    plain = [i for i, t in enumerate(vocab) if not t.startswith("##") and not t.startswith("[")]
    assert len(cont) > 5 and len(plain) > 100  # the test's own premise: a vocabulary with continuations
    cases = []
    for n in range(count):
        ids, offsets = [cls], [(0, 0)]
        for k in range(int(rng.integers(0, 14))):
            r = rng.random()
            ids.append(sep if r < 0.07 else int(rng.choice(cont)) if r < 0.4 else int(rng.choice(plain)))
            offsets.append((0, 0) if r < 0.07 else (k, k + 1))
        ids.append(sep)
        offsets.append((0, 0))
        shape = (len(ids), len(labels.slots))
        logits = rng.integers(-2, 3, shape) if n % 2 else rng.normal(0, 2, shape)
        cases.append((int(rng.integers(len(labels.intents))), ids, offsets, logits.astype("float32")))
    i = labels.intent2id
    c, p = cont[0], plain[0]
    ids5, off5 = [cls, p, c, c, p, sep], [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (0, 0)]
    cases += [
        # all equal: O (the first candidate) and PAD
        (i["music.play"], ids5, off5, _rows(labels, 6, {})),
        # B-singer, continued as I-singer twice, then I-singer allowed after I-singer
        (i["music.play"], ids5, off5, _rows(labels, 6, {(1, "B-singer"): 3, (2, "B-song"): 9, (3, "O"): 9,
                                                       (4, "I-singer"): 2})),
        # continuations after O stay O; I- right after O is not a candidate
        (i["music.play"], ids5, off5, _rows(labels, 6, {(1, "O"): 1, (2, "B-song"): 5, (4, "I-song"): 5})),
        # a continuation right after [CLS] or [SEP] is decoded as a word start
        (i["music.play"], [cls, c, sep, c, p, sep], [(0, 0), (0, 1), (0, 0), (1, 2), (2, 3), (0, 0)],
         _rows(labels, 6, {(1, "B-song"): 1, (3, "B-singer"): 1, (4, "I-singer"): 1})),
        # slot-less intent: O whatever the logits
        (i["OTHERS"], ids5, off5, _rows(labels, 6, {(1, "B-song"): 9, (2, "I-song"): 9, (4, "B-destination"): 9})),
        # an intent left out of the table allows every type
        (i["music.next"], ids5, off5, _rows(labels, 6, {(1, "B-origin"): 9, (4, "B-phone_num"): 9})),
        # a type the intent does not allow is no candidate
        (i["music.play"], ids5, off5, _rows(labels, 6, {(1, "B-destination"): 9, (1, "B-song"): 1})),
        # ties: B-singer = B-song (the table's order: singer), B = O (O), I- = B- after B- (B-: before I-), I- = O
        (i["music.play"], [cls, p, p, p, p, sep], off5,
         _rows(labels, 6, {(1, "B-song"): 4, (1, "B-singer"): 4, (2, "B-song"): 2, (2, "I-singer"): 2,
                           (3, "O"): 1, (3, "I-song"): 1, (4, "B-language"): -1})),
        # ties for an intent left out: the slot labels' order (song before singer)
        (i["music.next"], [cls, p, p, sep], off5[:3] + [(0, 0)],
         _rows(labels, 4, {(1, "B-singer"): 4, (1, "B-song"): 4, (2, "I-song"): 4, (2, "B-age"): 4})),
        # negative logits only: the largest, O included
        (i["navigation.navigation"], [cls, p, p, sep], off5[:3] + [(0, 0)],
         _rows(labels, 4, {(1, "O"): -3, (1, "B-origin"): -1, (2, "O"): -1, (2, "I-origin"): -1}) - 5),
        # specials only
        (i["music.play"], [cls, sep], [(0, 0), (0, 0)], _rows(labels, 2, {(0, "B-song"): 9})),
    ]
    return cases


def decode_case_file(path, cases):
    """One line per case: intent, ids, "start,end" offsets, logits row-major (repr: exact float32)."""
    lines = []
    for intent, ids, offsets, logits in cases:
        lines.append("\t".join([str(intent), " ".join(map(str, ids)), " ".join(f"{s},{e}" for s, e in offsets),
                                " ".join(repr(float(x)) for x in logits.reshape(-1))]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_slot_ids(labels, vocab, mode, table, cases):
    from slu import decoding

    decoder = decoding.SlotDecoder(labels, mode, table, decoding.continuation_ids(vocab),
                                   crf_scores(labels) if mode == "crf" else None)
    return [decoder.slot_ids(intent, ids, offsets, logits) for intent, ids, offsets, logits in cases]


def vocab_lines(model_dir):
    from slu import data

    return data.read_utf8_lines(os.path.join(str(model_dir), "vocab.txt"))
