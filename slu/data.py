"""Corpus reading, labels, and the model's inputs: one copy of that logic for training, evaluation, compression,
the predictor, the server and the benchmarks (upstream keeps it in utils.py). Slot decoding is in slu/decoding.py,
the metrics in slu/metrics.py. It imports neither paddle nor paddlenlp, so the deploy side stays light.

Corpus format (NLPCC 2018 Task 4), UTF-8, tab separated, four columns:
    session_id  query  intent  annotated_query
Blank lines separate sessions. Slots are marked inline in the annotated query:
    来一首<singer>周华健</singer>的<song>花心</song>
An ASR correction inside a slot is written `heard||corrected`; the first alternative is the text
that is in the query, and that span is what gets labelled.
"""
import json
import os
import re

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")
PAD_SLOT_ID = 0  # given to [CLS], [SEP] and padding; ignored by the loss and the metric


class DataError(ValueError):
    """A malformed input line, with the file and line number it came from."""

    def __init__(self, path, lineno, message):
        self.path, self.lineno, self.reason = path, lineno, message
        super().__init__(f"{path}:{lineno}: {message}")


class UsageError(ValueError):
    """A setting that cannot work (e.g. a max length the model's position embeddings cannot hold)."""


def check_at_least_one(args, flags):
    """UsageError naming the first of `flags` (attributes of `args`) below 1, e.g. "--batch_size must be at least 1,
    not 0" (a runtime aborts the process on 0 threads)."""
    for flag in flags:
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be at least 1, not {getattr(args, flag)}")


# ----------------------------------------------------------------------------------- labels
def read_label_file(path):
    """One label per line; label id = line index. Blank or repeated labels are errors."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label file not found: {path}")
    labels = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            label = line.strip()
            if not label:
                raise DataError(path, lineno, "blank label")
            if label in labels:
                raise DataError(path, lineno, f"repeated label {label!r}")
            labels.append(label)
    if not labels:
        raise DataError(path, 0, "no labels")
    return labels


class LabelSet:
    """Intent and slot (BIO) label vocabularies, and the slot types they imply."""

    def __init__(self, intent_labels, slot_labels):
        self.intents = list(intent_labels)
        self.slots = list(slot_labels)
        self.intent2id = {x: i for i, x in enumerate(self.intents)}
        self.slot2id = {x: i for i, x in enumerate(self.slots)}
        if self.slots[PAD_SLOT_ID] != "PAD" or "O" not in self.slot2id:
            raise ValueError("slot labels must start with PAD and contain O")
        self.O = self.slot2id["O"]
        self.slot_types = []
        for label in self.slots:
            if label[:2] in ("B-", "I-") and label[2:] not in self.slot_types:
                self.slot_types.append(label[2:])
        for t in self.slot_types:
            for prefix in ("B-", "I-"):
                if prefix + t not in self.slot2id:
                    raise ValueError(f"slot labels have no {prefix + t} for slot type {t!r}")

    @classmethod
    def from_files(cls, intent_path, slot_path):
        return cls(read_label_file(intent_path), read_label_file(slot_path))


# ----------------------------------------------------------------------------------- reading
_TAG = re.compile(r"<(/?)([^<>]*)>")


def parse_annotation(annotated, slot_types=None):
    """Parse an annotated query into (plain text, [(slot_type, start, end, value)]).

    `start`/`end` are character offsets into the plain text (end exclusive); `value` is the
    corrected value when the slot carries an ASR correction `heard||corrected`, else the span.
    Raises ValueError on unbalanced, nested or unknown tags.
    """
    text, spans = [], []
    pos, cursor, open_tag = 0, 0, None
    for m in _TAG.finditer(annotated):
        chunk = annotated[cursor:m.start()]
        cursor = m.end()
        closing, name = m.group(1) == "/", m.group(2)
        if not re.fullmatch(r"[A-Za-z_]+", name):
            raise ValueError(f"malformed tag {m.group(0)!r}")
        if slot_types is not None and name not in slot_types:
            raise ValueError(f"unknown slot type {name!r}")
        if open_tag is None:
            if "||" in chunk:
                raise ValueError("ASR correction '||' outside a slot")
            text.append(chunk)
            pos += len(chunk)
            if closing:
                raise ValueError(f"closing tag </{name}> without an opening tag")
            open_tag = name
        else:
            if not closing:
                raise ValueError(f"tag <{name}> opened inside <{open_tag}>")
            if name != open_tag:
                raise ValueError(f"<{open_tag}> closed by </{name}>")
            heard, sep, corrected = chunk.partition("||")
            if sep and ("||" in corrected or not corrected):
                raise ValueError(f"malformed ASR correction {chunk!r}")
            if not heard:
                raise ValueError(f"empty <{name}> slot")
            text.append(heard)
            spans.append((name, pos, pos + len(heard), corrected if sep else heard))
            pos += len(heard)
            open_tag = None
    if open_tag is not None:
        raise ValueError(f"<{open_tag}> is never closed")
    tail = annotated[cursor:]
    if "||" in tail:
        raise ValueError("ASR correction '||' outside a slot")
    if "<" in tail or ">" in tail:
        raise ValueError("stray '<' or '>' in the annotation")
    text.append(tail)
    return "".join(text), spans


def parse_line(line, labels, path="<string>", lineno=0):
    """Parse one corpus line into an example dict; raise DataError naming file and line."""
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) != 4:
        raise DataError(path, lineno, f"expected 4 tab-separated columns, found {len(cols)}")
    session, query, intent, annotated = cols
    if not query.strip():
        raise DataError(path, lineno, "empty query")
    if intent not in labels.intent2id:
        raise DataError(path, lineno, f"unknown intent {intent!r}")
    try:
        text, spans = parse_annotation(annotated, labels.slot_types)
    except ValueError as e:
        raise DataError(path, lineno, f"bad annotation {annotated!r}: {e}") from None
    if text != query:
        raise DataError(path, lineno, f"annotation text {text!r} differs from the query {query!r}")
    return {"session": session, "query": query, "intent": intent, "slots": spans, "line": lineno}


def read_examples(path, labels, skip_malformed=False, log=print):
    """Read a corpus file. Blank lines are skipped. A malformed line raises DataError, or with
    `skip_malformed` is skipped, counted, and reported in a printed summary."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    examples, skipped = [], []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                err = DataError(path, lineno, f"not valid UTF-8 ({e.reason} at byte {e.start})")
                if not skip_malformed:
                    raise err from None
                skipped.append(err)
                continue
            if not line.strip():
                continue
            try:
                examples.append(parse_line(line, labels, path, lineno))
            except DataError as err:
                if not skip_malformed:
                    raise
                skipped.append(err)
    if skipped:
        log(f"{path}: skipped {len(skipped)} malformed line(s), kept {len(examples)}:")
        for err in skipped[:20]:
            log(f"  {err}")
        if len(skipped) > 20:
            log(f"  ... and {len(skipped) - 20} more")
    return examples


def slotless_intents(examples, labels):
    """Intents that never carry a slot in `examples`, in label order (intents absent from the
    data are left out: there is no evidence either way, so their slots are checked)."""
    seen, with_slots = set(), set()
    for ex in examples:
        seen.add(ex["intent"])
        if ex["slots"]:
            with_slots.add(ex["intent"])
    return [i for i in labels.intents if i in seen and i not in with_slots]


def read_utf8_lines(path):
    """The lines of a UTF-8 text file (without line ends); DataError naming the line that is not UTF-8."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, raw[:e.start].count(b"\n") + 1, f"not valid UTF-8 ({e.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [x.rstrip("\r") for x in lines]


def write_lines(path, items):
    with open(path, "w", encoding="utf-8") as f:
        for x in items:
            f.write(f"{x}\n")


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [x.strip() for x in f if x.strip()]


def attach_context(examples, turns):
    """Give each example the queries of up to `turns` earlier turns of its session, oldest first, as
    `example["context"]`. A session is a run of consecutive lines with the same session id; a blank (or skipped)
    line between two lines also ends it. `turns` 0 gives every example an empty context."""
    history = []
    for k, ex in enumerate(examples):
        prev = examples[k - 1] if k else None
        if prev is None or prev["session"] != ex["session"] or ex.get("line", 0) != prev.get("line", 0) + 1:
            history = []
        ex["context"] = history[-turns:] if turns > 0 else []
        history.append(ex["query"])
    return examples


# ----------------------------------------------------------------------------------- slots
def spans_to_token_labels(offsets, spans, labels):
    """BIO slot label ids per token from character spans.

    `offsets`: one (start, end) character span per token, (0, 0) for special tokens and padding.
    A token belongs to a slot when it overlaps the slot's span; the first such token is B-, the
    rest I-. Special tokens and padding get PAD (0), real tokens outside slots O.
    """
    ids = []
    for s, e in offsets:
        ids.append(PAD_SLOT_ID if e <= s else labels.O)
    for slot_type, start, end, *_ in spans:
        first = True
        for k, (s, e) in enumerate(offsets):
            if e <= s or e <= start or s >= end or ids[k] != labels.O:
                continue
            ids[k] = labels.slot2id[("B-" if first else "I-") + slot_type]
            first = False
    return ids


def intent_slot_types(examples, labels):
    """{intent: [slot types seen with it]} over `examples`, both in label order; intents absent from the data are
    left out (no evidence: the decoder allows them every type)."""
    seen = {}
    for ex in examples:
        seen.setdefault(ex["intent"], set()).update(span[0] for span in ex["slots"])
    return {i: [t for t in labels.slot_types if t in seen[i]] for i in labels.intents if i in seen}


def save_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)


# ----------------------------------------------------------------------------------- inference input
def check_text(text, where):
    """A query must be a non-empty str that encodes as UTF-8 (FastTokenizer aborts the whole process on a lone
    surrogate: a JSON "\\ud800", or an undecodable command-line byte, which Python keeps as U+DC80..U+DCFF);
    `where` names the file/line or field for the error."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: query must be a string, not {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{where}: empty query")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        code = ord(text[e.start])
        what = f"invalid byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"lone surrogate U+{code:04X}"
        raise ValueError(f"{where}: not valid UTF-8 ({what} at character {e.start})") from None
    return text


def encode_queries(tokenizer, queries, max_seq_length):
    """Tokenize with a PaddleNLP tokenizer: (ids, offsets, truncated) per query.

    `offsets` are (start, end) character spans per token, (0, 0) for [CLS]/[SEP]. A query whose
    tokens do not fit in `max_seq_length` is truncated and flagged."""
    full = tokenizer(list(queries), add_special_tokens=False, return_attention_mask=False,
                     return_token_type_ids=False)["input_ids"]
    enc = tokenizer(list(queries), max_length=max_seq_length, truncation=True, return_offsets_mapping=True,
                    return_attention_mask=False, return_token_type_ids=False)
    truncated = [len(f) > max_seq_length - 2 for f in full]
    return enc["input_ids"], [list(map(tuple, o)) for o in enc["offset_mapping"]], truncated


def add_context(tokenize, ids, offsets, contexts, turns, max_context_length):
    """Append dialogue context to encoded queries: (ids, token_type_ids, offsets).

    `ids`/`offsets` are `[CLS] query [SEP]` encodings (the query's tokens have type 0); `contexts[k]` lists the
    earlier turns of query k, oldest first. The last `turns` of them are appended most recent first, each as its
    tokens and a [SEP], with type 1 and offsets (0, 0) (no slot is ever decoded on context), in at most
    `max_context_length` tokens: a turn that does not fit is truncated and the older ones dropped. `tokenize(texts,
    max_length)` is the query tokenizer (ids, offsets, truncated). With `turns` 0 nothing is appended.
    """
    types = [[0] * len(x) for x in ids]
    if turns <= 0 or max_context_length < 2:
        return ids, types, offsets
    wanted = [list(ctx)[-turns:][::-1] for ctx in contexts]
    flat = [t for ctx in wanted for t in ctx]
    turn_ids = tokenize(flat, max_context_length + 1)[0] if flat else []
    ids, offsets, n = [list(x) for x in ids], [list(x) for x in offsets], 0
    for k, ctx in enumerate(wanted):
        budget, sep = max_context_length, ids[k][-1]
        for t in turn_ids[n:n + len(ctx)]:
            if budget < 2:
                break
            piece = list(t[1:-1])[:budget - 1] + [sep]
            ids[k] += piece
            offsets[k] += [(0, 0)] * len(piece)
            types[k] += [1] * len(piece)
            budget -= len(piece)
        n += len(ctx)
    return ids, types, offsets


def pad_batch(ids_list, pad_id, dtype):
    n = max(len(x) for x in ids_list)
    out = np.full((len(ids_list), n), pad_id, dtype=dtype)
    for k, x in enumerate(ids_list):
        out[k, :len(x)] = x
    return out


def read_queries(path, with_context=False):
    """Queries to predict: a corpus file (query = column 2) or one query per line. Blank lines are
    skipped; returns [(line_number, query)], or with `with_context` [(line_number, query, context)] where
    `context` lists the earlier queries of the same session, oldest first (see attach_context; a line that is not
    in corpus format has none)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input file not found: {path}")
    out = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataError(path, lineno, f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            cols = line.split("\t")
            corpus = len(cols) == 4
            out.append({"line": lineno, "query": cols[1] if corpus else line, "session": cols[0] if corpus else None})
    if not with_context:
        return [(x["line"], x["query"]) for x in out]
    attach_context(out, len(out))
    return [(x["line"], x["query"], x["context"] if x["session"] is not None else []) for x in out]
