"""Shared fixtures. Everything runs offline: PaddleNLP's cache is a temp dir and hub access is off."""
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("PPNLP_HOME", tempfile.mkdtemp(prefix="ppnlp_home_"))
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GLOG_minloglevel="2")

import utils  # noqa: E402  (zlib work-around before paddle)

CORPUS = os.path.join(ROOT, "..", "shared", "data", "nlpcc2018", "corpus.train.txt")
SAMPLE_TRAIN = os.path.join(ROOT, "data", "sample", "train.txt")
SAMPLE_DEV = os.path.join(ROOT, "data", "sample", "dev.txt")
INTENT_LABELS = os.path.join(ROOT, "data", "intent_label.txt")
SLOT_LABELS = os.path.join(ROOT, "data", "slot_label.txt")


def run_py(args, cwd=ROOT, check=True, timeout=900):
    """Run a project script with the test interpreter; return the CompletedProcess (output captured)."""
    p = subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ))
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return p


def run_script(script, env, *extra, timeout=900):
    """Run one of the user-facing shell scripts (scripts/*.sh) with variables `env` and extra flags."""
    p = subprocess.run(["bash", script, *map(str, extra)], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout, env={**os.environ, **{k: str(v) for k, v in env.items()}})
    if p.returncode != 0:
        raise AssertionError(f"{script} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return p


@pytest.fixture(scope="session")
def labels():
    return utils.LabelSet.from_files(INTENT_LABELS, SLOT_LABELS)


@pytest.fixture(scope="session")
def corpus_path():
    if not os.path.isfile(CORPUS):
        pytest.skip(f"shared corpus not found at {CORPUS} (CI places ../shared beside the clone)")
    return CORPUS


@pytest.fixture(scope="session")
def corpus_subset(tmp_path_factory, corpus_path):
    """Seeded 4:1 split of the shared corpus, cut to 600 train / 150 dev lines."""
    d = tmp_path_factory.mktemp("nlpcc_subset")
    run_py(["scripts/split_data.py", "--corpus", corpus_path, "--output_dir", str(d), "--seed", "7", "--limit", "750"])
    return d


@pytest.fixture(scope="session")
def pico_dir(tmp_path_factory, corpus_subset):
    """Offline pico directory, vocabulary from the corpus subset."""
    d = tmp_path_factory.mktemp("pico") / "ernie-3.0-tiny-pico-v2-zh"
    run_py(["scripts/init_offline_model.py", "--name", "ernie-3.0-tiny-pico-v2-zh", "--corpus",
            str(corpus_subset / "train.txt"), str(corpus_subset / "dev.txt"), "--output_dir", str(d)])
    return d


def compress_args(model, out, train, dev, strategy="dynabert+qat+embeddings", *extra):
    """Upstream's README compression command (cpu, local paths), shortened by `extra`."""
    return ["run_train.py", "--do_compress", "--strategy", strategy, "--num_train_epochs", "10",
            "--model_name_or_path", str(model), "--output_dir", str(out), "--max_seq_length", "16",
            "--per_device_eval_batch_size", "64", "--per_device_train_batch_size", "32", "--learning_rate", "5e-5",
            "--train_path", str(train), "--dev_path", str(dev), "--intent_label_path", INTENT_LABELS,
            "--slot_label_path", SLOT_LABELS, "--label_names", "intent_label", "slot_label",
            "--weight_decay", "0.01", "--warmup_ratio", "0.1", "--input_dtype", "int32", "--device", "cpu",
            "--logging_steps", "10", "--save_steps", "10", "--eval_steps", "10", "--disable_tqdm", "True",
            "--save_total_limit", "1", "--metric_for_best_model", "eval_accuracy", *extra]


def train_args(model, out, train, dev, *extra):
    """Upstream's README training command (cpu, local paths), shortened for tests by `extra`."""
    return ["run_train.py", "--device", "cpu", "--logging_steps", "10", "--save_steps", "100", "--eval_steps", "100",
            "--model_name_or_path", str(model), "--num_train_epochs", "30", "--per_device_eval_batch_size", "64",
            "--per_device_train_batch_size", "64", "--learning_rate", "1e-3", "--prune_embeddings",
            "--max_vocab_size", "6000", "--max_seq_length", "16", "--output_dir", str(out),
            "--train_path", str(train), "--dev_path", str(dev), "--intent_label_path", INTENT_LABELS,
            "--slot_label_path", SLOT_LABELS, "--label_names", "intent_label", "slot_label",
            "--weight_decay", "0.01", "--warmup_ratio", "0.1", "--do_train", "--do_eval", "--do_export",
            "--input_dtype", "int32", "--disable_tqdm", "True", "--overwrite_output_dir",
            "--load_best_model_at_end", "True", "--save_total_limit", "1",
            "--metric_for_best_model", "eval_accuracy", *extra]


@pytest.fixture(scope="session")
def trained_pico(tmp_path_factory, pico_dir, corpus_subset):
    """A small model trained for 240 steps by scripts/train.sh (upstream's command) on the corpus subset, exported (int32 input)."""
    out = tmp_path_factory.mktemp("trained_pico")
    run_script("scripts/train.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                        DEV=corpus_subset / "dev.txt", LR="1e-3"),
               "--max_steps", "240", "--save_steps", "120", "--eval_steps", "120", "--evaluation_strategy", "steps",
               "--per_device_train_batch_size", "32", "--load_best_model_at_end", "False")
    return out


@pytest.fixture(scope="session")
def compressed(trained_pico, corpus_subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("compressed")
    # pico has 2 heads of 64: width 1/2 keeps whole heads (3/4 would not), and tests a width other than 3/4
    run_script("scripts/compress.sh", dict(MODEL=trained_pico, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                           DEV=corpus_subset / "dev.txt"),
               "--width_mult_list", "1/2", "--max_steps", "20", "--save_steps", "10",
               "--per_device_train_batch_size", "32")
    return out
