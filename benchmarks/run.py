"""Latency, memory, size and accuracy per model stage and backend, at batch 1, max length 16, 1 thread.

    .venv/bin/python benchmarks/run.py --fine_tuned output/nano --compressed output/nano/width_mult_0.75 \
        --dev data/dev.txt [--queries 300] [--repeats 3]

Each (stage, backend) runs in a fresh process (backends must not share one): it loads the model, answers every
dev query once as warm-up, then `--repeats` timed passes over `--queries` queries, one query per call,
end to end (tokenizer + runtime + decoding) with the tokenizer timed separately; then it reads its own PSS and
RSS from /proc/self/smaps_rollup, and scores sentence accuracy on the whole dev file. Figures are medians over
the repeats. Writes benchmarks/results/<name>.json and .md (ratios against fine-tuned FP32 on Paddle Inference).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "deploy", "python"))

STAGES = (("fine-tuned", "fine_tuned", "infer_model"), ("+ pruning", "compressed", "pruned"),
          ("+ INT8 matmul", "compressed", "int8"), ("+ INT8 embeddings", "compressed", "quant_emb"))
BACKENDS = ("paddle", "onnx_runtime", "paddle_lite", "cpp_onnxruntime")


def memory():
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k.lower() + "_mib"] = round(int(v.split()[0]) / 1024, 1)
    return out


def measure(model_dir, prefix, backend, dev, n_queries, repeats):
    """Runs inside the child process."""
    import utils
    from predictor import SLUPredictor

    labels = utils.LabelSet.from_dir(model_dir)
    examples = utils.read_examples(dev, labels)
    p = SLUPredictor(model_dir, prefix, backend, batch_size=1, cpu_num_threads=1)
    queries = [e["query"] for e in examples]
    p.predict(queries[:n_queries])  # warm-up
    runs = []
    for _ in range(repeats):
        total, tok = [], []
        for q in queries[:n_queries]:
            t0 = time.perf_counter()
            p.tokenizer([q], p.max_length)
            t1 = time.perf_counter()
            p.predict([q])
            t2 = time.perf_counter()
            tok.append(t1 - t0)
            total.append(t2 - t1)
        total.sort()
        runs.append({"p50": total[len(total) // 2] * 1e3, "p90": total[int(len(total) * 0.9)] * 1e3,
                     "tok": statistics.median(tok) * 1e3})
    mem = memory()  # the process that loaded the model and answered at batch 1
    # the tokenizers per query: Python (PaddleNLP) against FastTokenizer
    from predictor import FastTokenizer

    fast = FastTokenizer(model_dir)
    tok_py, tok_fast = [], []
    for q in queries[:n_queries]:
        t0 = time.perf_counter()
        p.tokenizer([q], p.max_length)
        t1 = time.perf_counter()
        fast([q], p.max_length)
        tok_py.append(t1 - t0)
        tok_fast.append(time.perf_counter() - t1)
    # throughput at batch 32 with 2 threads (a second predictor of the same kind)
    p32 = SLUPredictor(model_dir, prefix, backend, batch_size=32, cpu_num_threads=2)
    p32.predict(queries[:64])
    t0 = time.perf_counter()
    p32.predict(queries[:n_queries])
    throughput = n_queries / (time.perf_counter() - t0)
    # accuracy with the same predictor, the metric of training and run_eval.py
    p.batch_size = 64
    m = p.evaluate(examples, utils.read_lines(os.path.join(model_dir, "slotless_intent.txt")))
    return {"p50_ms": statistics.median(r["p50"] for r in runs), "p90_ms": statistics.median(r["p90"] for r in runs),
            "tokenizer_ms": statistics.median(r["tok"] for r in runs),
            "python_tokenizer_ms": statistics.median(tok_py) * 1e3, "fast_tokenizer_ms": statistics.median(tok_fast) * 1e3,
            "batch32_2threads_qps": round(throughput, 1), "accuracy": round(100 * m["accuracy"], 2),
            **mem}


def size_mib(model_dir, prefix):
    return round(sum(os.path.getsize(os.path.join(model_dir, prefix + e)) for e in (".pdmodel", ".pdiparams"))
                 / 2 ** 20, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fine_tuned", required=True)
    ap.add_argument("--compressed", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", nargs="+", default=["paddle", "onnx_runtime", "paddle_lite"], choices=BACKENDS)
    ap.add_argument("--name", default="latency")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(measure(a.child[0], a.child[1], a.child[2], a.dev, a.queries, a.repeats)))
        return
    from predictor import program_ops, refusal

    rows = []
    dirs = {"fine_tuned": a.fine_tuned, "compressed": a.compressed}
    total = len(STAGES) * len(a.backends)
    for k, ((stage, which, prefix), backend) in enumerate([(s, b) for s in STAGES for b in a.backends]):
        d = dirs[which]
        row = {"stage": stage, "model": os.path.join(d, prefix), "backend": backend, "size_mib": size_mib(d, prefix)}
        print(f"[{k + 1}/{total}] {stage} on {backend} ...", file=sys.stderr, flush=True)
        why = refusal(backend, program_ops(os.path.join(d, prefix + ".pdmodel")))
        if why:
            row["refused"] = why
        else:
            p = subprocess.run([sys.executable, __file__, "--fine_tuned", a.fine_tuned, "--compressed", a.compressed,
                                "--dev", a.dev, "--queries", str(a.queries), "--repeats", str(a.repeats),
                                "--child", d, prefix, backend], capture_output=True, text=True, cwd=ROOT)
            res = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
            if p.returncode or not res:
                row["error"] = (p.stderr or p.stdout)[-500:]
            else:
                row.update(json.loads(res[-1][7:]))
        rows.append(row)
    out_dir = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(out_dir, exist_ok=True)
    machine = {"cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" \t:"),
               "cores": os.cpu_count(), "queries": a.queries, "repeats": a.repeats,
               "date": time.strftime("%Y-%m-%d %H:%M")}
    json.dump({"machine": machine, "rows": rows}, open(os.path.join(out_dir, a.name + ".json"), "w"), indent=2,
              ensure_ascii=False)
    done = [r for r in rows if "p50_ms" in r]
    if not done:
        raise SystemExit("benchmarks/run.py: no stage ran: " + json.dumps(rows, ensure_ascii=False)[:2000])
    # ratios against fine-tuned FP32 on Paddle Inference (or the first row measured when that backend was skipped)
    base = next((r for r in done if r["stage"] == "fine-tuned" and r["backend"] == "paddle"), done[0])
    lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores; batch 1, max length 16, 1 thread; "
             f"{a.queries} dev queries x {a.repeats} repeats (medians).", "",
             "| model | backend | accuracy | end-to-end p50 ms (tokenizer) | p90 ms | PSS MiB | RSS MiB | size MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "p50_ms" not in r:
            lines.append(f"| {r['stage']} | {r['backend']} | refused or failed: {r.get('refused', r.get('error', ''))[:90]}"
                         f" | | | | | {r['size_mib']} |")
            continue
        lines.append(f"| {r['stage']} | {r['backend']} | {r['accuracy']:.2f} ({r['accuracy'] - base['accuracy']:+.2f}) | "
                     f"{r['p50_ms']:.3f} ({r['tokenizer_ms']:.3f}) ({base['p50_ms'] / r['p50_ms']:.2f}x) | "
                     f"{r['p90_ms']:.3f} | {r['pss_mib']} ({100 * (r['pss_mib'] / base['pss_mib'] - 1):+.1f}%) | "
                     f"{r['rss_mib']} | {r['size_mib']} |")
    ok = [r for r in rows if "p50_ms" in r]
    lines += ["", "| model | backend | batch 32, 2 threads (Lite: 1, its Python API has no setting): queries/s | Python tokenizer ms | FastTokenizer ms |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['stage']} | {r['backend']} | {r['batch32_2threads_qps']} | {r['python_tokenizer_ms']:.3f} | "
              f"{r['fast_tokenizer_ms']:.3f} |" for r in ok]
    open(os.path.join(out_dir, a.name + ".md"), "w").write("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for backend in sorted({r["backend"] for r in ok}):
        rs = [r for r in ok if r["backend"] == backend]
        axes[0].plot([r["size_mib"] for r in rs], [r["p50_ms"] for r in rs], "o-", label=backend)
        axes[1].plot([r["size_mib"] for r in rs], [r["pss_mib"] for r in rs], "o-", label=backend)
    for ax, y in zip(axes, ("end-to-end p50 latency (ms)", "PSS (MiB)")):
        ax.set_xlabel("model size (MiB)")
        ax.set_ylabel(y)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("batch 1, max length 16, 1 thread")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, a.name + ".png"), dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
