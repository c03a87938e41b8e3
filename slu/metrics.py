"""The metrics: sentence and intent accuracy (training, run_eval.py, compression, the benchmarks), and the report
users tune with, per-slot precision/recall/F1 (seqeval, conlleval's chunk rules) and the commonest intent
confusions. Imports neither paddle nor paddlenlp."""
from collections import Counter

from slu.data import PAD_SLOT_ID, spans_to_token_labels
from slu.decoding import SlotDecoder


def sentence_metrics(intent_pred, intent_gold, slot_pred, slot_gold, labels, slotless):
    """Sentence accuracy and intent accuracy.

    intent_pred/intent_gold: [N] intent ids. slot_pred/slot_gold: [N, T] slot ids (slot_gold uses
    PAD_SLOT_ID, or a negative fill value, for special tokens and padding, which are not compared). A sentence is right when
    its intent is right and (the gold intent is slot-less, or every real token's slot is right).
    """
    slotless_ids = {labels.intent2id[i] for i in slotless}
    n = len(intent_gold)
    if n == 0:
        raise ValueError("no examples to evaluate")
    intent_ok = sent_ok = 0
    for k in range(n):
        ig = int(intent_gold[k])
        if int(intent_pred[k]) != ig:
            continue
        intent_ok += 1
        if ig in slotless_ids:
            sent_ok += 1
            continue
        gold, pred = slot_gold[k], slot_pred[k]
        if all(int(p) == int(g) for p, g in zip(pred, gold) if int(g) != PAD_SLOT_ID and int(g) >= 0):
            sent_ok += 1
    return {"accuracy": sent_ok / n, "intent_accuracy": intent_ok / n}


def slot_report(slot_pred, slot_gold, labels):
    """Per-slot precision, recall, F1 and support over whole slot values (seqeval's chunks of the BIO labels of
    each query's real tokens), plus their micro average: {"slots": {type: {...}}, "slot_micro": {...}}. A predicted
    PAD on a real token counts as O."""
    from seqeval.metrics import classification_report  # imports scikit-learn: only when a report is asked for

    def names(ids, gold):
        return [labels.slots[int(i)] if int(i) != PAD_SLOT_ID else "O"
                for i, g in zip(ids, gold) if int(g) != PAD_SLOT_ID and int(g) >= 0]

    y_true = [names(g, g) for g in slot_gold]
    y_pred = [names(p, g) for p, g in zip(slot_pred, slot_gold)]
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)

    def row(r):
        return {"precision": round(float(r["precision"]), 6), "recall": round(float(r["recall"]), 6),
                "f1": round(float(r["f1-score"]), 6), "support": int(r["support"])}

    slots = {t: row(r) for t, r in report.items() if not t.endswith(" avg")}
    return {"slots": dict(sorted(slots.items(), key=lambda x: (-x[1]["support"], x[0]))),
            "slot_micro": row(report["micro avg"])}


def intent_confusions(intent_pred, intent_gold, labels, top=10):
    """The `top` commonest (gold intent, predicted intent) errors, most frequent first."""
    pairs = Counter((int(g), int(p)) for p, g in zip(intent_pred, intent_gold) if int(p) != int(g))
    return [{"gold": labels.intents[g], "predicted": labels.intents[p], "count": c}
            for (g, p), c in sorted(pairs.items(), key=lambda x: (-x[1], x[0]))[:top]]


def full_report(intent_pred, intent_gold, slot_pred, slot_gold, labels, slotless):
    """sentence_metrics plus slot_report and intent_confusions: what run_eval.py --do_eval reports."""
    return {**sentence_metrics(intent_pred, intent_gold, slot_pred, slot_gold, labels, slotless),
            **slot_report(slot_pred, slot_gold, labels),
            "intent_confusions": intent_confusions(intent_pred, intent_gold, labels)}


def evaluate_examples(examples, labels, slotless, forward, batch_size, decoder=None, report=False):
    """Sentence and intent accuracy of any runtime on corpus examples (with report=True the full report): the
    one evaluation loop that run_eval.py and the deployment predictors share. `forward(chunk)` takes a list of
    examples and returns (ids, offsets, intent_logits, slot_logits); `decoder` (default argmax) turns slot logits
    into label ids."""
    decoder = decoder or SlotDecoder(labels)
    predictions = []
    for s in range(0, len(examples), batch_size):
        chunk = examples[s:s + batch_size]
        ids, offsets, intent_logits, slot_logits = forward(chunk)
        for k in range(len(chunk)):
            intent_id, slot_ids = decoder.decode(intent_logits[k], ids[k], offsets[k], slot_logits[k])
            predictions.append((offsets[k], intent_id, slot_ids))
    return score_predictions(examples, labels, slotless, predictions, report)


def score_predictions(examples, labels, slotless, predictions, report=False):
    """Sentence and intent accuracy (with report=True the full report) of predictions given as (token offsets,
    intent id, slot ids per token), one per example: gold slot labels are laid on the same offsets. Used by
    evaluate_examples and by runtimes that only give the argmaxes (the C++ demo)."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    intent_pred, slot_pred, intent_gold, slot_gold = [], [], [], []
    for ex, (offsets, intent_id, slot_ids) in zip(examples, predictions):
        intent_pred.append(intent_id)
        intent_gold.append(labels.intent2id[ex["intent"]])
        slot_pred.append(slot_ids)
        slot_gold.append(spans_to_token_labels(offsets, ex["slots"], labels))
    score = full_report if report else sentence_metrics
    return score(intent_pred, intent_gold, slot_pred, slot_gold, labels, slotless)


def report_table(metrics, rows=15):
    """A few lines for a terminal: the per-slot scores of the most frequent slots and the top intent confusions."""
    lines = [f"{'slot':<18}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, r in list(metrics["slots"].items())[:rows] + [("(micro avg)", metrics["slot_micro"])]:
        lines.append(f"{name:<18}{r['precision']:>10.4f}{r['recall']:>8.4f}{r['f1']:>8.4f}{r['support']:>9}")
    if metrics["intent_confusions"]:
        lines.append("intent confusions (gold -> predicted: count)")
        lines += [f"  {c['gold']} -> {c['predicted']}: {c['count']}" for c in metrics["intent_confusions"]]
    return "\n".join(lines)
