"""Data-parallel training: the length-grouped sampler shards across ranks, and scripts/train.sh with NPROC=2 runs
two CPU processes (Paddle's launcher) that train on different data, checkpoint, resume and export."""
import json
import os
import re
import textwrap

import pytest

from conftest import run_script


def sampler(n, batch_size, ranks, rank, epoch=0, lengths=None):
    from slu.training import LengthGroupedBatchSampler

    s = LengthGroupedBatchSampler(lengths or [1 + k % 7 for k in range(n)], batch_size, num_replicas=ranks, rank=rank,
                                  seed=42)
    s.set_epoch(epoch)
    return s


def test_sampler_shards_one_order_across_ranks():
    n, bs = 103, 8  # 13 batches: rank 0 gets 7, rank 1 gets 6 + the first batch again (wrap-around)
    whole = list(sampler(n, bs, 1, 0))
    parts = [list(sampler(n, bs, 2, r)) for r in (0, 1)]
    assert len(whole) == 13 and [len(p) for p in parts] == [7, 7] == [len(sampler(n, bs, 2, r)) for r in (0, 1)]
    assert parts[0] == whole[0::2] and parts[1] == whole[1::2] + [whole[0]]
    assert sorted(i for b in whole for i in b) == list(range(n))
    assert not {i for b in parts[0][:6] for i in b} & {i for b in parts[1][:6] for i in b}
    assert list(sampler(n, bs, 1, 0, epoch=0)) == whole and list(sampler(n, bs, 1, 0, epoch=1)) != whole


def test_sampler_groups_lengths():
    lengths = [3 + (k * 37) % 13 for k in range(400)]
    batches = list(sampler(400, 16, 1, 0, lengths=lengths))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) < 2  # random batches of these lengths spread about 11


LOG_BATCHES = textwrap.dedent("""
    # sitecustomize for the test: every rank appends the example indices of each batch it trains on to
    # $SLU_TEST_BATCH_LOG.<rank>
    import json, os
    from slu import training

    original = training.LengthGroupedBatchSampler.__iter__

    def __iter__(self):
        for batch in original(self):
            with open(f"{os.environ['SLU_TEST_BATCH_LOG']}.{self.local_rank}", "a") as f:
                f.write(json.dumps({"epoch": self.epoch, "batch": batch}) + "\\n")
            yield batch

    training.LengthGroupedBatchSampler.__iter__ = __iter__
""")


def test_two_cpu_processes_train_on_different_data_resume_and_export(pico_dir, corpus_subset, tmp_path):
    out, hook = tmp_path / "dp", tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(LOG_BATCHES)
    env = dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt", DEV=corpus_subset / "dev.txt",
               LR="1e-3", NPROC="2", PYTHONPATH=hook, SLU_TEST_BATCH_LOG=tmp_path / "batches", OMP_NUM_THREADS="")
    extra = ["--per_device_train_batch_size", "32", "--save_steps", "5", "--eval_steps", "5", "--save_total_limit", "1",
             "--load_best_model_at_end", "False"]
    run_script("scripts/train.sh", env, *extra, "--max_steps", "15")
    for r in (0, 1):
        log = (out / "launch_log" / f"workerlog.{r}").read_text()
        assert re.search(r"world_size\s+: 2", log) and re.search(r"dataset_rank\s+: " + str(r), log)
        # the cores shared between the two processes (at least one thread each)
        assert re.search(rf"CPU threads per process: {max(1, len(os.sched_getaffinity(0)) // 2)}\b", log)
    seen = [[json.loads(x)["batch"] for x in open(f"{tmp_path / 'batches'}.{r}") if json.loads(x)["epoch"] == 0]
            for r in (0, 1)]
    # 600 train queries = 19 batches of 32: rank 0 trains on batches 0, 2, .., 18, rank 1 on 1, 3, .., 17 and then
    # batch 0 again (the wrap-around that gives both ranks 10 steps per epoch)
    assert [len(s) for s in seen] == [10, 10]
    assert not {i for b in seen[0] for i in b} & {i for b in seen[1][:-1] for i in b}
    assert seen[1][-1] == seen[0][0]
    assert {i for s in seen for b in s for i in b} == set(range(600))
    assert kept_checkpoints(out) == {"checkpoint-15"} | best_checkpoint(out)  # rotation: last (+ best) only
    assert all((out / c / ".checkpoint_done").is_file() for c in kept_checkpoints(out))
    assert (out / "infer_model.pdmodel").is_file() and json.load(open(out / "deploy_config.json"))["models"]
    # the same command with more steps resumes both ranks from checkpoint-15
    run_script("scripts/train.sh", env, *extra, "--max_steps", "20")
    for r in (0, 1):
        assert f"Resuming from {out / 'checkpoint-15'}" in (out / "launch_log" / f"workerlog.{r}").read_text()
    assert json.load(open(out / "trainer_state.json"))["global_step"] == 20
    assert kept_checkpoints(out) == {"checkpoint-20"} | best_checkpoint(out)


def kept_checkpoints(out):
    return {d.name for d in out.glob("checkpoint-*")}


def best_checkpoint(out):
    """The best checkpoint, which PaddleNLP keeps beside the last one even with --save_total_limit 1."""
    best = json.load(open(out / "trainer_state.json")).get("best_model_checkpoint")
    return {best.rstrip("/").split("/")[-1]} if best else set()


@pytest.mark.parametrize("ranks", [1, 3])
def test_every_rank_gets_the_same_number_of_steps(ranks):
    lens = [len(sampler(50, 8, ranks, r)) for r in range(ranks)]
    assert len(set(lens)) == 1 and all(len(list(sampler(50, 8, ranks, r))) == lens[0] for r in range(ranks))
