"""ONNX Runtime's session options on the C++ demo, in instructions: for each model file and each setting, the
instructions per query that Session::Run executes, counted by callgrind, and the ratio to ONNX Runtime's defaults.

    .venv/bin/python benchmarks/ort_options.py --model_dir work/nano_avg2_compress/width_mult_0.75 \\
        --dev work/nlpcc_sessions/dev.txt [--models pruned int8 quant_emb] [--settings default disable ...] \\
        [--queries 200] [--transformers_optimizer] [--name ort_options]

Each (model, setting) is one `valgrind --tool=callgrind --instr-atstart=no slu_bench --repeat 2 ...` over the
first --queries dev queries, batch 1, 1 intra-op thread. slu_bench switches callgrind's instrumentation on for each
timed Session::Run call alone (deploy/cpp/bench.cc), so the totals line of callgrind's output counts ONNX Runtime
running the model, on every thread, for one pass over the queries; the warm-up pass, the tokenizer and the decoding
are not counted. Instructions, not times: the machine these runs were made for is shared and loaded, and counts
repeat where times do not; they do not see cache misses or memory stalls. A setting that fails is kept with its
one-line error. The graph levels (default = all, disable, basic, extended) also write the optimized graph once
(slu_bench --optimized_model_file, outside valgrind) and the table lists its nodes by type.

--models takes names in --model_dir (NAME.onnx) or paths to .onnx files. --transformers_optimizer adds
"pruned+transformers": the pruned model after ONNX Runtime's transformers optimizer (model_type bert: Attention,
SkipLayerNormalization, BiasGelu), with paddle2onnx's attention mask and score scaling first rewritten into the
form the attention fusion matches (same values); it runs the default setting only.

Writes benchmarks/results/<name>.json and .md.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from slu import data, manifest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLU_BENCH = os.path.join(ROOT, "deploy", "cpp", "build", "slu_bench")
INFER_DEMO = os.path.join(ROOT, "deploy", "cpp", "build", "infer_demo")
FETCH_ORT = os.path.join(ROOT, "deploy", "cpp", "fetch_onnxruntime.sh")  # prints the cached ONNX Runtime directory

SPIN_OFF = ["--session_config", "session.intra_op.allow_spinning=0",
            "--session_config", "session.inter_op.allow_spinning=0"]
SETTINGS = {  # name: (what it is, slu_bench flags); "default" is ONNX Runtime's own defaults, what the demo runs
    "default": ("ONNX Runtime's defaults: graph optimization all, sequential, memory pattern, CPU arena, "
                "prepacking on", []),
    "disable": ("graph optimization disabled", ["--graph_optimization", "disable"]),
    "basic": ("graph optimization basic", ["--graph_optimization", "basic"]),
    "extended": ("graph optimization extended", ["--graph_optimization", "extended"]),
    "parallel": ("parallel execution mode, 2 inter-op threads",
                 ["--execution_mode", "parallel", "--inter_op_threads", "2"]),
    "parallel_spinning_off": ("parallel, 2 inter-op threads, no spinning",
                              ["--execution_mode", "parallel", "--inter_op_threads", "2"] + SPIN_OFF),
    "mem_pattern_off": ("memory pattern off", ["--mem_pattern", "off"]),
    "cpu_arena_off": ("CPU memory arena off", ["--cpu_arena", "off"]),
    "prepacking_off": ("weight prepacking off (session.disable_prepacking=1)",
                       ["--session_config", "session.disable_prepacking=1"]),
    "spinning_off": ("thread pool spinning off (intra- and inter-op)", SPIN_OFF),
}
GRAPH_LEVELS = {"default": "all", "disable": "disable", "basic": "basic", "extended": "extended"}
OP_COLUMNS = ("MatMul", "FusedMatMul", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm", "QuantizeLinear",
              "DequantizeLinear", "LayerNormalization", "SkipLayerNormalization", "BiasGelu", "Gelu", "Attention")
TRANSFORMERS = "pruned+transformers"


# ---- reading callgrind and slu_bench ------------------------------------------------------------------------------

def callgrind_total(text):
    """The first event (Ir: instructions) of the `totals:` line of a callgrind output file."""
    for line in text.splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise ValueError("no totals line in the callgrind output")


def one_line_error(stderr, returncode):
    """What a failed slu_bench said: its last `slu_bench: ...` line, valgrind's `==pid==` lines left out."""
    lines = [x.strip() for x in stderr.splitlines() if x.strip() and not re.match(r"==\d+==", x)]
    said = [x for x in lines if x.startswith("slu_bench:")]
    return (said or lines or [f"exit status {returncode}"])[-1]


def per_query_rows(runs, queries):
    """Rows with instructions per query and the ratio to the same model's default setting; a failed run keeps its
    error and has neither."""
    default = {r["model"]: r["instructions"] for r in runs if r["setting"] == "default" and "instructions" in r}
    rows = []
    for r in runs:
        row = dict(r)
        if "instructions" in r:
            row["instructions_per_query"] = round(r["instructions"] / queries)
            base = default.get(r["model"])
            row["ratio_to_default"] = round(r["instructions"] / base, 3) if base else None
        rows.append(row)
    return rows


# ---- running ------------------------------------------------------------------------------------------------------

def bench_args(model_dir, model_file, queries_file, flags):
    return [SLU_BENCH, "--model_dir", model_dir, "--model_file", model_file, "--input_file", queries_file,
            "--repeat", "2", *flags]


def count(model_dir, model_file, queries_file, flags, tmp):
    """One slu_bench run under callgrind: {"instructions": N} or {"error": one line}."""
    out = os.path.join(tmp, "callgrind.out")
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                        *bench_args(model_dir, model_file, queries_file, flags)], capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": one_line_error(p.stderr, p.returncode)}
    with open(out) as f:
        return {"instructions": callgrind_total(f.read())}


def optimized_graph(model_dir, model_file, level, tmp):
    """The node types of the graph ONNX Runtime runs at a graph optimization level (slu_bench writes it with
    --optimized_model_file on one query, outside valgrind): {"nodes": N, "ops": {type: count}} or {"error": ...}."""
    import onnx

    out = os.path.join(tmp, f"optimized_{level}.onnx")
    qfile = os.path.join(tmp, "one_query.txt")
    data.write_lines(qfile, ["你好"])
    p = subprocess.run(bench_args(model_dir, model_file, qfile, ["--graph_optimization", level,
                                                                 "--optimized_model_file", out]),
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": one_line_error(p.stderr, p.returncode)}
    ops = collections.Counter(n.op_type for n in onnx.load(out).graph.node)
    return {"nodes": sum(ops.values()), "ops": dict(ops.most_common())}


def model_files(model_dir, names):
    """(label, path) of each --models entry: NAME.onnx in model_dir, or a path to an .onnx file."""
    files = []
    for name in names:
        path = name if name.endswith(".onnx") else os.path.join(model_dir, name + ".onnx")
        if not os.path.isfile(path):
            raise SystemExit(f"benchmarks/ort_options.py: error: --models: no such model file: {path}")
        files.append((os.path.splitext(os.path.basename(path))[0] if name.endswith(".onnx") else name, path))
    return files


def same_answers(model_dir, model_a, model_b, queries_file):
    """infer_demo --dump_ids with two model files on the same queries: how many answers agree (ids, intent, slots)
    and the largest confidence difference."""
    def answers(model_file):
        p = subprocess.run([INFER_DEMO, "--model_dir", model_dir, "--model_file", model_file, "--input_file",
                            queries_file, "--dump_ids"], capture_output=True, text=True, check=True)
        return [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]

    a, b = answers(model_a), answers(model_b)
    keys = ("query", "ids", "intent", "slot", "slot_ids")
    return {"queries": len(a), "same": sum(len(a) == len(b) and all(x[k] == y[k] for k in keys) for x, y in zip(a, b)),
            "max_confidence_difference": max((abs(x["confidence"] - y["confidence"]) for x, y in zip(a, b)),
                                             default=0.0)}


# ---- ONNX Runtime's transformers optimizer ------------------------------------------------------------------------

def constants_to_initializers(graph):
    """paddle2onnx writes weights as Constant nodes; the transformers optimizer looks for initializers."""
    import onnx

    for node in [n for n in graph.node if n.op_type == "Constant"]:
        tensor = onnx.helper.get_attribute_value(node.attribute[0])
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)


def bert_mask(graph):
    """paddle2onnx's mask, Unsqueeze(Mul(Cast(Equal(ids, pad)), -10000)), as BERT writes it and the attention fusion
    matches: Mul(Sub(1, Cast(Unsqueeze(Unsqueeze(Cast(Not(Equal(ids, pad))))))), -10000), the same values."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    equal = next(n for n in graph.node if n.op_type == "Equal")
    cast = next(n for n in graph.node if n.op_type == "Cast" and n.input[0] == equal.output[0])
    mul = next(n for n in graph.node if n.op_type == "Mul" and n.input[0] == cast.output[0])
    unsqueeze = next(n for n in graph.node if n.op_type == "Unsqueeze" and n.input[0] == mul.output[0])
    for n in (cast, mul, unsqueeze):
        graph.node.remove(n)
    graph.initializer.extend(numpy_helper.from_array(np.array(v, dtype=t), name) for name, v, t in (
        ("mask_axis1", [1], np.int64), ("mask_axis2", [2], np.int64), ("mask_one", 1.0, np.float32),
        ("mask_filter", -10000.0, np.float32)))
    new = [helper.make_node("Not", [equal.output[0]], ["mask_keep"]),
           helper.make_node("Cast", ["mask_keep"], ["mask_int"], to=TensorProto.INT32),
           helper.make_node("Unsqueeze", ["mask_int", "mask_axis1"], ["mask_u1"]),
           helper.make_node("Unsqueeze", ["mask_u1", "mask_axis2"], ["mask_u2"]),
           helper.make_node("Cast", ["mask_u2"], ["mask_float"], to=TensorProto.FLOAT),
           helper.make_node("Sub", ["mask_one", "mask_float"], ["mask_masked"]),
           helper.make_node("Mul", ["mask_masked", "mask_filter"], [unsqueeze.output[0]])]
    at = list(graph.node).index(equal) + 1
    for k, n in enumerate(new):
        graph.node.insert(at + k, n)


def scale_after_scores(graph):
    """paddle2onnx scales the queries before Q.K^T (MatMul(Mul(q, c), k)); the attention fusion matches the scores
    divided after it (Div(MatMul(q, k), 1/c)). Returns how many attention blocks were rewritten."""
    import numpy as np
    from onnx import numpy_helper

    producer = {o: n for n in graph.node for o in n.output}
    users = collections.Counter(i for n in graph.node for i in n.input)
    init = {i.name: i for i in graph.initializer}
    moved = 0
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        add = producer[softmax.input[0]]
        matmul = producer[add.input[0]]
        scale = producer.get(matmul.input[0])
        if scale is None or scale.op_type != "Mul" or users[scale.output[0]] != 1 or scale.input[1] not in init:
            continue
        c = numpy_helper.to_array(init[scale.input[1]])
        graph.initializer.append(numpy_helper.from_array(np.array(1.0 / c, dtype=np.float32), scale.input[1] + "_inv"))
        matmul.input[0] = scale.input[0]
        scale.op_type, scale.input[0], scale.input[1] = "Div", matmul.output[0], scale.input[1] + "_inv"
        scale.output[0] = matmul.output[0] + "_scaled"
        add.input[0] = scale.output[0]
        graph.node.remove(scale)
        graph.node.insert(list(graph.node).index(matmul) + 1, scale)
        moved += 1
    return moved


def transformers_optimized(pruned, out):
    """The pruned model after the rewrites above and ONNX Runtime's transformers optimizer (model_type bert, heads
    and hidden size read from the graph, opt_level 0: the session applies its own levels); the fused operators."""
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    model = onnx.load(pruned)
    constants_to_initializers(model.graph)
    bert_mask(model.graph)
    scale_after_scores(model.graph)
    rewritten = out + ".rewritten.onnx"
    onnx.save(model, rewritten)
    optimized = optimize_model(rewritten, model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
    optimized.save_model_to_file(out)
    return {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}


# ---- the report ---------------------------------------------------------------------------------------------------

def cell(row):
    if "error" in row:
        return f"failed: {row['error']}"
    ratio = row["ratio_to_default"]
    return f"{row['instructions_per_query'] / 1e6:.2f} M ({ratio:.3f})" if ratio is not None else \
        f"{row['instructions_per_query'] / 1e6:.2f} M"


def markdown(machine, rows, graphs, transformers):
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["setting"]): r for r in rows}
    load = ", ".join(f"{x:.2f}" for x in machine["load_average_at_end"])
    lines = [f"Instructions per query of Session::Run (callgrind, valgrind {machine['valgrind']}), ONNX Runtime "
             f"{machine['onnxruntime']} C++ (slu_bench), batch 1, 1 intra-op thread, {machine['queries']} dev queries, "
             f"one pass after a warm-up; in brackets the ratio to the same model's default. Instruction counts, not "
             f"times: the machine ({machine['cpu']}, {machine['cores']} cores) was shared and loaded (load average "
             f"at the end: {load}); counts repeat, times there do not. They do not see cache misses or memory "
             "stalls.", "",
             "| setting | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    for name in dict.fromkeys(r["setting"] for r in rows):
        lines.append(f"| {name}: {SETTINGS[name][0]} | " +
                     " | ".join(cell(by[m, name]) if (m, name) in by else "" for m in models) + " |")
    lines += ["", "Nodes of the graph ONNX Runtime runs (--optimized_model_file), by type:", "",
              "| model | level | nodes | " + " | ".join(OP_COLUMNS) + " |", "|---" * (len(OP_COLUMNS) + 3) + "|"]
    for (model, level), g in graphs.items():
        if "error" in g:
            lines.append(f"| {model} | {level} | failed: {g['error']} |" + " |" * len(OP_COLUMNS))
        else:
            lines.append(f"| {model} | {level} | {g['nodes']} | " +
                         " | ".join(str(g["ops"].get(op, 0)) for op in OP_COLUMNS) + " |")
    if transformers:
        same = transformers["answers_against_pruned"]
        lines += ["", f"{TRANSFORMERS}: the pruned model after ONNX Runtime's transformers optimizer, which fused " +
                  ", ".join(f"{k} {v}" for k, v in transformers["fused"].items()) +
                  f"; on the {same['queries']} queries its answers (ids, intent, slots) equal the pruned model's in "
                  f"{same['same']}, confidences within {same['max_confidence_difference']:.1e}."]
    return lines


def machine_info(queries):
    ort_lib = subprocess.run(["bash", FETCH_ORT], capture_output=True, text=True).stdout.strip().split("\n")[-1] + "/lib"
    versions = [os.path.basename(p)[len("libonnxruntime.so."):] for p in glob.glob(ort_lib + "/libonnxruntime.so.*.*")]
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(" \t:"),
            "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(), "queries": queries,
            "onnxruntime": max(versions, default="?"), "valgrind": valgrind.replace("valgrind-", ""),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def measure_all(a, files, queries, tmp):
    """Every (model, setting) under callgrind, and the optimized graph of each graph level; with
    --transformers_optimizer, the pruned model after the transformers optimizer too, its answers checked first."""
    qfile = os.path.join(tmp, "queries.txt")
    data.write_lines(qfile, queries)
    jobs = [(label, path, s) for label, path in files for s in a.settings]
    transformers = {}
    if a.transformers_optimizer:
        pruned, optimized = os.path.join(a.model_dir, "pruned.onnx"), os.path.join(tmp, TRANSFORMERS + ".onnx")
        transformers = {"fused": transformers_optimized(pruned, optimized),
                        "answers_against_pruned": same_answers(a.model_dir, pruned, optimized, qfile)}
        jobs.append((TRANSFORMERS, optimized, "default"))
    runs, graphs = [], {}
    for k, (label, path, setting) in enumerate(jobs, 1):
        print(f"[{k}/{len(jobs)}] {label} {setting}", file=sys.stderr, flush=True)
        runs.append({"model": label, "model_file": path if label != TRANSFORMERS else "(made in a temporary directory)",
                     "setting": setting, "flags": SETTINGS[setting][1],
                     **count(a.model_dir, path, qfile, SETTINGS[setting][1], tmp)})
        if setting in GRAPH_LEVELS:
            graphs[label, GRAPH_LEVELS[setting]] = optimized_graph(a.model_dir, path, GRAPH_LEVELS[setting], tmp)
    return runs, graphs, transformers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True, help="a directory with deploy_config.json and the .onnx files")
    ap.add_argument("--dev", required=True, help="a corpus file; its first --queries queries are run")
    ap.add_argument("--models", nargs="+", default=["pruned", "int8", "quant_emb"],
                    help="NAME (NAME.onnx in --model_dir) or a path to an .onnx file")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--transformers_optimizer", action="store_true",
                    help="add the pruned model after ONNX Runtime's transformers optimizer (default setting)")
    ap.add_argument("--name", default="ort_options")
    ap.add_argument("--out_dir", default=os.path.join(ROOT, "benchmarks", "results"))
    a = ap.parse_args()
    if a.queries < 1:
        ap.error("--queries must be at least 1")
    if not os.path.isfile(SLU_BENCH):
        ap.error(f"no {SLU_BENCH}: build it with deploy/cpp/build.sh")
    files = model_files(a.model_dir, a.models)
    queries = [e["query"] for e in data.read_examples(a.dev, manifest.labels(a.model_dir))][:a.queries]
    with tempfile.TemporaryDirectory(prefix="ort_options_") as tmp:
        runs, graphs, transformers = measure_all(a, files, queries, tmp)
    rows = per_query_rows(runs, len(queries))
    machine = machine_info(len(queries))
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, a.name + ".json"), "w") as f:
        json.dump({"machine": machine, "rows": rows, "transformers_optimizer": transformers,
                   "graphs": [{"model": m, "level": lv, **g} for (m, lv), g in graphs.items()]}, f, indent=2)
    lines = markdown(machine, rows, graphs, transformers)
    with open(os.path.join(a.out_dir, a.name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
