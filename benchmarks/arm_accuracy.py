"""The compressed stages on Paddle Lite's ARM kernels against x86, on a whole dev file: each stage's arm `.nb`
(slu/lite.py's conversion) run by the aarch64 `lite_demo` (deploy/cpp, `ARCH=aarch64 RUNTIME=lite`), under qemu
on an x86 machine or natively on a board (`--qemu ''`), and the same program on x86 Paddle Inference, twice: with
oneDNN (what run_eval.py and the `paddle` backends run) and without (the QAT program as written, quantize and
dequantize in float). Through the whole pipeline: tokenizer, the model's slot decoding (CRF), context turns.

    .venv/bin/python benchmarks/arm_accuracy.py --model_dir output/nano_compress/width_mult_0.75 \
        --dev data/dev.txt --lite_demo /tmp/b-lite/lite_demo [--stages pruned int8 quant_emb] [--name NAME]

Per stage: sentence and intent accuracy of each run (the metric of training) and the share of queries whose
answer (intent and slots) equals ARM's. Writes benchmarks/results/<name>.json and .md. No time is recorded: under
qemu a time is the emulator's, not a device's.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

from slu import data, manifest  # first: zlib work-around before paddle
from run import cpp_accuracy, dev_examples  # benchmarks/run.py: the C++ demo's output scored as run_eval.py scores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU = "qemu-aarch64-static -L /usr/aarch64-linux-gnu"
X86 = {"x86_onednn": True, "x86_as_written": False}  # the two x86 references: oneDNN on, off


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True, help="an exported directory (compress.sh's width_mult_*)")
    ap.add_argument("--dev", required=True, help="corpus file (its sessions give a context model its turns)")
    ap.add_argument("--lite_demo", help="the aarch64 lite_demo (ARCH=aarch64 RUNTIME=lite bash deploy/cpp/build.sh)")
    ap.add_argument("--qemu", default=QEMU, help=f"how to run an aarch64 program here ('' on a board; {QEMU!r})")
    ap.add_argument("--stages", nargs="+", default=["pruned", "int8", "quant_emb"])
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--name", default="arm_accuracy", help="result file name under benchmarks/results/")
    ap.add_argument("--child", nargs=2, metavar=("PREFIX", "MKLDNN"), help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def x86_child(model_dir, dev, prefix, mkldnn):
    """One x86 reference in this process: its answers as JSON lines, then its accuracy as the last line."""
    from slu.predictor import Predictor

    p = Predictor.from_dir(model_dir, model_prefix=prefix, backend="paddle_inference", mkldnn=mkldnn == "on",
                           batch_size=64)
    examples = dev_examples(dev, model_dir)
    for r in p.predict([e["query"] for e in examples], contexts=[e["context"] for e in examples]):
        print(json.dumps({"intent": r["intent"], "slot": r["slot"]}, ensure_ascii=False))
    print(json.dumps(p.evaluate(examples)))


def run_x86(a, prefix, mkldnn):
    """A fresh process per reference: Paddle Inference with and without oneDNN never share one."""
    p = subprocess.run([sys.executable, __file__, "--model_dir", a.model_dir, "--dev", a.dev,
                        "--child", prefix, "on" if mkldnn else "off"], capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        raise SystemExit(f"arm_accuracy.py: error: x86 {prefix} failed: {p.stderr[-1500:]}")
    lines = p.stdout.strip().splitlines()
    return [json.loads(x) for x in lines[:-1]], json.loads(lines[-1])


def run_arm(a, prefix, examples):
    from slu import lite

    nb = lite.convert(os.path.join(a.model_dir, prefix), "arm")
    cmd = shlex.split(a.qemu) + [a.lite_demo, "--model_dir", a.model_dir, "--model_file", nb, "--input_file", a.dev,
                                 "--dump_ids", "--batch_size", str(a.batch_size)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"arm_accuracy.py: error: lite_demo on {nb} failed ({p.returncode}): {p.stderr[-1500:]}")
    rows = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    return rows, cpp_accuracy(p.stdout, examples, a.model_dir), os.path.getsize(nb)


def answer(row):
    return row["intent"], [(s["slot"], s["entity"], tuple(s["pos"])) for s in row["slot"]]


def stage_row(a, prefix, examples):
    arm_rows, arm_acc, nb_bytes = run_arm(a, prefix, examples)
    row = {"stage": prefix, "arm_nb_bytes": nb_bytes, "queries": len(examples),
           "arm": {k: round(100 * arm_acc[k], 2) for k in ("accuracy", "intent_accuracy")}}
    for name, mkldnn in X86.items():
        answers, acc = run_x86(a, prefix, mkldnn)
        same = sum(answer(x) == answer(y) for x, y in zip(answers, arm_rows))
        row[name] = {**{k: round(100 * acc[k], 2) for k in ("accuracy", "intent_accuracy")},
                     "same_answers": same, "same_answers_pct": round(100 * same / len(examples), 2),
                     "arm_minus_x86": round(100 * (arm_acc["accuracy"] - acc["accuracy"]), 2)}
    return row


def markdown(rows, a):
    out = [f"ARM (Paddle Lite's ARM kernels, `{a.qemu or 'native'}`) against x86 Paddle Inference, "
           f"{rows[0]['queries']} queries of {a.dev}, model {a.model_dir}", "",
           "| stage | ARM acc. / intent (%) | x86 oneDNN acc. (%) | same answers | x86 as written acc. (%) | same answers |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        o, w = r["x86_onednn"], r["x86_as_written"]
        out.append(f"| {r['stage']} | {r['arm']['accuracy']} / {r['arm']['intent_accuracy']} | {o['accuracy']} "
                   f"({o['arm_minus_x86']:+.2f}) | {o['same_answers_pct']}% | {w['accuracy']} "
                   f"({w['arm_minus_x86']:+.2f}) | {w['same_answers_pct']}% |")
    return "\n".join(out) + "\n"


def main(argv=None):
    a = parse_args(argv)
    if a.child:
        return x86_child(a.model_dir, a.dev, *a.child)
    if not a.lite_demo or not os.path.isfile(a.lite_demo):
        raise SystemExit(f"arm_accuracy.py: error: --lite_demo {a.lite_demo}: no such program (build it with "
                         "ARCH=aarch64 RUNTIME=lite bash deploy/cpp/build.sh)")
    manifest.read(a.model_dir)
    examples = dev_examples(a.dev, a.model_dir)
    rows = []
    for prefix in a.stages:
        rows.append(stage_row(a, prefix, examples))
        print(json.dumps(rows[-1]), file=sys.stderr)
    out = os.path.join(ROOT, "benchmarks", "results", a.name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    data.save_json(out + ".json", {"model_dir": a.model_dir, "dev": a.dev, "qemu": a.qemu, "rows": rows})
    with open(out + ".md", "w", encoding="utf-8") as f:
        f.write(markdown(rows, a))
    print(markdown(rows, a))


if __name__ == "__main__":
    main()
