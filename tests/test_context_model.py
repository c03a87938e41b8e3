"""A model trained with dialogue context, end to end: the scripts train and export it, and run_eval.py, the
predictor on every Python runtime, the demo and the server feed it the earlier turns; a model without context
ignores them."""
import json

import numpy as np
import pytest

from conftest import run_py, run_script
from slu import envs
from helpers import missing_prerequisite
from slu import data, program


@pytest.fixture(scope="module")
def session_subset(tmp_path_factory, corpus_path):
    """Whole sessions of the shared corpus, 4:1, cut to 160 sessions."""
    d = tmp_path_factory.mktemp("sessions")
    run_py(["scripts/split_data.py", "--corpus", corpus_path, "--output_dir", str(d), "--seed", "7", "--split_by",
            "session", "--limit", "160"])
    return d


@pytest.fixture(scope="module")
def context_model(tmp_path_factory, pico_dir, session_subset):
    """scripts/train.sh with --context_turns 1 (120 steps), exported with constrained slot decoding."""
    out = tmp_path_factory.mktemp("context_model")
    run_script("scripts/train.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=session_subset / "train.txt",
                                        DEV=session_subset / "dev.txt", LR="1e-3"),
               "--max_steps", "120", "--save_steps", "120", "--eval_steps", "120", "--evaluation_strategy", "steps",
               "--per_device_train_batch_size", "32", "--load_best_model_at_end", "False", "--context_turns", "1",
               "--slot_decoding", "constrained")
    return out


def dev_examples(session_subset, labels, turns=1):
    return data.attach_context(data.read_examples(str(session_subset / "dev.txt"), labels), turns)


def feed_names(pdmodel):
    prog = program.read_program(pdmodel)
    return sorted(op.outputs[0].arguments[0] for op in prog.blocks[0].ops if op.type == "feed")


def test_export_carries_the_second_segment(context_model):
    config = json.load(open(context_model / "deploy_config.json"))
    assert (config["context_turns"], config["max_context_length"], config["slot_decoding"]) == (1, 16, "constrained")
    assert [i["name"] for i in config["inputs"]] == ["input_ids", "token_type_ids"]
    assert config["max_position_embeddings"] == 32  # 16 for the query + 16 for the context: pruned to that
    assert feed_names(str(context_model / "infer_model.pdmodel")) == ["input_ids", "token_type_ids"]
    assert "music.play" in config["intent_slot_types"] and config["intent_slot_types"]["music.pause"] == []


def test_the_model_reads_the_context(context_model):
    from slu.predictor import Predictor

    p = Predictor.from_dir(str(context_model), backend="paddle_inference")
    alone = p.forward(["取消"])[3]
    after_music = p.forward(["取消"], [["播放周杰伦的稻香"]])[3]
    after_route = p.forward(["取消"], [["导航到古田"]])[3]
    assert not np.allclose(alone, after_music, atol=1e-4) and not np.allclose(after_music, after_route, atol=1e-4)
    # a third earlier turn is beyond context_turns 1: only the last one counts
    assert np.allclose(p.forward(["取消"], [["打电话给张三", "导航到古田"]])[3], after_route, atol=1e-6)


def test_run_eval_takes_the_context_from_the_corpus_sessions(context_model, session_subset, labels, tmp_path):
    from slu.predictor import Predictor

    dev = session_subset / "dev.txt"
    p = run_py(["run_eval.py", "--infer_prefix", str(context_model / "infer_model"), "--test_path", str(dev),
                "--do_eval"])
    printed = json.loads(p.stdout.strip().splitlines()[-1])
    predictor = Predictor.from_dir(str(context_model), backend="paddle_inference")
    with_context = predictor.evaluate(dev_examples(session_subset, labels))
    assert printed["accuracy"] == pytest.approx(with_context["accuracy"], abs=1e-6)
    assert printed["intent_accuracy"] == pytest.approx(with_context["intent_accuracy"], abs=1e-6)
    # predict mode: one line per query, each answered with its session's earlier turn
    p = run_py(["run_eval.py", "--infer_prefix", str(context_model / "infer_model"), "--test_path", str(dev)])
    lines = [json.loads(x) for x in p.stdout.strip().splitlines()]
    examples = dev_examples(session_subset, labels)
    want = predictor.predict([e["query"] for e in examples], contexts=[e["context"] for e in examples])
    assert [{k: v for k, v in x.items() if k != "query"} for x in lines] == want
    assert sum(1 for e in examples if e["context"]) > len(examples) // 3  # the sessions did give context


@pytest.mark.parametrize("backend", ["paddle", "onnx_runtime"])
def test_fastdeploy_runtimes_answer_like_paddle_inference_with_context(context_model, session_subset, labels,
                                                                       backend, tmp_path):
    """Each in its own process: FastDeploy's Paddle backend must not share one with paddle.inference."""
    script = tmp_path / "answers.py"
    script.write_text(
        "import json, sys\nfrom slu import data\nfrom slu.predictor import Predictor\n"
        "p = Predictor.from_dir(sys.argv[1], backend=sys.argv[2])\n"
        "ex = data.attach_context(data.read_examples(sys.argv[3], p.labels), 1)\n"
        "print(json.dumps(p.predict([e['query'] for e in ex], contexts=[e['context'] for e in ex]), "
        "ensure_ascii=False))\n", encoding="utf-8")
    answers = {}
    for b in ("paddle_inference", backend):
        p = run_py([str(script), str(context_model), b, str(session_subset / "dev.txt")],
                   python=envs.python_for_backend(b))
        answers[b] = json.loads(p.stdout.strip().splitlines()[-1])
    same = [(a["intent"], a["slot"]) == (b["intent"], b["slot"]) for a, b in zip(answers["paddle_inference"],
                                                                              answers[backend])]
    assert len(same) == len(dev_examples(session_subset, labels)) and all(same)


def test_demo_and_server_pass_the_context(context_model):
    import asyncio

    import httpx

    from slu import serving
    from slu.predictor import Predictor

    want = Predictor.from_dir(str(context_model), backend="onnx_runtime").predict(["取消", "古田"],
                                                                                 contexts=[["导航到古田"], []])
    p = run_py(["deploy/python/infer_demo.py", "--model_dir", str(context_model), "--backend", "onnx_runtime",
                "--context", "导航到古田", "--text", "取消"])
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"query": "取消", **want[0]}

    settings = serving.Settings(model_dir=str(context_model), backend="onnx_runtime")
    app = serving.create_app(serving.load_predict(settings), settings=settings)

    async def ask():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            one = await client.post("/predict", json={"text": "取消", "context": ["导航到古田"]})
            many = await client.post("/predict", json={"texts": ["取消", "古田"], "contexts": [["导航到古田"], []]})
            return one.json(), many.json()

    one, many = asyncio.run(ask())
    assert one == {"result": {"query": "取消", **want[0]}}
    assert many == {"results": [{"query": "取消", **want[0]}, {"query": "古田", **want[1]}]}


def test_a_model_without_context_ignores_it(trained_pico):
    from slu.predictor import Predictor

    p = Predictor.from_dir(str(trained_pico), backend="paddle_inference")
    assert p.predict(["取消", "古田"], contexts=[["播放周杰伦的稻香"], ["导航"]]) == p.predict(["取消", "古田"])


def test_benchmark_feeds_the_context_to_python_and_cpp(context_model, session_subset, tmp_path):
    """benchmarks/run.py on a context model (fine-tuned stage alone, no --compressed): the Python and C++ rows'
    accuracies equal run_eval.py's, which reads each query's session; the C++ demo's token ids, context included,
    are checked against PaddleNLP's by the script itself."""
    import os
    import shutil
    import subprocess

    from conftest import ROOT

    if not (shutil.which("g++") and shutil.which("cmake")):
        missing_prerequisite("no g++/cmake: the C++ demo cannot be built", "bash scripts/system_packages.sh")
    build = tmp_path / "build"
    p = subprocess.run(["bash", os.path.join(ROOT, "deploy", "cpp", "build.sh")], capture_output=True, text=True,
                       env={**os.environ, "BUILD_DIR": str(build)}, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    dev = session_subset / "dev.txt"
    run_py(["benchmarks/run.py", "--fine_tuned", str(context_model), "--stages", "infer_model", "--dev", str(dev),
            "--queries", "12", "--repeats", "1", "--backends", "paddle", "cpp", "--tokenizers", "python",
            "--cpp_demo", str(build / "infer_demo"), "--name", "ctx", "--out_dir", str(tmp_path)])
    rows = json.load(open(tmp_path / "ctx.json"))["rows"]
    assert [(r["backend"], "error" in r or "refused" in r) for r in rows] == [("paddle", False), ("cpp", False)], rows
    p = run_py(["run_eval.py", "--infer_prefix", str(context_model / "infer_model"), "--test_path", str(dev),
                "--do_eval"])
    want = round(100 * json.loads(p.stdout.strip().splitlines()[-1])["accuracy"], 2)
    assert [r["accuracy"] for r in rows] == [want, want]


def test_compression_keeps_the_context(context_model, session_subset, labels, tmp_path):
    """scripts/compress.sh on a context model: every stage takes the second segment, scores what its report says
    on the sessions' dev queries, and still answers by the earlier turn."""
    from slu.predictor import Predictor

    out = tmp_path / "compressed"
    run_script("scripts/compress.sh", dict(MODEL=context_model, OUTPUT=out, TRAIN=session_subset / "train.txt",
                                           DEV=session_subset / "dev.txt"),
               "--width_mult_list", "1/2", "--max_steps", "20", "--save_steps", "10",
               "--per_device_train_batch_size", "32")
    w = out / "width_mult_0.5"
    config = json.load(open(w / "deploy_config.json"))
    assert (config["context_turns"], config["max_context_length"]) == (1, 16)
    rows = {r["model"]: r for r in json.load(open(out / "compress_report.json"))["stages"]}
    for stage in ("pruned", "int8", "quant_emb"):
        assert feed_names(str(w / f"{stage}.pdmodel")) == ["input_ids", "token_type_ids"]
        p = run_py(["run_eval.py", "--infer_prefix", str(w / stage), "--test_path", str(session_subset / "dev.txt"),
                    "--do_eval"])
        got = json.loads(p.stdout.strip().splitlines()[-1])
        assert round(100 * got["accuracy"], 2) == rows[str(w / stage)]["accuracy"]
    p = Predictor.from_dir(str(w), model_prefix="quant_emb", backend="paddle_inference")
    after_music = p.forward(["取消"], [["播放周杰伦的稻香"]])[3]
    after_route = p.forward(["取消"], [["导航到古田"]])[3]
    assert not np.allclose(after_music, after_route, atol=1e-4)


def test_the_context_recipe_trains_a_crf_context_model(pico_dir, session_subset, labels, tmp_path):
    """scripts/recipe_context.sh: two epochs with the two earlier turns and queries of up to 30 tokens, averaged,
    exported for CRF decoding with the second segment, and evaluated on the sessions' dev queries."""
    out = tmp_path / "recipe"
    p = run_script("scripts/recipe_context.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=session_subset / "train.txt",
                                                      DEV=session_subset / "dev.txt", EPOCHS="2"),
                   "--per_device_train_batch_size", "32", "--load_best_model_at_end", "False")
    config = json.load(open(out / "averaged" / "deploy_config.json"))
    assert (config["context_turns"], config["max_context_length"], config["slot_decoding"]) == (2, 32, "crf")
    # 30 query tokens (upstream's 16 keeps 14): positions pruned to the query's 32 and the turns' 32
    assert (config["max_seq_length"], config["max_position_embeddings"]) == (32, 64)
    assert np.array(config["slot_transitions"]["transitions"]).shape == (len(labels.slots), len(labels.slots))
    assert feed_names(str(out / "averaged" / "infer_model.pdmodel")) == ["input_ids", "token_type_ids"]
    printed = json.loads(p.stdout.strip().splitlines()[-1])
    assert printed["examples"] == len(dev_examples(session_subset, labels))


def test_context_recipe_pretrains_on_the_dialogue_when_asked(pico_dir, session_subset, tmp_path):
    """MLM_EPOCHS with recipe_context.sh: the masked LM sees the earlier turns as a type-1 segment, so the type-1
    embedding is trained; from queries alone it gets no gradient and only weight decay (at most steps * lr * 0.01 of
    it) could move it. The fine-tuning starts from that encoder."""
    import paddle

    out = tmp_path / "recipe"
    run_script("scripts/recipe_context.sh", dict(MODEL=pico_dir, OUTPUT=out, TRAIN=session_subset / "train.txt",
                                                  DEV=session_subset / "dev.txt", EPOCHS="2", MLM_EPOCHS="2"),
               "--per_device_train_batch_size", "64", "--load_best_model_at_end", "False")
    (checkpoint,) = (out / "mlm").glob("checkpoint-*")
    steps = json.load(open(checkpoint / "trainer_state.json"))["global_step"]
    key = "embeddings.token_type_embeddings.weight"
    start = paddle.load(str(pico_dir / "model_state.pdparams"))[key].numpy()[1]
    mlm = paddle.load(str(out / "mlm" / "model_state.pdparams"))["ernie." + key].numpy()[1]
    decay_only = steps * 1e-3 * 0.01 * np.abs(start).max()
    assert np.abs(mlm - start).max() > 20 * decay_only, (np.abs(mlm - start).max(), decay_only)
    fine_tune_start = paddle.load(str(out / "pretrained_model" / "model_state.pdparams"))["ernie." + key].numpy()[1]
    assert np.array_equal(fine_tune_start, mlm)
