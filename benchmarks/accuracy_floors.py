"""The accuracy floors of the test suite, measured: the tests' small training (tests/conftest.py: trained_pico,
compressed) run with several seeds, each stage evaluated on the subset's dev split by run_eval.py.

    .venv/bin/python benchmarks/accuracy_floors.py --corpus /path/to/corpus.train.txt --seeds 42 43 44

Writes benchmarks/results/accuracy_floors.json: per seed, the fine-tuned model's dev accuracy and each compression
stage's; tests/test_accuracy_floors.py takes its floors from these numbers with the margin it states.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("pruned", "int8", "quant_emb")


def run(cmd, env=None):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if p.returncode != 0:
        raise SystemExit(f"accuracy_floors.py: error: {' '.join(map(str, cmd))} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def accuracy(prefix, dev):
    out = run([sys.executable, "run_eval.py", "--infer_prefix", prefix, "--test_path", dev, "--do_eval"])
    return json.loads(out.strip().splitlines()[-1])["accuracy"]


def measure(work, seed):
    """The conftest fixtures' commands with --seed: train.sh 240 steps, compress.sh width 1/2 for 20 steps."""
    data, model = os.path.join(work, "subset"), os.path.join(work, f"trained_{seed}")
    dev = os.path.join(data, "dev.txt")
    paths = dict(TRAIN=os.path.join(data, "train.txt"), DEV=dev)
    run(["bash", "scripts/train.sh", "--max_steps", "240", "--save_steps", "120", "--eval_steps", "120",
         "--evaluation_strategy", "steps", "--per_device_train_batch_size", "32", "--load_best_model_at_end", "False",
         "--seed", str(seed)], dict(paths, MODEL=os.path.join(work, "pico"), OUTPUT=model, LR="1e-3"))
    compressed = os.path.join(work, f"compressed_{seed}")
    run(["bash", "scripts/compress.sh", "--width_mult_list", "1/2", "--max_steps", "20", "--save_steps", "10",
         "--per_device_train_batch_size", "32", "--seed", str(seed)], dict(paths, MODEL=model, OUTPUT=compressed))
    result = {"fine_tuned": accuracy(os.path.join(model, "infer_model"), dev)}
    for stage in STAGES:
        result[stage] = accuracy(os.path.join(compressed, "width_mult_0.5", stage), dev)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True, help="NLPCC 2018 Task 4 corpus.train.txt")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "accuracy_floors.json"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="accuracy_floors_")
    subset = os.path.join(work, "subset")
    run([sys.executable, "scripts/split_data.py", "--corpus", a.corpus, "--output_dir", subset, "--seed", "7",
         "--limit", "750"])
    run([sys.executable, "scripts/init_offline_model.py", "--name", "ernie-3.0-tiny-pico-v2-zh", "--corpus",
         os.path.join(subset, "train.txt"), os.path.join(subset, "dev.txt"), "--output_dir",
         os.path.join(work, "pico")])
    results = {}
    for seed in a.seeds:
        results[str(seed)] = measure(work, seed)
        print(json.dumps({"seed": seed, **results[str(seed)]}))
    os.makedirs(os.path.dirname(a.output), exist_ok=True)
    with open(a.output, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
