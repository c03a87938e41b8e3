"""Shared fixtures. Everything runs offline: PaddleNLP's cache is a temp dir and hub access is off."""
import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PPNLP_HOME", tempfile.mkdtemp(prefix="ppnlp_home_"))
os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GLOG_minloglevel="2")

from slu import data  # noqa: E402  (zlib work-around before paddle; the repository is on the venv's path)
from helpers import missing_prerequisite  # noqa: E402

# the NLPCC 2018 Task 4 corpus: $SLU_CORPUS, else where CI puts it (a shared/ folder beside the clone)
CORPUS = os.environ.get("SLU_CORPUS") or os.path.join(ROOT, "..", "shared", "data", "nlpcc2018", "corpus.train.txt")
SAMPLE_TRAIN = os.path.join(ROOT, "data", "sample", "train.txt")
SAMPLE_DEV = os.path.join(ROOT, "data", "sample", "dev.txt")
INTENT_LABELS = os.path.join(ROOT, "data", "intent_label.txt")
SLOT_LABELS = os.path.join(ROOT, "data", "slot_label.txt")


# the legacy environment's interpreter (slu/envs.py): FastDeploy and Paddle Lite's Python package run there
LEGACY_PYTHON = os.path.join(ROOT, ".venv-legacy", "bin", "python")


def run_py(args, cwd=ROOT, check=True, timeout=900, python=sys.executable):
    """Run a project script with the test interpreter (or `python`); return the CompletedProcess (output captured)."""
    p = subprocess.run([python] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ))
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return p


def run_legacy(args, **kwargs):
    """run_py in the legacy environment: code that imports FastDeploy or Paddle Lite itself."""
    return run_py(args, python=LEGACY_PYTHON, **kwargs)


def script_command(script, env, *extra):
    """The command line and environment of one of the user-facing shell scripts (scripts/*.sh) with variables
    `env` and extra flags (which win over the script's own)."""
    return ["bash", script, *map(str, extra)], {**os.environ, **{k: str(v) for k, v in env.items()}}


def run_script(script, env, *extra, timeout=900, check=True):
    """Run a user-facing shell script; the CompletedProcess (output captured)."""
    cmd, full_env = script_command(script, env, *extra)
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and p.returncode != 0:
        raise AssertionError(f"{script} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return p


@pytest.fixture(scope="session")
def labels():
    return data.LabelSet.from_files(INTENT_LABELS, SLOT_LABELS)


@pytest.fixture(scope="session")
def corpus_path():
    if not os.path.isfile(CORPUS):
        missing_prerequisite(f"NLPCC corpus not found at {CORPUS}", "set SLU_CORPUS to corpus.train.txt")
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


# The developers' quick subset (bash scripts/test.sh -m fast, a few minutes): every test that needs neither the
# corpus nor a build of the C++ demo or the Java sources nor the quick start, plus those marked fast by hand.
SLOW_FIXTURES = {"corpus_path", "demo", "lite_demo", "java", "android_classes", "quickstart"}


def pytest_collection_modifyitems(items):
    for item in items:
        if not SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)
