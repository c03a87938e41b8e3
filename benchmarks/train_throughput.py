"""Training throughput of JointErnie on CPU: samples per second at a given batch size (default nano, 64).

    .venv/bin/python benchmarks/train_throughput.py --model_dir work/pretrained/ernie-3.0-tiny-nano-v2-zh \
        --train work/nlpcc/train.txt --steps 30

Batches are real queries of the train file, padded to their longest item (as run_train.py does with
length-grouped batches) and, with --pad_to 16, to a fixed length for comparison. Forward, loss, backward and
AdamW step are timed after 3 warm-up steps; samples per second over all timed steps and at the median step.
The result is appended (one JSON line) to benchmarks/results/train_throughput.json, or --out.
"""
import argparse
import json
import os
import time

from slu import data  # first: zlib work-around before paddle
from slu.training import DEFAULT_MAX_SEQ_LENGTH as MAX_SEQ_LENGTH

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--pad_to", type=int, default=0, help="pad every batch to this length (at least 16), 0: longest")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "train_throughput.json"))
    a = ap.parse_args()
    if a.pad_to and a.pad_to < MAX_SEQ_LENGTH:
        ap.error(f"--pad_to {a.pad_to}: queries are cut at {MAX_SEQ_LENGTH} tokens, pad to at least that")
    if a.steps < 1 or a.batch_size < 1:
        ap.error("--steps and --batch_size must be at least 1")
    import numpy as np
    import paddle
    from paddlenlp.transformers import AutoTokenizer

    from slu.model import JointErnie, JointLoss
    from slu.training import Collator, encode_examples

    labels = data.LabelSet.from_files(os.path.join(ROOT, "data", "intent_label.txt"),
                                       os.path.join(ROOT, "data", "slot_label.txt"))
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    encoded = encode_examples(data.read_examples(a.train, labels), tok, labels, MAX_SEQ_LENGTH)
    model = JointErnie.from_pretrained(a.model_dir, intent_dim=len(labels.intents), slot_dim=len(labels.slots))
    model.train()
    loss_fn = JointLoss()
    opt = paddle.optimizer.AdamW(1e-4, parameters=model.parameters(), weight_decay=0.01)
    collate = Collator(tok.pad_token_id)
    rng = np.random.RandomState(0)
    times, tokens = [], 0
    for step in range(a.steps + 3):
        batch = collate([encoded[i] for i in rng.choice(len(encoded), a.batch_size, replace=False)])
        if a.pad_to:
            for k, fill in (("input_ids", tok.pad_token_id), ("slot_label", 0)):
                x = np.full((a.batch_size, a.pad_to), fill, batch[k].dtype)
                x[:, :batch[k].shape[1]] = batch[k]
                batch[k] = x
        t0 = time.perf_counter()
        out = model(paddle.to_tensor(batch["input_ids"]))
        loss = loss_fn(out, (paddle.to_tensor(batch["intent_label"]), paddle.to_tensor(batch["slot_label"])))
        loss.backward()
        opt.step()
        opt.clear_grad()
        if step >= 3:
            times.append(time.perf_counter() - t0)
            tokens += batch["input_ids"].size
    res = {"model_dir": a.model_dir, "batch_size": a.batch_size, "steps": a.steps, "pad_to": a.pad_to or "longest",
           "samples_per_second": round(a.batch_size * len(times) / sum(times), 1),
           "samples_per_second_median_step": round(a.batch_size / float(np.median(times)), 1),
           "median_step_s": round(float(np.median(times)), 4), "tokens_per_batch": tokens // len(times),
           "cpu_threads": os.cpu_count()}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(res) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
