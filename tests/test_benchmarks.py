"""benchmarks/: multiply-add counting against the architecture's closed form, and benchmarks/run.py end to end on a
small trained and compressed model (every stage, Paddle Inference and the C++ demo): rows, refusals, accuracy
against run_eval.py, ratios, targets, files. No timing is asserted."""
import json
import os
import re
import shutil
import statistics
import subprocess

import pytest

from conftest import ROOT, run_py
from helpers import missing_prerequisite, script_module


def closed_form_macs(config, seq_len, n_intents, n_slots):
    """ERNIE's multiply-adds at batch 1 worked out from the architecture (not from the program): per layer
    Q, K, V and the output projection, QK^T and attention x V per head, the two FFN matmuls; then the pooler and
    intent head on [CLS] and the slot head on every token. A DynaBERT width w keeps int(heads * w) heads and
    int(intermediate * w) FFN units."""
    h, L = config["hidden_size"], seq_len
    w = config.get("width_mult", 1.0)
    head_dim = h // config["num_attention_heads"]
    heads = int(config["num_attention_heads"] * w)
    inner, ffn = heads * head_dim, int(config["intermediate_size"] * w)
    per_layer = 3 * L * h * inner + L * inner * h + 2 * heads * L * L * head_dim + 2 * L * h * ffn
    return config["num_hidden_layers"] * per_layer + h * h + h * n_intents + L * h * n_slots


@pytest.mark.parametrize("which", ["infer_model", "pruned", "int8"])
def test_program_macs_equal_the_architecture_count(trained_pico, compressed, which):
    arith = script_module("benchmarks/arith.py")
    from slu import manifest

    d = trained_pico if which == "infer_model" else compressed / "width_mult_0.5"
    config = json.load(open(d / "config.json"))
    assert config.get("width_mult", 1.0) == (1.0 if which == "infer_model" else 0.5)
    labels = manifest.labels(str(d))
    for seq_len in (3, 11, 16):
        expected = closed_form_macs(config, seq_len, len(labels.intents), len(labels.slots))
        assert arith.program_macs(str(d / f"{which}.pdmodel"), seq_len) == expected, seq_len


def test_limit_ms_is_two_flops_per_multiply_add():
    arith = script_module("benchmarks/arith.py")

    # 1e9 multiply-adds = 2e9 FLOPs; at 4 GFLOP/s that is half a second
    assert arith.limit_ms(10 ** 9, 4.0) == pytest.approx(500.0)


@pytest.fixture(scope="module")
def bench(trained_pico, compressed, corpus_subset, tmp_path_factory):
    if not (shutil.which("g++") and shutil.which("cmake")):
        missing_prerequisite("no g++/cmake: the C++ demo backend of benchmarks/run.py cannot be built",
                             "bash scripts/system_packages.sh")
    out = tmp_path_factory.mktemp("bench")
    exe = out / "build" / "infer_demo"
    p = subprocess.run(["bash", os.path.join(ROOT, "deploy", "cpp", "build.sh")], capture_output=True, text=True,
                       env={**os.environ, "BUILD_DIR": str(out / "build")}, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    p = run_py(["benchmarks/run.py", "--fine_tuned", str(trained_pico), "--compressed",
                str(compressed / "width_mult_0.5"), "--dev", str(corpus_subset / "dev.txt"), "--queries", "12",
                "--repeats", "2", "--backends", "paddle", "cpp", "--tokenizers", "python", "fast", "--cpp_demo", str(exe), "--name", "t",
                "--out_dir", str(out)])
    return json.load(open(out / "t.json")), open(out / "t.md").read(), p.stderr, out


def test_every_stage_and_backend_has_a_row_or_a_reason(bench):
    res, _, stderr, out = bench
    rows = {(r["stage"], r["backend"], r["tokenizer"]): r for r in res["rows"]}
    stages = ["fine-tuned", "+ pruning", "+ INT8 matmul", "+ INT8 embeddings"]
    assert list(rows) == [(s, b, t) for s in stages for b, t in (("paddle", "python"), ("paddle", "fast"),
                                                                  ("cpp", "c++"))]
    keys = {"accuracy", "p50_ms", "p90_ms", "tokenizer_ms", "runtime_ms", "pss_mib", "rss_mib", "peak_rss_mib",
            "batch32_2threads_qps", "size_mib"}
    for k, r in rows.items():  # every stage runs on both (INT8 embeddings on C++: ONNX Runtime's INT8 model)
        assert keys <= set(r), (k, r)
        assert r["p50_ms"] <= r["p90_ms"] and r["tokenizer_ms"] > 0 and r["runtime_ms"] > 0, k
        assert 0 < r["pss_mib"] <= r["rss_mib"] * 1.01 and r["rss_mib"] <= r["peak_rss_mib"] * 1.01, k
        assert "python_tokenizer_ms" in r if k[1] == "paddle" else "onnx_mib" in r
    # sizes are the Paddle files of each stage
    w = rows[("+ pruning", "paddle", "python")]["model"]
    assert rows[("+ pruning", "paddle", "fast")]["size_mib"] == round(
        (os.path.getsize(w + ".pdmodel") + os.path.getsize(w + ".pdiparams")) / 2 ** 20, 2)
    # the C++ INT8-embedding model is ONNX Runtime's quantization of the pruned model, smaller than its FP32 ONNX
    assert rows[("+ INT8 embeddings", "cpp", "c++")]["onnx_mib"] < rows[("+ pruning", "cpp", "c++")]["onnx_mib"]
    # the progress bar counted every run: 12 rows x 2 repeats + the peak measurement
    assert "25/25" in stderr
    assert open(out / "t.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("stage,prefix", [("fine-tuned", "infer_model"), ("+ pruning", "pruned")])
def test_accuracy_of_both_backends_equals_run_eval(bench, trained_pico, compressed, corpus_subset, stage, prefix):
    res = bench[0]
    d = trained_pico if prefix == "infer_model" else compressed / "width_mult_0.5"
    p = run_py(["run_eval.py", "--infer_prefix", str(d / prefix), "--test_path", str(corpus_subset / "dev.txt"),
                "--do_eval"])
    ref = round(100 * json.loads(p.stdout.strip().splitlines()[-1])["accuracy"], 2)
    got = {r["tokenizer"]: r["accuracy"] for r in res["rows"] if r["stage"] == stage}
    assert got == {"python": ref, "fast": ref, "c++": ref}


def test_arithmetic_rows_use_the_median_token_length(bench, trained_pico, compressed, corpus_subset):
    arith = script_module("benchmarks/arith.py")
    from slu import data

    from slu.predictor import fast_tokenizer_from_dir

    res = bench[0]
    queries = [q for _, q in data.read_queries(str(corpus_subset / "dev.txt"))][:12]
    ids, _, _ = fast_tokenizer_from_dir(str(trained_pico))(queries, 16)
    seq_len = statistics.median_low(len(i) for i in ids)
    assert res["machine"]["median_seq_len"] == seq_len
    by_stage = {r["stage"]: r for r in res["arithmetic"]}
    assert by_stage["fine-tuned"]["macs"] == arith.program_macs(str(trained_pico / "infer_model.pdmodel"), seq_len)
    assert by_stage["+ pruning"]["macs"] == arith.program_macs(
        str(compressed / "width_mult_0.5" / "pruned.pdmodel"), seq_len)
    gflops = res["machine"]["peak_gflops_1_thread"]
    for r in res["arithmetic"]:
        fastest = min((x for x in res["rows"] if x["stage"] == r["stage"] and "runtime_ms" in x),
                      key=lambda x: x["runtime_ms"])
        assert r["runtime_ms"] == fastest["runtime_ms"]
        assert r["best_backend"] == fastest["backend"] + (" + fast tokenizer" if fastest["tokenizer"] == "fast" else "")
        assert r["limit_ms"] == pytest.approx(2 * r["macs"] / (gflops * 1e9) * 1e3, rel=1e-2)


def test_markdown_ratios_and_targets(bench):
    res, md, _, _ = bench
    rows = [r for r in res["rows"] if "p50_ms" in r]
    base = next(r for r in rows if r["stage"] == "fine-tuned" and r["backend"] == "paddle" and r["tokenizer"] == "python")
    assert res["baseline"] == {"stage": "fine-tuned", "backend": "paddle"}
    for r in rows:
        name = r["backend"] + (" + fast tokenizer" if r["tokenizer"] == "fast" else "")
        line = next(x for x in md.splitlines() if x.startswith(f"| {r['stage']} | {name} | {r['accuracy']:.2f}"))
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[3] == f"{r['p50_ms']:.3f} ({base['p50_ms'] / r['p50_ms']:.2f}x)"
        pct = 100 * (r["pss_mib"] / base["pss_mib"] - 1)
        assert cells[7] == f"{r['pss_mib']:.1f} ({pct:+.1f}%)"
    # the targets: rows at least 2.13x faster with at least 62% less PSS and at most 0.3 points less accuracy;
    # the line names the fastest of them (or, when none, the fastest within the accuracy bound)
    def name(r):
        return r["backend"] + (" + fast tokenizer" if r["tokenizer"] == "fast" else "")

    meeting = [r for r in rows if base["p50_ms"] / r["p50_ms"] >= 2.13 and r["pss_mib"] <= 0.38 * base["pss_mib"]
               and r["accuracy"] >= base["accuracy"] - 0.3]
    t = res["targets"]
    assert t["met"] == bool(meeting)
    assert sorted(t["meeting"]) == sorted(f"{r['stage']} on {name(r)}" for r in meeting)
    pool = meeting or [r for r in rows if r["accuracy"] >= base["accuracy"] - 0.3]
    best = min(pool, key=lambda r: r["p50_ms"])
    assert (t["stage"], t["backend"]) == (best["stage"], name(best))
    speedup = base["p50_ms"] / best["p50_ms"]
    assert re.search(rf"{re.escape(best['stage'])} on {re.escape(name(best))}: {speedup:.2f}x", md)
    # the measured processes shared no Paddle pages with the benchmark's own process
    assert res["machine"]["parent_free_of_paddle_while_measuring"] is True


def test_bad_arguments_are_named(trained_pico, corpus_subset, tmp_path):
    p = run_py(["benchmarks/run.py", "--fine_tuned", str(trained_pico), "--compressed", str(tmp_path / "nope"),
                "--dev", str(corpus_subset / "dev.txt")], check=False)
    assert p.returncode == 2 and f"--compressed: no such directory: {tmp_path / 'nope'}" in p.stderr
    p = run_py(["benchmarks/run.py", "--fine_tuned", str(trained_pico), "--compressed", str(trained_pico),
                "--dev", str(tmp_path / "dev.txt")], check=False)
    assert p.returncode == 2 and f"--dev: data file not found: {tmp_path / 'dev.txt'}" in p.stderr


def test_train_throughput_appends_a_record(pico_dir, corpus_subset, tmp_path):
    out = tmp_path / "tt.json"
    args = ["benchmarks/train_throughput.py", "--model_dir", str(pico_dir), "--train", str(corpus_subset / "train.txt"),
            "--batch_size", "8", "--steps", "2", "--out", str(out)]
    run_py(args + ["--pad_to", "16"])
    run_py(args)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 2
    assert (recs[0]["batch_size"], recs[0]["steps"], recs[0]["pad_to"]) == (8, 2, 16)
    assert recs[0]["tokens_per_batch"] == 8 * 16  # every batch padded to 16
    assert recs[1]["pad_to"] == "longest" and recs[1]["tokens_per_batch"] <= 8 * 16
    for r in recs:
        assert r["samples_per_second"] > 0 and r["samples_per_second_median_step"] == pytest.approx(
            8 / r["median_step_s"], rel=0.02)
    p = run_py(args + ["--pad_to", "8"], check=False)
    assert p.returncode == 2 and "--pad_to 8: queries are cut at 16 tokens" in p.stderr


def test_server_benchmark_reports_each_backend(trained_pico, corpus_subset, tmp_path):
    """benchmarks/server.py: a server per backend under concurrent clients, every answer checked against its
    single-request answer; the report's rows (no timing asserted)."""
    run_py(["benchmarks/server.py", "--model_dir", str(trained_pico), "--texts", str(corpus_subset / "dev.txt"),
            "--backends", "onnx_runtime", "paddle_lite", "--clients", "8", "--seconds", "2", "--name", "t",
            "--out_dir", str(tmp_path)])
    res = json.load(open(tmp_path / "t_server.json"))
    assert [r["backend"] for r in res["rows"]] == ["onnx_runtime", "paddle_lite"]
    for r in res["rows"]:
        assert "error" not in r, r
        assert r["answered"] > 0 and r["errors"] == 0 and r["mismatches"] == 0 and r["server_mean_batch"] >= 1
    assert (tmp_path / "t_server.md").read_text().count("\n| ") == 3  # header, rule, 2 backends


def test_deployment_summary_names_each_backends_smallest_model(bench):
    res = bench[0]
    done = [r for r in res["rows"] if "p50_ms" in r]
    base = next(r for r in done if (r["stage"], r["backend"], r["tokenizer"]) == ("fine-tuned", "paddle", "python"))
    summary = {d["backend"]: d for d in res["deployment_summary"]}
    assert set(summary) == {"paddle", "paddle + fast tokenizer", "cpp"}
    for name, d in summary.items():
        rows = [r for r in done if r["backend"] + (" + fast tokenizer" if r["tokenizer"] == "fast" else "") == name]
        sizes = {r["stage"]: r.get("onnx_mib", r["size_mib"]) for r in rows}
        assert d["stage"] == min(sizes, key=sizes.get) and d["size_mib"] == min(sizes.values())
        row = next(r for r in rows if r["stage"] == d["stage"])
        assert d["speedup"] == round(base["p50_ms"] / row["p50_ms"], 2) and d["pss_mib"] == row["pss_mib"]
    assert "Deployment summary" in bench[1]


CALLGRIND_OUT = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  slu_bench --model_dir m --model_file m/pruned.onnx --input_file q.txt --repeat 2
part: 1

desc: I1 cache:
desc: Timerange: Basic block 0 - 1000
desc: Trigger: Program termination

positions: line
events: Ir
summary: 0


ob=(1) /opt/onnxruntime/lib/libonnxruntime.so.1.21.0
fl=(1) ???
fn=(1) MlasSgemmKernelFma3
0 1500000
cfn=(2) MlasSgemmCopyPackB
calls=4 0
0 250000

totals: 2600000
"""


def test_ort_options_reads_callgrind_totals_and_takes_ratios_to_the_default():
    """benchmarks/ort_options.py's pure parts on hand-written input: the totals line of a callgrind output,
    slu_bench's one-line error among valgrind's lines, instructions per query and the ratio to the same model's
    default setting, a failed setting kept with its error."""
    ort = script_module("benchmarks/ort_options.py")

    assert ort.callgrind_total(CALLGRIND_OUT) == 2_600_000  # totals, not summary (0) nor a cost line
    with pytest.raises(ValueError, match="no totals line"):
        ort.callgrind_total(CALLGRIND_OUT.split("totals:")[0])
    stderr = ("==4242== Callgrind, a call-graph generating cache profiler\n==4242== Command: slu_bench ...\n"
              "slu_bench: error: model file not found: m/none.onnx\n==4242== \n==4242== Events    : Ir\n")
    assert ort.one_line_error(stderr, 1) == "slu_bench: error: model file not found: m/none.onnx"
    assert ort.one_line_error("==7== Events    : Ir\n\n", 134) == "exit status 134"
    runs = [{"model": "pruned", "setting": "default", "instructions": 2_000_000},
            {"model": "pruned", "setting": "disable", "instructions": 2_600_000},
            {"model": "pruned", "setting": "basic", "error": "slu_bench: error: bad model"},
            {"model": "quant_emb", "setting": "disable", "instructions": 1_000_003}]
    rows = ort.per_query_rows(runs, 4)
    # 2,000,000 / 4 queries = 500,000 per query; 2,600,000 / 2,000,000 = 1.3; 1,000,003 / 4 = 250,000.75 -> 250,001
    assert [(r.get("instructions_per_query"), r.get("ratio_to_default")) for r in rows] == \
        [(500_000, 1.0), (650_000, 1.3), (None, None), (250_001, None)]
    assert rows[2]["error"] == "slu_bench: error: bad model" and "instructions_per_query" not in rows[2]
    assert [ort.cell(r) for r in rows] == ["0.50 M (1.000)", "0.65 M (1.300)", "failed: slu_bench: error: bad model",
                                           "0.25 M"]
    machine = {"valgrind": "3.19.0", "onnxruntime": "1.21.0", "queries": 4, "cpu": "x", "cores": 2,
               "load_average_at_end": (1.0, 1.0, 1.0)}
    md = ort.markdown(machine, rows, {("pruned", "all"): {"nodes": 3, "ops": {"MatMul": 2, "Attention": 1}},
                                      ("pruned", "basic"): {"error": "slu_bench: error: bad model"}}, {})
    assert "| setting | pruned | quant_emb |" in md
    assert f"| disable: {ort.SETTINGS['disable'][0]} | 0.65 M (1.300) | 0.25 M |" in md
    assert f"| basic: {ort.SETTINGS['basic'][0]} | failed: slu_bench: error: bad model |  |" in md
    assert "| pruned | all | 3 | 2 | " + " | ".join(["0"] * (len(ort.OP_COLUMNS) - 2)) + " | 1 |" in md


def test_both_stacks_side_by_side_in_one_run(trained_pico, corpus_subset, tmp_path):
    """--stacks default legacy: each Python backend once per environment, on that environment's Paddle and ONNX
    Runtime, a backend only the legacy one has once; every row scores the dev file as run_eval.py does."""
    run_py(["benchmarks/run.py", "--fine_tuned", str(trained_pico), "--dev", str(corpus_subset / "dev.txt"),
            "--stages", "infer_model", "--queries", "6", "--repeats", "1", "--tokenizers", "python",
            "--backends", "paddle_inference", "onnx_runtime", "paddle", "--stacks", "default", "legacy",
            "--name", "s", "--out_dir", str(tmp_path)])
    res, md = json.load(open(tmp_path / "s.json")), open(tmp_path / "s.md").read()
    rows = [(r["backend"], r["stack"], r["env"], r["python"], r["paddle"], r["onnxruntime"]) for r in res["rows"]]
    new, old = (".venv", "3.12", "3.3.1", "1.32.0"), (".venv-legacy", "3.9", "2.6.2", "1.19.2")
    assert rows == [("paddle_inference", ".venv", *new), ("paddle_inference", ".venv-legacy", *old),
                    ("onnx_runtime", ".venv", *new), ("onnx_runtime", ".venv-legacy", *old),
                    ("paddle", ".venv-legacy", *old)]
    p = run_py(["run_eval.py", "--infer_prefix", str(trained_pico / "infer_model"), "--test_path",
                str(corpus_subset / "dev.txt"), "--do_eval"])
    ref = round(100 * json.loads(p.stdout.strip().splitlines()[-1])["accuracy"], 2)
    assert [r["accuracy"] for r in res["rows"]] == [ref] * 5
    assert md.startswith("Environments: .venv: CPython 3.12, Paddle 3.3.1, ONNX Runtime 1.32.0; .venv-legacy: "
                         "CPython 3.9, Paddle 2.6.2, ONNX Runtime 1.19.2.")
    assert "| fine-tuned | onnx_runtime [.venv-legacy] |" in md


def test_wordpiece_compares_tokenizers_with_fasttokenizer(pico_dir, corpus_subset, tmp_path):
    """benchmarks/wordpiece.py, started from .venv, restarts in .venv-legacy (the one with FastTokenizer) and
    finds both WordPiece models giving the same ids and offsets on every dev query, each timed."""
    p = run_py(["benchmarks/wordpiece.py", "--vocab", str(pico_dir / "vocab.txt"), "--corpus",
                str(corpus_subset / "dev.txt"), "--rounds", "1", "--name", "w", "--out_dir", str(tmp_path)])
    res = json.load(open(tmp_path / "w.json"))
    assert res["python"] == "3.9" and res["versions"]["fast-tokenizer-python"] == "1.0.2"
    assert res["queries"] == res["equal"] == 150 and res["differing"] == []
    for name in ("tokenizers", "fast_tokenizer"):
        assert res[name]["cold_ms"] > 0 and res[name]["warm_ms"] > 0
    assert p.stdout.startswith(f"150 queries of {corpus_subset / 'dev.txt'}") and "| FastTokenizer 1.0.2 |" in p.stdout
