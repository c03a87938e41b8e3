"""Evaluate or predict with an exported static-graph JointErnie (Paddle Inference).

    python run_eval.py --infer_prefix output/nano/infer_model --test_path data/dev.txt --do_eval

Defaults (tokenizer, label files, max length, slot-less intents, dialogue context, slot decoding) come from the
exported directory's deploy_config.json. A model trained with context takes each query's earlier turns from the
corpus file's sessions. With --do_eval it prints per-slot precision/recall/F1 and the commonest intent confusions
as a table, then a JSON line with sentence and intent accuracy and the slots' micro F1 (the whole report goes to
--output_dir's eval_results.json); without, one prediction per query:
    {"query": "放一首刘德华的音乐", "intent": "music.play", "confidence": 0.998,
     "slot": [{"slot": "singer", "entity": "刘德华", "pos": [3, 5]}]}
`pos` are inclusive character offsets into the query.
"""
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

from slu import data, decoding, manifest, metrics  # first: zlib work-around before paddle
from slu.predictor import Predictor, PythonTokenizer


@dataclass
class EvalArguments:
    infer_prefix: str = field(metadata={"help": "Static model path prefix: <prefix>.pdiparams with <prefix>.json (Paddle 3's PIR program, used when present) "
        "or <prefix>.pdmodel."})
    test_path: str = field(default=None, metadata={"help": "Corpus file (or one query per line, predict mode)."})
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "Directory with the tokenizer files (default: the directory of --infer_prefix)."})
    intent_label_path: Optional[str] = field(default=None, metadata={
        "help": "Intent label file (default: the one deploy_config.json names)."})
    slot_label_path: Optional[str] = field(default=None, metadata={"help": "Slot label file (default as above)."})
    slotless_intent_path: Optional[str] = field(default=None, metadata={
        "help": "Slot-less intents used by the metric, one per line (default: deploy_config.json's list)."})
    max_seq_length: Optional[int] = field(default=None, metadata={
        "help": "Max tokens per query, [CLS] and [SEP] included (default: deploy_config.json's max_seq_length)."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Batch size."})
    do_eval: bool = field(default=False, metadata={"help": "Print accuracy instead of predictions."})
    slot_decoding: Optional[str] = field(default=None, metadata={
        "help": f"{', '.join(decoding.SlotDecoder.MODES)} (default: deploy_config.json's slot_decoding)."})
    device: str = field(default="cpu", metadata={"help": "cpu or gpu."})
    cpu_num_threads: int = field(default=1, metadata={"help": "CPU math threads."})
    output_dir: Optional[str] = field(default=None, metadata={"help": "Where to write eval_results.json or "
                                                                      "predictions.jsonl (optional)."})
    skip_malformed: bool = field(default=False, metadata={"help": "Skip malformed lines in --test_path."})


def load_predictor(args):
    """The exported directory's predictor on Paddle Inference, with the command line's overrides."""
    model_dir = os.path.dirname(os.path.abspath(args.infer_prefix))
    p = Predictor.from_dir(model_dir, model_prefix=os.path.basename(args.infer_prefix), backend="paddle_inference",
                           device=args.device, cpu_num_threads=args.cpu_num_threads, max_length=args.max_seq_length,
                           batch_size=args.per_device_eval_batch_size, slot_decoding=args.slot_decoding)
    if args.model_name_or_path:
        p.tokenizer = PythonTokenizer.from_dir(args.model_name_or_path)
    if args.intent_label_path or args.slot_label_path:
        config = manifest.read(model_dir)
        p.labels = data.LabelSet.from_files(
            args.intent_label_path or os.path.join(model_dir, config["intent_label_file"]),
            args.slot_label_path or os.path.join(model_dir, config["slot_label_file"]))
        manifest.check_labels(p.labels, config, args.intent_label_path or args.slot_label_path)
    if args.slotless_intent_path:
        p.slotless = data.read_lines(args.slotless_intent_path)
    return p


def evaluate(p, args):
    examples = data.attach_context(data.read_examples(args.test_path, p.labels, args.skip_malformed), p.context_turns)
    if not examples:
        raise data.UsageError(f"{args.test_path}: no examples (the file is empty or has only blank lines)")
    report = p.evaluate(examples, report=True)
    print(metrics.report_table(report))
    print(json.dumps({"test_path": args.test_path, "examples": len(examples),
                      "accuracy": round(report["accuracy"], 6),
                      "intent_accuracy": round(report["intent_accuracy"], 6),
                      "slot_f1": report["slot_micro"]["f1"]}, ensure_ascii=False))
    if args.output_dir:
        data.save_json(os.path.join(args.output_dir, "eval_results.json"), report)
    return report


def predict(p, args):
    queries = data.read_queries(args.test_path, with_context=True)  # a corpus file's sessions give the context
    if not queries:
        raise data.UsageError(f"{args.test_path}: no queries (the file is empty or has only blank lines)")
    where = [f"{args.test_path}:{n}" for n, _, _ in queries]
    results = p.predict([q for _, q, _ in queries], where, [c for _, _, c in queries])
    out = open(os.path.join(args.output_dir, "predictions.jsonl"), "w", encoding="utf-8") if args.output_dir else None
    for w, (_, q, _), r in zip(where, queries, results):
        if r.get("truncated"):
            print(f"warning: {w}: query longer than {p.max_length - 2} tokens, truncated", file=sys.stderr)
        line = json.dumps({"query": q, **r}, ensure_ascii=False)
        print(line)
        if out:
            out.write(line + "\n")
    if out:
        out.close()
    return results


def main(argv=None):
    from paddlenlp.trainer import PdArgumentParser

    (args,) = PdArgumentParser((EvalArguments,)).parse_args_into_dataclasses(args=argv)
    if not args.test_path:
        raise SystemExit("run_eval.py: error: --test_path is required")
    data.check_at_least_one(args, ("per_device_eval_batch_size", "cpu_num_threads"))
    if args.output_dir and os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise SystemExit(f"run_eval.py: error: --output_dir {args.output_dir} is a file, not a directory")
    p = load_predictor(args)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
    return evaluate(p, args) if args.do_eval else predict(p, args)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, ValueError, TypeError) as e:  # DataError, UsageError, refusals, unreadable files
        raise SystemExit(f"run_eval.py: error: {e}")
