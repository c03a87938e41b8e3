"""Evaluate or predict with an exported static-graph JointErnie (Paddle Inference).

    python run_eval.py --device cpu --model_name_or_path output/nano --infer_prefix output/nano/infer_model \
        --test_path data/dev.txt --max_seq_length 16 --per_device_eval_batch_size 512 --do_eval

With --do_eval it prints sentence and intent accuracy; without, one prediction per query:
    {"query": "放一首刘德华的音乐", "intent": "music.play", "confidence": 0.998,
     "slot": [{"slot": "singer", "entity": "刘德华", "pos": [3, 5]}]}
`pos` are inclusive character offsets into the query.
"""
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import utils  # noqa: F401  (first: zlib work-around before paddle)
from utils import LabelSet, model_input_dtype, read_examples, read_queries, slotless_intents

import numpy as np


@dataclass
class EvalArguments:
    infer_prefix: str = field(metadata={"help": "Static model path prefix: <prefix>.pdmodel and <prefix>.pdiparams."})
    model_name_or_path: Optional[str] = field(default=None, metadata={
        "help": "Directory with the tokenizer files (default: the directory of --infer_prefix)."})
    test_path: str = field(default=None, metadata={"help": "Corpus file (or one query per line, predict mode)."})
    intent_label_path: Optional[str] = field(default=None, metadata={
        "help": "Intent label file (default: intent_label.txt beside the model, else data/intent_label.txt)."})
    slot_label_path: Optional[str] = field(default=None, metadata={"help": "Slot label file (default as above)."})
    slotless_intent_path: Optional[str] = field(default=None, metadata={
        "help": "Slot-less intents used by the metric (default: slotless_intent.txt beside the model, written at "
                "training time; else derived from --test_path)."})
    max_seq_length: int = field(default=16, metadata={"help": "Max tokens per query, [CLS] and [SEP] included."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Batch size."})
    do_eval: bool = field(default=False, metadata={"help": "Print accuracy instead of predictions."})
    device: str = field(default="cpu", metadata={"help": "cpu or gpu."})
    cpu_num_threads: int = field(default=1, metadata={"help": "CPU math threads."})
    output_dir: Optional[str] = field(default=None, metadata={"help": "Where to write eval_results.json or "
                                                                      "predictions.jsonl (optional)."})
    skip_malformed: bool = field(default=False, metadata={"help": "Skip malformed lines in --test_path."})


def find_file(name, *dirs):
    for d in dirs:
        if d and os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name)
    return None


class StaticPredictor:
    """Paddle Inference predictor over an exported JointErnie: ids [B, T] -> (intent logits, slot logits)."""

    def __init__(self, infer_prefix, device="cpu", cpu_num_threads=1):
        import paddle.inference as paddle_infer

        for ext in (".pdmodel", ".pdiparams"):
            if not os.path.isfile(infer_prefix + ext):
                raise FileNotFoundError(f"model file not found: {infer_prefix + ext}")
        self.input_dtype = model_input_dtype(infer_prefix + ".pdmodel")
        config = paddle_infer.Config(infer_prefix + ".pdmodel", infer_prefix + ".pdiparams")
        if device == "gpu":
            config.enable_use_gpu(100, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_num_threads)
        config.disable_glog_info()
        self.predictor = paddle_infer.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.outputs = [self.predictor.get_output_handle(n) for n in self.predictor.get_output_names()]

    def __call__(self, ids):
        ids = np.asarray(ids)
        if ids.dtype != np.dtype(self.input_dtype):
            raise TypeError(f"input_ids has dtype {ids.dtype}, the model expects {self.input_dtype}")
        self.input.reshape(list(ids.shape))
        self.input.copy_from_cpu(ids)
        self.predictor.run()
        return [o.copy_to_cpu() for o in self.outputs]


def predict(predictor, tokenizer, queries, labels, max_seq_length, batch_size):
    """Predictions for `queries` ([(where, text)]): (results, truncated flags, intent ids, slot ids per batch)."""
    results, truncated_all, raw = [], [], []
    for s in range(0, len(queries), batch_size):
        chunk = queries[s:s + batch_size]
        texts = [utils.check_query(q, where) for where, q in chunk]
        ids, offsets, truncated = utils.encode_queries(tokenizer, texts, max_seq_length)
        batch = utils.pad_batch(ids, tokenizer.pad_token_id, predictor.input_dtype)
        intent_logits, slot_logits = predictor(batch)
        results += utils.postprocess(texts, offsets, intent_logits, slot_logits, labels)
        truncated_all += truncated
        raw.append((intent_logits.argmax(-1), slot_logits.argmax(-1)))
    return results, truncated_all, raw


def evaluate_static(predictor, tokenizer, examples, labels, slotless, max_seq_length, batch_size):
    """Sentence and intent accuracy of a static model on corpus examples (same metric as training)."""
    def forward(texts):
        ids, offsets, _ = utils.encode_queries(tokenizer, texts, max_seq_length)
        return (ids, offsets, *predictor(utils.pad_batch(ids, tokenizer.pad_token_id, predictor.input_dtype)))

    return utils.evaluate_examples(examples, labels, slotless, forward, batch_size)


def load_labels(args, model_dir):
    intent = args.intent_label_path or find_file("intent_label.txt", model_dir, "data")
    slot = args.slot_label_path or find_file("slot_label.txt", model_dir, "data")
    if not intent or not slot:
        raise SystemExit("run_eval.py: error: no label files; pass --intent_label_path and --slot_label_path")
    return LabelSet.from_files(intent, slot)


def main(argv=None):
    from paddlenlp.trainer import PdArgumentParser
    from paddlenlp.transformers import AutoTokenizer

    (args,) = PdArgumentParser((EvalArguments,)).parse_args_into_dataclasses(args=argv)
    if not args.test_path:
        raise SystemExit("run_eval.py: error: --test_path is required")
    for ext in (".pdmodel", ".pdiparams"):
        if not os.path.isfile(args.infer_prefix + ext):
            raise FileNotFoundError(f"model file not found: {args.infer_prefix + ext}")
    model_dir = os.path.dirname(os.path.abspath(args.infer_prefix))
    tok_dir = args.model_name_or_path or model_dir
    labels = load_labels(args, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    predictor = StaticPredictor(args.infer_prefix, args.device, args.cpu_num_threads)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)

    if args.do_eval:
        examples = read_examples(args.test_path, labels, args.skip_malformed)
        slotless_path = args.slotless_intent_path or find_file("slotless_intent.txt", model_dir, tok_dir)
        slotless = utils.read_lines(slotless_path) if slotless_path else slotless_intents(examples, labels)
        metrics = evaluate_static(predictor, tokenizer, examples, labels, slotless, args.max_seq_length,
                                  args.per_device_eval_batch_size)
        print(json.dumps({"test_path": args.test_path, "examples": len(examples),
                          "accuracy": round(metrics["accuracy"], 6),
                          "intent_accuracy": round(metrics["intent_accuracy"], 6)}, ensure_ascii=False))
        if args.output_dir:
            utils.save_json(os.path.join(args.output_dir, "eval_results.json"), metrics)
        return metrics

    queries = [(f"{args.test_path}:{n}", q) for n, q in read_queries(args.test_path)]
    results, truncated, _ = predict(predictor, tokenizer, queries, labels, args.max_seq_length,
                                    args.per_device_eval_batch_size)
    out = open(os.path.join(args.output_dir, "predictions.jsonl"), "w", encoding="utf-8") if args.output_dir else None
    for (where, q), r, t in zip(queries, results, truncated):
        if t:
            print(f"warning: {where}: query longer than {args.max_seq_length - 2} tokens, truncated",
                  file=sys.stderr)
        line = json.dumps({"query": q, **r, **({"truncated": True} if t else {})}, ensure_ascii=False)
        print(line)
        if out:
            out.write(line + "\n")
    if out:
        out.close()
    return results


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, utils.DataError, ValueError, TypeError) as e:
        raise SystemExit(f"run_eval.py: error: {e}")
