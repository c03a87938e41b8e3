"""deploy_config.json: what a deployment needs to know about an exported directory (docs/deploy_config.md).

Written at export beside the model, tokenizer and label files; the predictor, run_eval.py, the server, the
C++ demo and the Android app read their defaults from it and refuse settings the model cannot serve.
"""
import hashlib
import json
import os

from slu.data import DataError, LabelSet, UsageError, read_utf8_lines, save_json
from slu.decoding import SlotDecoder, check_transitions

NAME = "deploy_config.json"
FORMAT = "ernie-tiny-slu/1"
INPUT_NAME = "input_ids"
# exported program prefix -> compression stage
STAGES = {"infer_model": "fine-tuned", "pruned": "pruned", "int8": "int8", "quant_emb": "int8+emb"}


class ManifestError(UsageError):
    """A missing, malformed or inconsistent deploy_config.json, or a setting it rules out."""


TOKEN_TYPE_NAME = "token_type_ids"
SLOT_DECODINGS = SlotDecoder.MODES


def build(*, max_seq_length, max_position_embeddings, input_dtype, labels, slotless, vocab_size, do_lower_case=True,
          pad_token_id=0, models=None, context_turns=0, max_context_length=0, intent_slot_types=None,
          slot_decoding="argmax", slot_transitions=None):
    inputs = [{"name": INPUT_NAME, "dtype": input_dtype, "shape": [-1, -1]}]
    if context_turns:
        inputs.append({"name": TOKEN_TYPE_NAME, "dtype": input_dtype, "shape": [-1, -1]})
    m = {
        "format": FORMAT,
        "max_seq_length": int(max_seq_length),
        "max_position_embeddings": int(max_position_embeddings),
        "input_dtype": input_dtype,
        "inputs": inputs,
        "outputs": [{"index": 0, "holds": "intent_logits", "shape": [-1, len(labels.intents)]},
                    {"index": 1, "holds": "slot_logits", "shape": [-1, -1, len(labels.slots)]}],
        "vocab_file": "vocab.txt",
        "vocab_size": int(vocab_size),
        "do_lower_case": bool(do_lower_case),
        "pad_token_id": int(pad_token_id),
        "intent_label_file": "intent_label.txt",
        "slot_label_file": "slot_label.txt",
        "num_intents": len(labels.intents),
        "num_slot_labels": len(labels.slots),
        "intent_labels_sha256": labels_digest(labels.intents),
        "slot_labels_sha256": labels_digest(labels.slots),
        "slotless_intents": list(slotless),
        "models": dict(models or {}),
        "context_turns": int(context_turns),
        "max_context_length": int(max_context_length) if context_turns else 0,
        "intent_slot_types": dict(intent_slot_types or {}),
        "slot_decoding": slot_decoding,
    }
    if slot_transitions is not None:
        m["slot_transitions"] = slot_transitions
    return m


def exported_models(directory):
    """The known exported programs present in `directory`, with their stage."""
    return {p: s for p, s in STAGES.items()
            if any(os.path.isfile(os.path.join(directory, p + ext)) for ext in (".pdmodel", ".json"))}


def write(directory, manifest):
    """Write the manifest, listing the exported programs now present in `directory`."""
    manifest = {**manifest, "models": exported_models(directory)}
    save_json(os.path.join(directory, NAME), manifest)
    return manifest


def read(directory):
    """The manifest of an exported directory, checked: format, field types, and the label files against the
    model's output sizes."""
    path = os.path.join(directory, NAME)
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: not found (export the model with run_train.py --do_export, which writes it)")
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ManifestError(f"{path}: format must be {FORMAT!r}, not {m.get('format') if isinstance(m, dict) else m!r}")
    for key in ("max_seq_length", "max_position_embeddings", "num_intents", "num_slot_labels"):
        if not isinstance(m.get(key), int) or isinstance(m.get(key), bool) or m[key] < 1:
            raise ManifestError(f"{path}: {key} must be a positive integer, not {m.get(key)!r}")
    if m.get("input_dtype") not in ("int32", "int64"):
        raise ManifestError(f"{path}: input_dtype must be int32 or int64, not {m.get('input_dtype')!r}")
    for key in ("vocab_file", "intent_label_file", "slot_label_file"):
        if not isinstance(m.get(key), str) or not os.path.isfile(os.path.join(directory, m[key])):
            raise ManifestError(f"{path}: {key} {m.get(key)!r} is not a file in {directory}")
    check_vocab(os.path.join(directory, m["vocab_file"]), m)
    check_optional(m, path)
    return m


def check_optional(m, path):
    """Fields added after the first release, with the values an older export means: no context, argmax slots."""
    m.setdefault("context_turns", 0)
    m.setdefault("max_context_length", 0)
    m.setdefault("intent_slot_types", {})
    m.setdefault("slot_decoding", "argmax")
    for key in ("context_turns", "max_context_length"):
        if not isinstance(m[key], int) or isinstance(m[key], bool) or m[key] < 0:
            raise ManifestError(f"{path}: {key} must be a non-negative integer, not {m[key]!r}")
    if m["context_turns"] and m["max_context_length"] < 2:
        raise ManifestError(f"{path}: context_turns {m['context_turns']} needs max_context_length >= 2")
    if m["context_turns"] and m["max_seq_length"] + m["max_context_length"] > m["max_position_embeddings"]:
        raise ManifestError(f"{path}: max_seq_length + max_context_length exceed the "
                            f"{m['max_position_embeddings']} position embeddings")
    if m["slot_decoding"] not in SLOT_DECODINGS:
        raise ManifestError(f"{path}: slot_decoding must be one of {', '.join(SLOT_DECODINGS)}, "
                            f"not {m['slot_decoding']!r}")
    if m.get("slot_transitions") is not None:
        try:
            check_transitions(m["slot_transitions"], m["num_slot_labels"])
        except UsageError as e:
            raise ManifestError(f"{path}: {e}") from None
    elif m["slot_decoding"] in SlotDecoder.NEEDS_CRF:
        raise ManifestError(f"{path}: slot_decoding {m['slot_decoding']} needs slot_transitions (a model trained "
                            "with --use_crf)")
    types = m["intent_slot_types"]
    if not isinstance(types, dict) or not all(isinstance(v, list) and all(isinstance(t, str) for t in v)
                                              for v in types.values()):
        raise ManifestError(f"{path}: intent_slot_types must map intents to lists of slot types")


def check_vocab(vocab_path, manifest):
    """The vocabulary must be UTF-8, hold the special tokens, put [PAD] at pad_token_id and have vocab_size lines
    (a longer one would give ids past the embedding table: runtimes abort on those)."""
    try:
        tokens = read_utf8_lines(vocab_path)
    except DataError as e:
        raise ManifestError(str(e)) from None
    missing = [t for t in ("[PAD]", "[CLS]", "[SEP]", "[UNK]") if t not in tokens]
    if missing:
        raise ManifestError(f"{vocab_path}: no {', '.join(missing)} token" + ("s" if len(missing) > 1 else ""))
    if tokens.index("[PAD]") != manifest.get("pad_token_id"):
        raise ManifestError(f"{vocab_path}: [PAD] is on line {tokens.index('[PAD]') + 1}, "
                            f"{NAME} says pad_token_id {manifest.get('pad_token_id')}")
    if len(tokens) != manifest.get("vocab_size"):
        raise ManifestError(f"{vocab_path}: {len(tokens)} tokens, the model has {manifest.get('vocab_size')} "
                            "(embedding rows)")


def labels(directory, manifest=None):
    """The label files the manifest names, checked against the model's output sizes."""
    manifest = manifest or read(directory)
    result = LabelSet.from_files(os.path.join(directory, manifest["intent_label_file"]),
                                 os.path.join(directory, manifest["slot_label_file"]))
    check_labels(result, manifest, os.path.join(directory, NAME))
    return result


def labels_digest(labels):
    """sha256 of the labels in order, one per line: the model's output ids mean these labels."""
    return hashlib.sha256("".join(f"{x}\n" for x in labels).encode("utf-8")).hexdigest()


def check_labels(label_set, manifest, where):
    """The label files must be the model's: as many labels as its outputs, in the order it was trained with (a
    reordered file would run and answer wrong)."""
    for what, labels, count_key in (("intent", label_set.intents, "num_intents"),
                                    ("slot", label_set.slots, "num_slot_labels")):
        if len(labels) != manifest[count_key]:
            raise ManifestError(f"{where}: the model outputs {manifest[count_key]} {what} labels, the {what} label "
                                f"file has {len(labels)}")
        digest = manifest.get(f"{what}_labels_sha256")
        if digest and labels_digest(labels) != digest:
            raise ManifestError(f"{where}: the {what} labels are not the ones the model was trained with (same "
                                f"count, other labels or another order)")


def max_length(manifest, requested=None, where=NAME):
    """The max length to serve: the manifest's max_seq_length unless `requested`; refused when the model's
    position embeddings cannot hold it."""
    if requested is None:
        return manifest["max_seq_length"]
    if requested < 3:
        raise ManifestError(f"max length {requested} is below 3 ([CLS], one token, [SEP])")
    room = manifest["max_position_embeddings"] - manifest.get("max_context_length", 0)
    if requested > room:
        raise ManifestError(f"max length {requested} exceeds the model's {manifest['max_position_embeddings']} "
                            f"position embeddings ({where}); use at most {room}")
    return requested
