"""scripts/average_checkpoints.py: element-wise mean of checkpoints, with clear errors."""
import json

import numpy as np

from conftest import run_py


def make_ckpt(d, values, shape=(2, 3)):
    import paddle

    d.mkdir(parents=True)
    paddle.save({"w": paddle.to_tensor(np.full(shape, values[0], "float32")),
                 "b": paddle.to_tensor(np.array(values, "float32"))}, str(d / "model_state.pdparams"))
    (d / "config.json").write_text(json.dumps({"tag": str(values)}))
    (d / "vocab.txt").write_text("[PAD]\n")
    return d


def test_average_of_three(tmp_path):
    import paddle

    run = tmp_path / "run"
    cks = [make_ckpt(run / f"checkpoint-{k}", [k, 2.0 * k]) for k in (1, 2, 6)]
    (run / "intent_label.txt").write_text("OTHERS\n")
    out = tmp_path / "avg"
    run_py(["scripts/average_checkpoints.py", "--output_dir", str(out), *map(str, cks)])
    state = paddle.load(str(out / "model_state.pdparams"))
    np.testing.assert_allclose(state["w"].numpy(), np.full((2, 3), 3.0))  # (1 + 2 + 6) / 3
    np.testing.assert_allclose(state["b"].numpy(), [3.0, 6.0])
    assert json.load(open(out / "config.json"))["tag"] == "[6, 12.0]"  # config of the last checkpoint
    assert (out / "intent_label.txt").read_text() == "OTHERS\n" and (out / "vocab.txt").exists()


def test_mismatched_or_missing_checkpoints(tmp_path):
    a = make_ckpt(tmp_path / "a", [1, 2])
    b = make_ckpt(tmp_path / "b", [1, 2], shape=(3, 3))
    p = run_py(["scripts/average_checkpoints.py", "--output_dir", str(tmp_path / "o"), str(a), str(b)], check=False)
    assert p.returncode != 0 and f"{b} does not have the parameters of {a}" in p.stderr
    p = run_py(["scripts/average_checkpoints.py", "--output_dir", str(tmp_path / "o"), str(a), str(tmp_path / "c")],
               check=False)
    assert p.returncode != 0 and f"model file not found: {tmp_path / 'c'}/model_state.pdparams" in p.stderr
