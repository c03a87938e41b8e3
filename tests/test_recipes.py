"""The recipe scripts, run as a user runs them."""
import os
import re

import numpy as np


def test_recipe_script_trains_with_rdrop_averages_the_last_two_epochs_and_exports_crf(pico_dir, corpus_subset, tmp_path):
    import json

    import paddle

    from conftest import run_script

    out = tmp_path / "recipe"
    p = run_script("scripts/recipe_single.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=corpus_subset / "train.txt",
                                                     DEV=corpus_subset / "dev.txt", EPOCHS="3", MLM_EPOCHS="0",
                                                     OMP_NUM_THREADS=""),
                   "--per_device_train_batch_size", "64", "--load_best_model_at_end", "False")
    assert "R-Drop: each training batch runs twice, KL weight 1.0" in p.stdout + p.stderr
    # one process: every core of this machine (Paddle would use one thread without OMP_NUM_THREADS)
    assert re.search(rf"CPU threads per process: {len(os.sched_getaffinity(0))}\b", p.stdout + p.stderr)
    steps = sorted(int(d.name.split("-")[1]) for d in out.glob("checkpoint-*"))
    assert steps == [10, 20, 30]  # 600 lines / 64 = 10 steps an epoch, 3 epochs, --save_total_limit 3
    a, b = (paddle.load(str(out / f"checkpoint-{s}" / "model_state.pdparams")) for s in steps[-2:])
    avg = paddle.load(str(out / "averaged" / "model_state.pdparams"))
    for key in ("intent_classifier.weight", "crf.transitions"):
        assert np.allclose(avg[key].numpy(), (a[key].numpy() + b[key].numpy()) / 2, atol=1e-6)
    config = json.load(open(out / "averaged" / "deploy_config.json"))
    assert config["slot_decoding"] == "crf" and config["context_turns"] == 0
    assert np.allclose(config["slot_transitions"]["transitions"], avg["crf.transitions"].numpy(), atol=1e-6)
    assert (out / "averaged" / "infer_model.pdmodel").is_file()
    assert 0 < json.load(open(out / "averaged" / "eval_results.json"))["accuracy"] <= 1
