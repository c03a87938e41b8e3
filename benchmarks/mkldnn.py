"""Paddle Inference (paddle.inference) with oneDNN (MKLDNN) on and off: the runtime's time per query at batch 1 and at
batch 32, 1 thread, for each model stage, and each one's dev accuracy.

    .venv/bin/python benchmarks/mkldnn.py --fine_tuned work/nano_sessions_ep4 \\
        --compressed work/nano_sessions_compress/width_mult_0.75 --dev work/nlpcc_sessions/dev.txt \\
        [--stages infer_model pruned int8 quant_emb] [--queries 256] [--rounds 5] [--name mkldnn]

"on" is what the project runs (slu.predictor.PaddleInferenceRuntime: oneDNN, plus the INT8 oneDNN path for QAT
programs); "off" is the same runtime with mkldnn=False (Paddle's plain CPU kernels). Each (stage, on/off) lives in
its own process and keeps its predictor; the parent asks them for one timed pass in turn, round after round, so a
load that comes and goes on the machine falls on every configuration alike. A pass runs the first --queries dev
queries, tokenized and padded beforehand (the tokenizer is not timed), one query per call (batch 1) or 32 per call;
the table shows the median over rounds of the pass time per query. Accuracy: the whole dev file at batch 32 with
the same predictor, after the timing.

Writes benchmarks/results/<name>.json and .md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from slu import data, manifest  # first: zlib work-around before paddle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = {"infer_model": ("fine_tuned", "fine-tuned"), "pruned": ("compressed", "+ pruning"),
          "int8": ("compressed", "+ INT8 matmul"), "quant_emb": ("compressed", "+ INT8 embeddings")}
BATCHES = (1, 32)


def child(model_dir, prefix, mkldnn, dev, n_queries):
    """One predictor; answers 'time <batch>', 'accuracy' and 'quit' on stdin, one JSON line each."""
    from slu.predictor import Predictor

    p = Predictor.from_dir(model_dir, model_prefix=prefix, backend="paddle_inference", cpu_num_threads=1, mkldnn=mkldnn)
    examples = data.attach_context(data.read_examples(dev, manifest.labels(model_dir)), 0)
    queries = [e["query"] for e in examples][:n_queries]
    ids, types, _, _ = p.encode(queries)
    batches = {b: [(data.pad_batch(ids[s:s + b], p.tokenizer.pad_token_id, p.input_dtype),
                    data.pad_batch(types[s:s + b], 0, p.input_dtype)) for s in range(0, len(ids), b)]
               for b in BATCHES}
    for b in BATCHES:  # warm-up: every shape once
        for batch, token_types in batches[b]:
            p.run(batch, token_types)
    print(json.dumps({"ready": True, "mkldnn": p.runtime.mkldnn, "mkldnn_int8": p.runtime.mkldnn_int8}),
          flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "time":
            t0 = time.perf_counter()
            for batch, token_types in batches[int(cmd[1])]:
                p.run(batch, token_types)
            print(json.dumps({"ms_per_query": (time.perf_counter() - t0) * 1e3 / len(ids)}), flush=True)
        elif cmd[0] == "accuracy":
            p.batch_size = 32
            print(json.dumps({"accuracy": round(100 * p.evaluate(examples)["accuracy"], 2)}), flush=True)
        else:
            return


def ask(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    out = proc.stdout.readline()
    if not out:
        raise RuntimeError(f"benchmarks/mkldnn.py: a child died: {proc.stderr.read()[-1500:]}")
    return json.loads(out)


def markdown(machine, rows):
    """The table: per (stage, MKLDNN) ms per query at batch 1 and 32, against the same stage with MKLDNN off and
    against the fine-tuned FP32 model with MKLDNN on (what a user gets by default)."""
    by = {(r["stage"], r["mkldnn"]): r for r in rows}
    base = by.get(("infer_model", "on"))
    load = ", ".join(f"{x:.2f}" for x in machine["load_average_at_end"])
    lines = [f"paddle.inference, 1 thread, {machine['queries']} dev queries per pass (runtime only), median of "
             f"{machine['rounds']} interleaved rounds (load average at the end: {load})", "",
             "| model | MKLDNN | INT8 oneDNN | accuracy | " + " | ".join(
                 f"batch {b} ms/query (x off, x fine-tuned on)" for b in BATCHES) + " |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for b in BATCHES:
            t = r[f"batch{b}_ms_per_query"]
            off = by.get((r["stage"], "off"))
            x_off = f"{off[f'batch{b}_ms_per_query'] / t:.2f}x" if off else "-"
            x_base = f"{base[f'batch{b}_ms_per_query'] / t:.2f}x" if base else "-"
            cells.append(f"{t:.3f} ({x_off}, {x_base})")
        lines.append(f"| {STAGES[r['stage']][1]} | {r['mkldnn']} | {'yes' if r['oneDNN_int8'] else 'no'} | "
                     f"{r['accuracy']:.2f} | " + " | ".join(cells) + " |")
    return lines + ["", "x off: the same stage with MKLDNN off divided by this row; x fine-tuned on: the fine-tuned "
                        "FP32 model with MKLDNN on divided by this row."]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fine_tuned", help="an exported directory with infer_model.*")
    ap.add_argument("--compressed", help="the width_mult_* directory of compress.sh (pruned, int8, quant_emb)")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    ap.add_argument("--queries", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--name", default="mkldnn")
    ap.add_argument("--out_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], a.child[1], a.child[2] == "on", a.dev, a.queries)
    if a.queries < 1 or a.rounds < 1:
        ap.error("--queries and --rounds must be at least 1")
    dirs = {"fine_tuned": a.fine_tuned, "compressed": a.compressed}
    configs = []
    for stage in a.stages:
        d = dirs[STAGES[stage][0]]
        if not d or not os.path.isfile(os.path.join(d, stage + ".pdmodel")):
            ap.error(f"{stage}: no {stage}.pdmodel in --{STAGES[stage][0]} ({d})")
        configs += [(d, stage, m) for m in ("off", "on")]
    procs = []
    for d, stage, m in configs:  # one at a time: loading is not timed, but keep the start-up load off the others
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--dev", a.dev, "--queries",
                                 str(a.queries), "--child", d, stage, m], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"benchmarks/mkldnn.py: {stage} ({m}) failed to start: {proc.stderr.read()[-1500:]}")
        procs.append((proc, json.loads(line)))
    times = {(c[1], c[2], b): [] for c in configs for b in BATCHES}
    for _ in range(a.rounds):
        for b in BATCHES:
            for (d, stage, m), (proc, _) in zip(configs, procs):
                times[stage, m, b].append(ask(proc, f"time {b}")["ms_per_query"])
    rows = []
    for (d, stage, m), (proc, info) in zip(configs, procs):
        acc = ask(proc, "accuracy")["accuracy"]
        proc.stdin.write("quit\n")
        proc.stdin.close()
        proc.wait()
        rows.append({"stage": stage, "mkldnn": m, "oneDNN_int8": info["mkldnn_int8"], "accuracy": acc,
                     **{f"batch{b}_ms_per_query": round(statistics.median(times[stage, m, b]), 3) for b in BATCHES},
                     **{f"batch{b}_all_rounds": [round(t, 3) for t in times[stage, m, b]] for b in BATCHES}})
    machine = {"cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" \t:"),
               "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(), "queries": a.queries,
               "rounds": a.rounds, "threads": 1, "date": time.strftime("%Y-%m-%d %H:%M")}
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, a.name + ".json"), "w") as f:
        json.dump({"machine": machine, "rows": rows}, f, indent=2)
    lines = markdown(machine, rows)
    with open(os.path.join(a.out_dir, a.name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
