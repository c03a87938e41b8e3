"""Accuracy, latency, memory and size per model stage and backend, at batch 1, 1 thread, each model's max length
(deploy_config.json).

    .venv/bin/python benchmarks/run.py --fine_tuned output/nano --compressed output/nano/width_mult_0.75 \
        --dev data/dev.txt [--queries 200] [--repeats 3] [--backends paddle onnx_runtime paddle_lite cpp] \
        [--stacks default legacy]

Stages: fine-tuned FP32 (`infer_model`), + pruning (`pruned`), + INT8 matmul (`int8`), + INT8 embeddings
(`quant_emb`). Backends: FastDeploy Paddle Inference (`paddle`), Paddle Inference itself (`paddle_inference`),
ONNX Runtime's Python API (`onnx_runtime`), Paddle Lite x86 (`paddle_lite`), and the C++ demo on ONNX Runtime
(`cpp`, deploy/cpp, built when missing; the model converted to `<prefix>.onnx` next to it). The Python backends run
once per `--tokenizers` entry: `python` (PaddleNLP's tokenizer, which imports PaddleNLP and Paddle) and `fast`
(`--use_fast`: slu/tokenizer.py's deployment tokenizer; the process then imports neither). `--stacks default
legacy` runs each Python backend in both environments (slu/envs.py: .venv's Paddle 3 and ONNX Runtime 1.32 against
.venv-legacy's Paddle 2.6 and ONNX Runtime 1.19), side by side in one table; a backend only the legacy one has
(FastDeploy, Lite) runs there once.

Every (stage, backend) runs in fresh processes, never two backends in one. The measuring process loads the
model, answers the first `--queries` dev queries once as warm-up, then `--repeats` timed passes, one query per
call: end to end (tokenizer + runtime + decoding), the tokenizer alone and the runtime alone on the padded
ids; p50/p90 are taken per pass and the medians over passes reported. Memory: PSS and RSS from
/proc/<pid>/smaps_rollup, and peak RSS (VmHWM), of a fresh process that loaded the model and answered those
queries at batch 1, the median over `--repeats` processes. Throughput: the same queries at batch 32 with 2
threads, median of `--repeats` passes. Accuracy: sentence accuracy on the whole dev file, the metric of
training (slu.metrics.sentence_metrics). The arithmetic limit: multiply-adds of each program at the median
tokenized length (benchmarks/arith.py) against one core's matmul peak.

Writes benchmarks/results/<name>.json, .md (ratios against fine-tuned FP32 on Paddle Inference) and .png.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from slu import data, envs, manifest, metrics, program  # first: zlib work-around before paddle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STAGES = (("fine-tuned", "fine_tuned", "infer_model"), ("+ pruning", "compressed", "pruned"),
          ("+ INT8 matmul", "compressed", "int8"), ("+ INT8 embeddings", "compressed", "quant_emb"))
SHORT = {"fine-tuned": "fp32", "+ pruning": "pruned", "+ INT8 matmul": "int8", "+ INT8 embeddings": "int8+emb"}
BACKENDS = ("paddle", "paddle_inference", "onnx_runtime", "paddle_lite", "cpp")
DEFAULT_BACKENDS = ("paddle", "onnx_runtime", "paddle_lite", "cpp")
STACKS = ("default", "legacy")
CPP_DEMO = os.path.join(ROOT, "deploy", "cpp", "build", "infer_demo")
TARGET_SPEEDUP, TARGET_MEMORY_CUT, TARGET_ACCURACY_DROP = 2.13, 0.62, 0.3  # upstream's README: compressed model on a phone


def percentile(values, q):
    """Nearest rank, as the C++ demo takes it: sorted[floor(n * q)]."""
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))]


def memory():
    """PSS, RSS and peak RSS (MiB) of this process."""
    out = {}
    for path, keys in (("/proc/self/smaps_rollup", {"Rss": "rss_mib", "Pss": "pss_mib"}),
                       ("/proc/self/status", {"VmHWM": "peak_rss_mib"})):
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in keys:
                    out[keys[k]] = round(int(v.split()[0]) / 1024, 1)
    return out


def timed_passes(p, queries, contexts, repeats):
    """Per-call end-to-end, tokenizer and runtime-only latency (ms) of a Python predictor, medians over passes.
    `contexts[k]` are the earlier turns of query k (tokenized and run too by a model with context)."""
    batches = []
    for q, c in zip(queries, contexts):
        ids, types, _, _ = p.encode([q], [c])
        batches.append((data.pad_batch(ids, p.tokenizer.pad_token_id, p.input_dtype),
                        data.pad_batch(types, 0, p.input_dtype)))
    runs = []
    for _ in range(repeats):
        total, tok, run = [], [], []
        for q, c, (batch, types) in zip(queries, contexts, batches):
            t0 = time.perf_counter()
            p.encode([q], [c])
            t1 = time.perf_counter()
            p.predict([q], contexts=[c])
            t2 = time.perf_counter()
            p.run(batch, types)
            t3 = time.perf_counter()
            tok.append(t1 - t0)
            total.append(t2 - t1)
            run.append(t3 - t2)
        runs.append({"p50": percentile(total, 0.5) * 1e3, "p90": percentile(total, 0.9) * 1e3,
                     "tok": percentile(tok, 0.5) * 1e3, "run": percentile(run, 0.5) * 1e3})
    return {"p50_ms": statistics.median(r["p50"] for r in runs), "p90_ms": statistics.median(r["p90"] for r in runs),
            "tokenizer_ms": statistics.median(r["tok"] for r in runs),
            "runtime_ms": statistics.median(r["run"] for r in runs)}


def stack_versions():
    """What the measuring process runs on: its environment, Python, Paddle and ONNX Runtime."""
    from importlib import metadata

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"env": ".venv-legacy" if envs.in_legacy() else ".venv", "python": "%d.%d" % sys.version_info[:2],
            "paddle": version("paddlepaddle"), "onnxruntime": version("onnxruntime")}


def measure(model_dir, prefix, backend, dev, n_queries, repeats, memory_only=False, use_fast=False):
    """Runs inside a child process: one Python backend on one model."""
    from slu.predictor import Predictor

    examples = dev_examples(dev, model_dir)
    queries = [e["query"] for e in examples][:n_queries]
    contexts = [e["context"] for e in examples][:n_queries]
    p = Predictor.from_dir(model_dir, model_prefix=prefix, backend=backend, cpu_num_threads=1, batch_size=1,
                           use_fast=use_fast)
    p.predict(queries, contexts=contexts)  # warm-up
    if memory_only:
        p.predict(queries, contexts=contexts)
        return memory()
    res = timed_passes(p, queries, contexts, repeats)
    res.update(stack_versions())
    res.update(memory())  # this process loaded the model and answered at batch 1
    # the tokenizers per query: Python (PaddleNLP) against the fast one (after the memory was read)
    from slu.predictor import PythonTokenizer, fast_tokenizer_from_dir

    py, fast = PythonTokenizer.from_dir(model_dir), fast_tokenizer_from_dir(model_dir)
    tok_py, tok_fast = [], []  # per pass: the median per query
    for _ in range(repeats):
        py_pass, fast_pass = [], []
        for q in queries:
            t0 = time.perf_counter()
            py([q], p.max_length)
            t1 = time.perf_counter()
            fast([q], p.max_length)
            py_pass.append(t1 - t0)
            fast_pass.append(time.perf_counter() - t1)
        tok_py.append(statistics.median(py_pass))
        tok_fast.append(statistics.median(fast_pass))
    # throughput at batch 32 with 2 threads (a second predictor of the same kind)
    p32 = Predictor.from_dir(model_dir, model_prefix=prefix, backend=backend, cpu_num_threads=2, batch_size=32,
                             use_fast=use_fast)
    p32.predict(queries[:64], contexts=contexts[:64])
    qps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p32.predict(queries, contexts=contexts)
        qps.append(len(queries) / (time.perf_counter() - t0))
    # accuracy with the same predictor, the metric of training and run_eval.py
    p.batch_size = 64
    m = p.evaluate(examples)
    res.update({"python_tokenizer_ms": statistics.median(tok_py) * 1e3,
                "fast_tokenizer_ms": statistics.median(tok_fast) * 1e3,
                "batch32_2threads_qps": round(statistics.median(qps), 1), "accuracy": round(100 * m["accuracy"], 2)})
    return res


def dev_examples(dev, model_dir):
    """The dev examples, each with the earlier turns of its session that the model reads (none without context)."""
    examples = data.read_examples(dev, manifest.labels(model_dir))
    data.attach_context(examples, manifest.read(model_dir)["context_turns"])
    return examples


def stack_python(backend, stack):
    """The interpreter a Python backend runs in for `stack`: the legacy environment's, or the default one's unless
    the backend needs a module only the legacy one has."""
    return envs.legacy_python() if stack == "legacy" else envs.python_for_backend(backend)


def run_child(a, model_dir, prefix, backend, tokenizer, memory_only=False, python=None):
    cmd = [python or envs.python_for_backend(backend), __file__, "--fine_tuned", a.fine_tuned, "--dev", a.dev,
           "--queries", str(a.queries), "--repeats", str(a.repeats), "--child", model_dir, prefix, backend]
    cmd += ["--memory_only"] if memory_only else []
    cmd += ["--use_fast"] if tokenizer == "fast" else []
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    res = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode or not res:
        raise RuntimeError((p.stderr or p.stdout)[-800:])
    return json.loads(res[-1][7:])


def python_row(a, model_dir, prefix, backend, tokenizer, tick, python=None):
    row = run_child(a, model_dir, prefix, backend, tokenizer, python=python)
    tick()
    mems = [{k: row[k] for k in ("pss_mib", "rss_mib", "peak_rss_mib")}]
    for _ in range(a.repeats - 1):
        mems.append(run_child(a, model_dir, prefix, backend, tokenizer, memory_only=True, python=python))
        tick()
    for k in mems[0]:
        row[k] = statistics.median(m[k] for m in mems)
    return row


# ---- the C++ demo ---------------------------------------------------------------------------------------------

def cpp_demo(path):
    """The demo binary and slu_bench beside it (the timing harness), built by deploy/cpp/build.sh when missing."""
    bench = os.path.join(os.path.dirname(path), "slu_bench")
    if os.path.isfile(path) and os.path.isfile(bench):
        return path, bench
    p = subprocess.run(["bash", os.path.join(ROOT, "deploy", "cpp", "build.sh")], capture_output=True, text=True)
    if p.returncode or not (os.path.isfile(path) and os.path.isfile(bench)):
        raise RuntimeError(f"could not build the C++ demo (deploy/cpp/build.sh): {(p.stderr or p.stdout)[-500:]}")
    return path, bench


def onnx_file(model_dir, prefix):
    """<prefix>.onnx next to the Paddle model, converted when missing or older (slu/onnx_export.py)."""
    from slu.onnx_export import cached

    return cached(model_dir, prefix)


def run_cpp(exe, model_dir, onnx, *args):
    """infer_demo or slu_bench on one model; the max length is the manifest's (deploy_config.json)."""
    p = subprocess.run([exe, "--model_dir", model_dir, "--model_file", onnx, *map(str, args)],
                       capture_output=True, text=True, timeout=1800)
    if p.returncode:
        raise RuntimeError(f"{exe} failed ({p.returncode}): {p.stderr[-800:]}")
    return p.stdout


def cpp_accuracy(outputs, examples, model_dir):
    """Sentence accuracy of the C++ demo's JSON lines (with --dump_ids) on corpus examples (read by dev_examples), by
    metrics.score_predictions on PaddleNLP's token offsets, whose ids (context included) must equal the demo's."""
    from slu.predictor import PythonTokenizer

    config = manifest.read(model_dir)
    labels = manifest.labels(model_dir, config)
    rows = [json.loads(x) for x in outputs.splitlines() if x.strip()]
    if len(rows) != len(examples):
        raise RuntimeError(f"the C++ demo answered {len(rows)} of {len(examples)} dev queries")
    tokenizer = PythonTokenizer.from_dir(model_dir)
    ids, offsets, _ = tokenizer([e["query"] for e in examples], config["max_seq_length"])
    ids, _, offsets = data.add_context(tokenizer, ids, offsets, [e["context"] for e in examples],
                                       config["context_turns"], config["max_context_length"])
    for row, ex, i in zip(rows, examples, ids):
        if row["query"] != ex["query"] or row["ids"] != i:
            raise RuntimeError(f"dev line {ex['line']}: the C++ demo's tokens differ from PaddleNLP's for {ex['query']!r}")
    predictions = [(off, labels.intent2id[row["intent"]], row["slot_ids"]) for row, off in zip(rows, offsets)]
    return metrics.score_predictions(examples, labels, config["slotless_intents"], predictions)


def cpp_row(a, model_dir, prefix, tick, tmp):
    demo, bench = cpp_demo(a.cpp_demo)
    onnx = onnx_file(model_dir, prefix)
    examples = data.read_examples(a.dev, manifest.labels(model_dir))
    qfile = os.path.join(tmp, "queries.txt")  # the dev file's lines up to the last query measured: its sessions
    data.write_lines(qfile, data.read_utf8_lines(a.dev)[:examples[:a.queries][-1]["line"]])  # give the context
    stats = []
    for k in range(a.repeats):  # fresh processes: latency and memory of each, medians over them
        sfile = os.path.join(tmp, f"stats{k}.json")
        run_cpp(bench, model_dir, onnx, "--input_file", qfile, "--repeat", a.repeats + 1, "--stats_json", sfile)
        stats.append(json.load(open(sfile)))
        tick()
    row = {k: statistics.median(s[k] for s in stats)
           for k in ("p50_ms", "p90_ms", "tokenizer_ms", "runtime_ms", "pss_mib", "rss_mib", "peak_rss_mib")}
    sfile = os.path.join(tmp, "stats32.json")
    run_cpp(bench, model_dir, onnx, "--input_file", qfile, "--repeat", a.repeats + 1, "--batch_size", 32,
            "--cpu_num_threads", 2, "--stats_json", sfile)
    row["batch32_2threads_qps"] = round(json.load(open(sfile))["queries_per_s"], 1)
    # scored after every measurement: scoring imports PaddleNLP (and Paddle) into this process, whose pages
    # the measured processes would then share, lowering their PSS
    row["_dev_outputs"] = run_cpp(demo, model_dir, onnx, "--input_file", a.dev, "--dump_ids", "--batch_size", 64)
    row["onnx_mib"] = round(os.path.getsize(onnx) / 2 ** 20, 2)
    return row


def label(r):
    """A row's backend as the tables name it: the runtime, the fast tokenizer where the Python row used it, and its
    stack when the run compares the two environments."""
    stack = f" [{r['stack']}]" if r.get("stack") else ""
    return r["backend"] + (" + fast tokenizer" if r.get("tokenizer") == "fast" else "") + stack


# ---- the report -----------------------------------------------------------------------------------------------

def size_mib(model_dir, prefix):
    return round(sum(os.path.getsize(os.path.join(model_dir, prefix + e)) for e in (".pdmodel", ".pdiparams"))
                 / 2 ** 20, 2)


def median_seq_len(model_dir, dev, n_queries):
    from slu.predictor import PythonTokenizer

    queries = [e["query"] for e in data.read_examples(dev, manifest.labels(model_dir))][:n_queries]
    ids, _, _ = PythonTokenizer.from_dir(model_dir)(queries, manifest.read(model_dir)["max_seq_length"])
    return int(statistics.median_low(len(i) for i in ids))


def arithmetic(rows, dirs, seq_len, gflops):
    """Per stage: multiply-adds at seq_len, their time at the core's peak, and the fastest runtime-only latency."""
    import arith  # benchmarks/arith.py, beside this script (pyarrow installs a package named "benchmarks")

    out = []
    for stage, which, prefix in STAGES:
        done = [r for r in rows if r["stage"] == stage and "runtime_ms" in r]
        if not done:
            continue
        macs = arith.program_macs(os.path.join(dirs[which], prefix + ".pdmodel"), seq_len)
        best = min(done, key=lambda r: r["runtime_ms"])
        lim = arith.limit_ms(macs, gflops)
        out.append({"stage": stage, "macs": macs, "limit_ms": round(lim, 4), "best_backend": label(best),
                    "runtime_ms": best["runtime_ms"], "times_limit": round(best["runtime_ms"] / lim, 2)})
    return out


def targets(done, base):
    """Against upstream's ratios: every row's speedup, PSS cut and accuracy change; the rows that meet all three;
    the best of those (fastest), or the fastest row within the accuracy bound when none does."""
    def judge(r):
        speedup, cut = base["p50_ms"] / r["p50_ms"], 1 - r["pss_mib"] / base["pss_mib"]
        change = r["accuracy"] - base["accuracy"]
        return {"stage": r["stage"], "backend": label(r), "speedup": round(speedup, 2), "memory_cut": round(cut, 3),
                "accuracy_change": round(change, 2),
                "met": bool(speedup >= TARGET_SPEEDUP and cut >= TARGET_MEMORY_CUT and change >= -TARGET_ACCURACY_DROP)}

    judged = sorted((judge(r) for r in done), key=lambda j: -j["speedup"])
    meeting = [j for j in judged if j["met"]]
    within = [j for j in judged if j["accuracy_change"] >= -TARGET_ACCURACY_DROP]
    best = (meeting or within or judged)[0]
    return {**best, "meeting": [f"{j['stage']} on {j['backend']}" for j in meeting]}


def deployment_summary(done, base):
    """Per backend (with its tokenizer): the smallest model it runs, and that row's size, speed-up and PSS cut
    against the baseline of the same run."""
    out = []
    for backend in dict.fromkeys(label(r) for r in done):
        rs = [r for r in done if label(r) == backend]
        r = min(rs, key=lambda x: x.get("onnx_mib", x["size_mib"]) if x["backend"] == "cpp" else x["size_mib"])
        out.append({"backend": backend, "stage": r["stage"], "size_mib": r.get("onnx_mib", r["size_mib"]),
                    "accuracy": r["accuracy"], "speedup": round(base["p50_ms"] / r["p50_ms"], 2),
                    "pss_mib": r["pss_mib"], "memory_cut": round(1 - r["pss_mib"] / base["pss_mib"], 3)})
    return out


def markdown(machine, rows, base, arith_rows, target, seq_len, gflops):
    lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine['date']}); batch 1, max length "
             f"{machine['max_length']}, 1 thread; {machine['queries']} dev queries, medians of {machine['repeats']} passes "
             f"and of {machine['repeats']} fresh processes for memory. Ratios against {base['stage']} on "
             f"{label(base)}.", "",
             "| model | backend | accuracy | end-to-end p50 ms (x) | of which tokenizer ms | runtime alone ms | p90 ms "
             "| PSS MiB | RSS MiB | peak RSS MiB | size MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    stacks = {r["env"]: f"{r['env']}: CPython {r['python']}, Paddle {r['paddle']}, ONNX Runtime {r['onnxruntime']}"
              for r in rows if "env" in r}
    if len(stacks) > 1:
        lines[0:0] = ["Environments: " + "; ".join(stacks[k] for k in sorted(stacks)) + ".", ""]
    for r in rows:
        if "p50_ms" not in r:
            why = r.get("refused") or r.get("error", "")
            lines.append(f"| {r['stage']} | {label(r)} | refused or failed: {' '.join(why.split())[:110]} "
                         f"| | | | | | | | {r['size_mib']} |")
            continue
        lines.append(
            f"| {r['stage']} | {label(r)} | {r['accuracy']:.2f} ({r['accuracy'] - base['accuracy']:+.2f}) | "
            f"{r['p50_ms']:.3f} ({base['p50_ms'] / r['p50_ms']:.2f}x) | {r['tokenizer_ms']:.3f} | "
            f"{r['runtime_ms']:.3f} | {r['p90_ms']:.3f} | {r['pss_mib']:.1f} "
            f"({100 * (r['pss_mib'] / base['pss_mib'] - 1):+.1f}%) | {r['rss_mib']:.1f} | {r['peak_rss_mib']:.1f} | "
            f"{r['size_mib']}{' (onnx %.2f)' % r['onnx_mib'] if 'onnx_mib' in r else ''} |")
    done = [r for r in rows if "p50_ms" in r]
    lines += ["", "Deployment summary: the smallest model each backend runs (size of the Paddle files; of the .onnx "
              "file for the C++ demo).", "",
              "| backend | smallest model it runs | size MiB | accuracy | end-to-end speed-up | PSS MiB (cut) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {d['backend']} | {d['stage']} | {d['size_mib']} | {d['accuracy']:.2f} | {d['speedup']:.2f}x | "
              f"{d['pss_mib']:.1f} ({100 * d['memory_cut']:.1f}%) |" for d in deployment_summary(done, base)]
    lines += ["", "| model | backend | batch 32, 2 threads: queries/s | Python tokenizer ms | fast tokenizer ms |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['stage']} | {label(r)} | {r['batch32_2threads_qps']} | "
              f"{r['python_tokenizer_ms']:.3f} | {r['fast_tokenizer_ms']:.3f} |" if "python_tokenizer_ms" in r else
              f"| {r['stage']} | {label(r)} | {r['batch32_2threads_qps']} | (C++ tokenizer, in the main table) | |"
              for r in done]
    lines += ["", "Paddle Lite's Python API has no thread setting: its batch-32 row runs on its default.", "",
              f"Arithmetic limit at the median tokenized length of the timed queries ({seq_len} tokens with "
              f"[CLS]/[SEP]); one core's float32 peak, numpy matmul 1024x1024 on 1 thread: {gflops:.1f} GFLOP/s.", "",
              "| model | multiply-adds | time at peak ms | fastest runtime alone ms (backend) | x the limit |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['stage']} | {r['macs'] / 1e6:.1f} M | {r['limit_ms']:.3f} | {r['runtime_ms']:.3f} "
              f"({r['best_backend']}) | {r['times_limit']:.2f} |" for r in arith_rows]
    lines += ["", f"Targets (upstream's phone ratios): at least {TARGET_SPEEDUP}x faster end to end and "
              f"{100 * TARGET_MEMORY_CUT:.0f}% less memory (PSS) within {TARGET_ACCURACY_DROP} accuracy points. "
              + (f"Met by {len(target['meeting'])} rows ({'; '.join(target['meeting'])}); the fastest of them: "
                 if target["met"] else "NOT met by any row; the fastest within the accuracy bound: ")
              + f"{target['stage']} on {target['backend']}: {target['speedup']:.2f}x, "
              f"{100 * target['memory_cut']:.1f}% less PSS, accuracy {target['accuracy_change']:+.2f}."]
    return lines


def plot(path, done, max_length):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for backend in sorted({label(r) for r in done}):
        rs = [r for r in done if label(r) == backend]
        for ax, key in zip(axes, ("p50_ms", "pss_mib")):
            ax.plot([r["size_mib"] for r in rs], [r[key] for r in rs], "o-", label=backend)
            for r in rs:
                ax.annotate(SHORT[r["stage"]], (r["size_mib"], r[key]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
    for ax, y in zip(axes, ("end-to-end p50 latency (ms)", "PSS (MiB)")):
        ax.set_xlabel("model size (MiB)")
        ax.set_ylabel(y)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"batch 1, max length {max_length}, 1 thread")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fine_tuned", required=True, help="exported directory with infer_model.*")
    ap.add_argument("--compressed", help="compress.py's width directory with pruned/int8/quant_emb (needed unless "
                                         "--stages is infer_model alone)")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS), choices=BACKENDS)
    ap.add_argument("--stacks", nargs="+", default=["default"], choices=STACKS,
                    help="the environments the Python backends run in, one row each (default: the default one)")
    ap.add_argument("--tokenizers", nargs="+", default=["python", "fast"], choices=["python", "fast"],
                    help="the tokenizers the Python backends run with, one row each")
    ap.add_argument("--stages", nargs="+", default=[s[2] for s in STAGES], choices=[s[2] for s in STAGES])
    ap.add_argument("--cpp_demo", default=CPP_DEMO, help="the C++ demo binary (built when missing)")
    ap.add_argument("--name", default="latency")
    ap.add_argument("--out_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--memory_only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--use_fast", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.queries < 1 or a.repeats < 1:
        ap.error("--queries and --repeats must be at least 1")
    if a.child:
        print("RESULT " + json.dumps(measure(*a.child, a.dev, a.queries, a.repeats, a.memory_only, a.use_fast)))
        return
    if a.compressed is None and set(a.stages) - {"infer_model"}:
        ap.error("--compressed is needed for the stages " + ", ".join(sorted(set(a.stages) - {"infer_model"})))
    for d, flag in ((a.fine_tuned, "--fine_tuned"), (a.compressed, "--compressed")):
        if d is not None and not os.path.isdir(d):
            ap.error(f"{flag}: no such directory: {d}")
    if not os.path.isfile(a.dev):
        ap.error(f"--dev: data file not found: {a.dev}")
    import tempfile

    from slu.backends import refusal
    from tqdm import tqdm

    import arith  # benchmarks/arith.py, beside this script (pyarrow installs a package named "benchmarks")

    dirs = {"fine_tuned": a.fine_tuned, "compressed": a.compressed}
    stages = [s for s in STAGES if s[2] in a.stages]
    work = list(dict.fromkeys((s, b, "c++" if b == "cpp" else t, None if b == "cpp" else stack_python(b, stack))
                              for s in stages for b in a.backends for t in (["c++"] if b == "cpp" else a.tokenizers)
                              for stack in a.stacks))
    bar = tqdm(total=len(work) * a.repeats + 1, desc="benchmark", unit="run", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (stage, which, prefix), backend, tokenizer, python in work:
            d = dirs[which]
            row = {"stage": stage, "model": os.path.join(d, prefix), "backend": backend, "tokenizer": tokenizer}
            if len(a.stacks) > 1:
                row["stack"] = "C++" if python is None else os.path.basename(os.path.dirname(os.path.dirname(python)))
            bar.set_postfix_str(f"{stage} on {label(row)}")
            pdmodel = os.path.join(d, prefix + ".pdmodel")
            if not os.path.isfile(pdmodel):
                row["error"] = f"model file not found: {pdmodel}"
                rows.append(row)
                bar.update(a.repeats)
                continue
            row["size_mib"] = size_mib(d, prefix)
            ops = program.program_ops(pdmodel)
            why = refusal("onnx_runtime" if backend == "cpp" else backend, ops)
            n0 = bar.n
            if why:
                row["refused"] = why
            else:
                try:
                    if backend == "cpp":
                        row.update(cpp_row(a, d, prefix, lambda: bar.update(1), tmp))
                    else:
                        row.update(python_row(a, d, prefix, backend, tokenizer, lambda: bar.update(1), python))
                except (RuntimeError, ValueError, FileNotFoundError) as e:
                    row["error"] = str(e)
            bar.update(max(0, n0 + a.repeats - bar.n))
            rows.append(row)
        # the measured processes shared no Paddle pages with this one (it has not imported paddle so far)
        clean = not any(m.split(".")[0] in ("paddle", "paddlenlp") for m in sys.modules)
        for r in rows:
            if "_dev_outputs" in r:
                d = os.path.dirname(r["model"])
                examples = dev_examples(a.dev, d)
                try:
                    r["accuracy"] = round(100 * cpp_accuracy(r.pop("_dev_outputs"), examples, d)["accuracy"], 2)
                except RuntimeError as e:
                    for k in [k for k in r if k.endswith(("_ms", "_mib", "_qps"))]:
                        del r[k]
                    r["error"] = str(e)
        done = [r for r in rows if "p50_ms" in r]
        if not done:
            raise SystemExit("benchmarks/run.py: no stage ran: " + json.dumps(rows, ensure_ascii=False)[:3000])
        seq_len = median_seq_len(a.fine_tuned, a.dev, a.queries)
        gflops = arith.peak_gflops()
        bar.update(1)
    bar.close()
    base = next((r for r in done if r["stage"] == "fine-tuned" and r["backend"] == "paddle"
                 and r["tokenizer"] == a.tokenizers[0]), None)
    if base is None:
        base = done[0]
        print(f"benchmarks/run.py: no fine-tuned row on paddle: ratios are against {base['stage']} on "
              f"{label(base)}", file=sys.stderr)
    machine = {"cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" \t:"),
               "cores": os.cpu_count(), "queries": a.queries, "repeats": a.repeats,
               "date": time.strftime("%Y-%m-%d %H:%M"), "peak_gflops_1_thread": round(gflops, 2),
               "median_seq_len": seq_len, "parent_free_of_paddle_while_measuring": clean,
               "max_length": manifest.read(a.fine_tuned)["max_seq_length"]}
    arith_rows = arithmetic(rows, dirs, seq_len, gflops)
    target = targets(done, base)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, a.name + ".json"), "w") as f:
        json.dump({"machine": machine, "baseline": {"stage": base["stage"], "backend": label(base)},
                   "rows": rows, "arithmetic": arith_rows, "targets": target,
                   "deployment_summary": deployment_summary(done, base)}, f, indent=2, ensure_ascii=False)
    lines = markdown(machine, rows, base, arith_rows, target, seq_len, gflops)
    with open(os.path.join(a.out_dir, a.name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(os.path.join(a.out_dir, a.name + ".png"), done, machine["max_length"])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
