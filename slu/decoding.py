"""Model outputs to answers: slot label ids from slot logits (argmax, constrained to valid whole-word BIO, or
Viterbi under a CRF head's scores), entities from label ids and token offsets, and the answer dicts every
backend returns (upstream's utils.py and run_eval.py decoding, fixed for multi-character tokens)."""
import numpy as np

from slu.data import PAD_SLOT_ID, UsageError

def decode_slots(query, offsets, slot_ids, labels):
    """Slots from per-token label ids and token character offsets.

    Returns [{'slot': type, 'entity': text, 'pos': [first_char, last_char]}] with `pos` inclusive
    character offsets into `query`. An entity starts at B-x, or at I-x that does not continue an
    entity of type x; it extends over following I-x tokens. PAD and special tokens end entities.
    """
    out, cur = [], None
    for (s, e), sid in zip(offsets, slot_ids):
        if e <= s:  # special token or padding
            cur = None
            continue
        label = labels.slots[int(sid)] if 0 <= int(sid) < len(labels.slots) else "O"
        prefix, slot_type = label[:2], label[2:]
        if prefix == "I-" and cur is not None and cur["slot"] == slot_type:
            cur["_end"] = e
            continue
        cur = None
        if prefix in ("B-", "I-"):
            cur = {"slot": slot_type, "_start": s, "_end": e}
            out.append(cur)
    return [{"slot": x["slot"], "entity": query[x["_start"]:x["_end"]], "pos": [x["_start"], x["_end"] - 1]} for x in out]


class SlotDecoder:
    """Slot label ids per token from slot logits.

    "argmax": each token's best label (upstream). "constrained": left to right, each token takes its best label
    among O, B-t for the slot types t seen with the predicted intent in training (none for slot-less intents),
    and I-t only when the token before is B-t or I-t (valid BIO); a WordPiece continuation ("##...") takes the
    label of the word's first piece, as I-t (or O), so no entity starts or ends inside a word. Special tokens and
    padding (offsets (0, 0)) get PAD and end entities. "crf": the same constraints, but the best label sequence of
    each run of query tokens under a CRF slot head's scores (emissions = slot logits, plus the learned `transitions`
    {"start": [L], "end": [L], "transitions": [L][L]}), found by Viterbi.
    """

    MODES = ("argmax", "constrained", "crf")
    NEEDS_CRF = ("crf",)

    def __init__(self, labels, mode="argmax", intent_types=None, continuation_ids=(), transitions=None):
        if mode not in self.MODES:
            raise UsageError(f"slot decoding must be one of {', '.join(self.MODES)}, not {mode!r}")
        if mode in self.NEEDS_CRF and transitions is None:
            raise UsageError(f"slot decoding {mode} needs the CRF transition scores of a model trained with --use_crf")
        self.labels, self.mode = labels, mode
        self.intent_types = dict(intent_types or {})
        self.continuation_ids = frozenset(continuation_ids)
        self.transitions = check_transitions(transitions, len(labels.slots)) if transitions is not None else None

    def decode(self, intent_logits, token_ids, offsets, slot_logits):
        """(intent id, slot label ids for the first len(offsets) tokens) of one query: the intent's argmax and
        slot_ids under it."""
        intent_id = int(np.asarray(intent_logits).argmax())
        return intent_id, self.slot_ids(intent_id, token_ids, offsets, slot_logits)

    def slot_ids(self, intent_id, token_ids, offsets, slot_logits):
        """Label ids for the first len(offsets) tokens of `slot_logits` [T, slot labels], under `intent_id`."""
        logits = np.asarray(slot_logits)
        if self.mode == "argmax":
            return [int(x) for x in logits[:len(offsets)].argmax(-1)]
        allowed = self.intent_types.get(self.labels.intents[intent_id], self.labels.slot_types)
        if self.mode in self.NEEDS_CRF:
            return self._viterbi_ids(allowed, token_ids, offsets, logits)
        slot2id = self.labels.slot2id
        begin = [slot2id["O"]] + [slot2id["B-" + t] for t in allowed]
        out, prev = [], None  # prev: the label (string) of the token before, None after a special token
        for k, (s, e) in enumerate(offsets):
            if e <= s:
                out.append(PAD_SLOT_ID)
                prev = None
                continue
            if prev is not None and int(token_ids[k]) in self.continuation_ids:
                label = prev if prev == "O" else "I-" + prev[2:]
                sid = slot2id[label]
            else:
                candidates = begin + ([slot2id["I-" + prev[2:]]] if prev not in (None, "O") else [])
                sid = max(candidates, key=lambda c: logits[k, c])
            out.append(sid)
            prev = self.labels.slots[sid]
        return out


    def _viterbi_ids(self, allowed, token_ids, offsets, logits):
        """Label ids of the best constrained sequence of each run of query tokens."""
        out, k = [PAD_SLOT_ID] * len(offsets), 0
        while k < len(offsets):  # each run of query tokens (special tokens and padding have offsets (0, 0))
            if offsets[k][1] <= offsets[k][0]:
                k += 1
                continue
            end = k
            while end < len(offsets) and offsets[end][1] > offsets[end][0]:
                end += 1
            continuing = [j > k and int(token_ids[j]) in self.continuation_ids for j in range(k, end)]
            out[k:end] = constrained_viterbi(logits[k:end], self.transitions, self.labels, allowed, continuing)
            k = end
        return out


def check_transitions(transitions, num_labels, where="slot_transitions"):
    """CRF scores as float arrays (start [L], end [L], transitions [L, L]); UsageError naming the field otherwise."""
    if not isinstance(transitions, dict):
        raise UsageError(f"{where} must be an object with start, end and transitions")
    out = {}
    for key, shape in (("start", (num_labels,)), ("end", (num_labels,)), ("transitions", (num_labels, num_labels))):
        try:
            value = np.asarray(transitions.get(key), dtype="float64")
        except (TypeError, ValueError):
            raise UsageError(f"{where}.{key} must hold numbers") from None
        if value.shape != shape or not np.isfinite(value).all():
            raise UsageError(f"{where}.{key} must be finite numbers of shape {list(shape)} (the slot labels), "
                             f"not shape {list(value.shape)}")
        out[key] = value
    return out


def constrained_viterbi(emissions, crf, labels, allowed_types, continuing, with_score=False):
    """The label ids of the highest-scoring sequence (start + emissions + transitions + end) for one run of query
    tokens, among sequences that use O and the `allowed_types` only, are valid BIO (I-t after B-t or I-t), and
    where a token with continuing[k] (a WordPiece "##" piece) keeps its word's entity (O after O, I-t after
    B-t or I-t). `emissions` [n, L]; `crf` as check_transitions returns. with_score: (ids, that score)."""
    slot2id = labels.slot2id
    candidates = ["O"] + [p + t for t in allowed_types for p in ("B-", "I-")]
    cand_ids = [slot2id[c] for c in candidates]
    n, c = len(emissions), len(candidates)
    emit = np.asarray(emissions, dtype="float64")[:, cand_ids]
    trans = crf["transitions"][np.ix_(cand_ids, cand_ids)].copy()
    for j, label in enumerate(candidates):  # I-t only after B-t or I-t
        if label.startswith("I-"):
            trans[[i for i, prev in enumerate(candidates) if prev[2:] != label[2:]], j] = -np.inf
    inside = np.array([x.startswith("I-") for x in candidates])
    # a continuation piece: O only after O, and never B-t (I-t is already tied to its type)
    word_trans = np.full_like(trans, -np.inf)
    word_trans[0, 0] = trans[0, 0]
    word_trans[:, inside] = trans[:, inside]
    score = crf["start"][cand_ids] + emit[0]
    score[inside] = -np.inf  # no I-t at the start of a run
    back = np.zeros((n, c), dtype=int)
    for k in range(1, n):
        step = score[:, None] + (word_trans if continuing[k] else trans)
        back[k] = step.argmax(0)
        score = step.max(0) + emit[k]
    score = score + crf["end"][cand_ids]
    best = [int(score.argmax())]
    best_score = float(score[best[0]])
    for k in range(n - 1, 0, -1):
        best.append(int(back[k][best[-1]]))
    ids = [cand_ids[j] for j in reversed(best)]
    return (ids, best_score) if with_score else ids


def continuation_ids(vocab):
    """Ids of the WordPiece continuation tokens ("##...") of a vocabulary given as a list of tokens."""
    return [i for i, tok in enumerate(vocab) if tok.startswith("##")]


def softmax(x, axis=-1):
    x = np.asarray(x, dtype="float64")
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def postprocess(queries, ids, offsets, intent_logits, slot_logits, labels, decoder=None):
    """Predictions as in upstream's README: one dict per query."""
    decoder = decoder or SlotDecoder(labels)
    probs = softmax(intent_logits)
    out = []
    for k, q in enumerate(queries):
        i, slot_ids = decoder.decode(intent_logits[k], ids[k], offsets[k], slot_logits[k])
        out.append({
            "intent": labels.intents[i],
            "confidence": round(float(probs[k][i]), 6),
            "slot": decode_slots(q, offsets[k], slot_ids, labels),
        })
    return out
