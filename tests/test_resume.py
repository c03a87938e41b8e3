"""Resuming through the user's own command: scripts/train.sh killed (kill -9) at several moments, then run again
unchanged, ends with the same metrics and weights as a run that was never interrupted; --overwrite_output_dir
starts afresh. The kills come from a sitecustomize that wraps the trainer at the chosen moment."""
import json
import os
import signal
import textwrap

import numpy as np
import pytest

from conftest import run_script

KILL = textwrap.dedent("""
    # sitecustomize of a run to crash at $SLU_TEST_KILL: "step:N" (after N optimizer steps, between checkpoints),
    # "save:N" (checkpoint-N written, its completion marker not yet), "rotate:N" (the first rotation after
    # checkpoint-N is written: half of the deleted checkpoint's files gone, its marker still there)
    import os, shutil, signal
    from slu import training

    KIND, AT = os.environ["SLU_TEST_KILL"].split(":")
    AT = int(AT)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if KIND == "step":
        original_step = training.JointTrainer.training_step

        def training_step(self, *args, **kwargs):
            if self.state.global_step == AT:
                die()
            return original_step(self, *args, **kwargs)

        training.JointTrainer.training_step = training_step
    elif KIND == "save":
        original_marker = training.write_checkpoint_marker

        def write_checkpoint_marker(path, step):
            if step == AT:
                die()
            return original_marker(path, step)

        training.write_checkpoint_marker = write_checkpoint_marker
    elif KIND == "rotate":
        original_rmtree = shutil.rmtree

        def rmtree(path, *args, **kwargs):
            name = os.path.basename(str(path).rstrip("/"))
            if name.startswith("checkpoint-") and os.path.isdir(os.path.join(os.path.dirname(str(path)),
                                                                              f"checkpoint-{AT}")):
                files = sorted(f for f in os.listdir(path) if f != training.CHECKPOINT_DONE)
                for f in files[:len(files) // 2 + 1]:
                    os.remove(os.path.join(path, f))
                die()
            return original_rmtree(path, *args, **kwargs)

        shutil.rmtree = rmtree
""")
STEPS = ["--max_steps", "40", "--save_steps", "10", "--eval_steps", "10", "--evaluation_strategy", "steps",
         "--per_device_train_batch_size", "16", "--save_total_limit", "2"]


def train(env, *extra, kill=None, hook=None):
    """scripts/train.sh as the user runs it (plus the test's step counts); with `kill`, crashed at that moment."""
    if kill:
        env = dict(env, PYTHONPATH=hook, SLU_TEST_KILL=kill)
    p = run_script("scripts/train.sh", env, *STEPS, *extra, check=not kill)
    if kill:
        assert p.returncode == 128 + signal.SIGKILL, (kill, p.stderr[-3000:])
    return p.stdout + p.stderr


def outcome(out):
    """The run's final evaluation (timings left out) and its exported weights."""
    metrics = {k: v for k, v in json.load(open(out / "eval_results.json")).items()
               if not k.endswith(("_runtime", "_per_second"))}
    assert {"eval_accuracy", "eval_intent_accuracy", "eval_loss"} <= set(metrics)
    weights = np.frombuffer((out / "infer_model.pdiparams").read_bytes(), dtype=np.uint8)
    return metrics, weights


def steps_of(out):
    return sorted(int(d.name.split("-")[1]) for d in out.glob("checkpoint-*"))


@pytest.fixture(scope="module")
def uninterrupted(pico_dir, corpus_subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    env = dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt", DEV=corpus_subset / "dev.txt",
               LR="1e-3", OMP_NUM_THREADS="1")
    train(env)
    return env, outcome(out)


def test_killed_three_times_the_same_command_resumes_to_the_uninterrupted_result(uninterrupted, tmp_path):
    env, (want_metrics, want_weights) = uninterrupted
    out, hook = tmp_path / "run", tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(KILL)
    env = dict(env, OUTPUT=out)

    train(env, kill="step:15", hook=hook)  # between checkpoints
    assert steps_of(out) == [10] and not (out / "infer_model.pdmodel").exists()

    log = train(env, kill="save:20", hook=hook)  # writing checkpoint-20
    assert f"Resuming from {out / 'checkpoint-10'}" in log
    assert steps_of(out) == [10, 20] and not (out / "checkpoint-20" / ".checkpoint_done").exists()

    log = train(env, kill="rotate:30", hook=hook)  # checkpoint-30 done, rotation deleting an older one
    assert f"{out / 'checkpoint-20'} is incomplete" in log and f"Resuming from {out / 'checkpoint-10'}" in log
    assert steps_of(out) == [10, 20, 30]
    half_deleted = [d for d in out.glob("checkpoint-*") if len(os.listdir(d)) < len(os.listdir(out / "checkpoint-30"))]
    assert len(half_deleted) == 1 and (half_deleted[0] / ".checkpoint_done").is_file()

    log = train(env)
    assert f"Resuming from {out / 'checkpoint-30'}" in log and "Continuing training from global step 30" in log
    assert json.load(open(out / "trainer_state.json"))["global_step"] == 40
    metrics, weights = outcome(out)
    assert metrics == want_metrics
    assert np.array_equal(weights, want_weights)
    assert not half_deleted[0].exists()  # it went with the next rotation


def test_overwrite_output_dir_starts_afresh(uninterrupted, tmp_path):
    env, _ = uninterrupted
    out = tmp_path / "run"
    env = dict(env, OUTPUT=out)
    train(env, "--max_steps", "20")
    assert steps_of(out) == [10, 20]
    log = train(env, "--max_steps", "10", "--overwrite_output_dir")
    assert "Resuming from" not in log and f"--overwrite_output_dir: removing {out / 'checkpoint-20'}" in log
    assert steps_of(out) == [10] and json.load(open(out / "trainer_state.json"))["global_step"] == 10


def test_a_complete_looking_checkpoint_with_files_missing_is_not_resumed_from(tmp_path):
    from slu import training

    for step in (10, 20):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model_state.pdparams").write_bytes(b"w" * step)
        (d / "optimizer.pdopt").write_bytes(b"o" * step)
        training.write_checkpoint_marker(str(d), step)
    assert training.is_complete(str(tmp_path / "checkpoint-20"))
    os.remove(tmp_path / "checkpoint-20" / "optimizer.pdopt")  # half deleted, marker kept
    (tmp_path / "checkpoint-10" / "model_state.pdparams").write_bytes(b"w")  # shorter than when it was marked
    assert not training.is_complete(str(tmp_path / "checkpoint-20"))
    assert not training.is_complete(str(tmp_path / "checkpoint-10"))
    assert training.last_complete_checkpoint(str(tmp_path)) is None
    assert list(tmp_path.iterdir()) == []
