"""One predictor, many batch shapes: every backend answers a sequence of batches of changing size and length
(batch 1 included, and the reported sequence: 11 one-character queries, then one of 11 characters) as the plain
CPU kernels do, in one process, through one runtime. oneDNN caches its primitives per input shape, and with the
cache set to 0 ("keep every shape") Paddle Inference failed for good after such a sequence ("could not reshape a
memory descriptor"). The server goes through the same predictor: tests/test_server.py sends the reported sequence
to a server on the default backend."""
import json
import os
import random
import subprocess

import numpy as np
import pytest

from conftest import ROOT
from slu import envs

QUERY = "导航到北京西站来一首周华健的花心"


def batch_sequence(seed=0, batches=60):
    """The reported sequence, then random batch sizes (1 to 32) of random lengths (1 to 17 characters, past the
    model's 14 query tokens)."""
    rng = random.Random(seed)
    out = [["导"] * 11, [QUERY[:11]], [QUERY[:3]]]
    for _ in range(batches):
        size = rng.choice([1, 1, 2, 3, 5, 8, 11, 16, 32])
        out.append([QUERY[:rng.randint(1, len(QUERY))] for _ in range(size)])
    return out


RUN = """
import json, os, sys
import numpy as np
from slu.predictor import Predictor
model_dir, backend, mkldnn, path = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
batches = json.load(open(path, encoding="utf-8"))
p = Predictor.from_dir(model_dir, backend=backend, batch_size=64, mkldnn=mkldnn)
out = f"{path}.{backend}"
os.makedirs(out, exist_ok=True)
for k, texts in enumerate(batches):
    ids, offsets, truncated, intent_logits, slot_logits = p.forward(texts)
    np.save(f"{out}/intent{k}.npy", intent_logits)  # .npy, not .npz: no zip CRC (Paddle's zlib symbols)
    np.save(f"{out}/slot{k}.npy", slot_logits)
"""


def logits(model_dir, backend, batches_path, mkldnn=True):
    """Each batch's (intent, slot) logits from one process and one runtime of `backend`."""
    p = subprocess.run([envs.python_for_backend(backend), "-c", RUN, str(model_dir), backend, "1" if mkldnn else "0",
                        str(batches_path)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = f"{batches_path}.{backend}"
    return {name[:-4]: np.load(os.path.join(out, name)) for name in os.listdir(out)}


@pytest.fixture(scope="module")
def reference(trained_pico, tmp_path_factory):
    """Paddle Inference with its plain CPU kernels (no oneDNN, so no shape cache)."""
    path = tmp_path_factory.mktemp("shapes") / "batches.json"
    path.write_text(json.dumps(batch_sequence(), ensure_ascii=False), encoding="utf-8")
    return path, logits(trained_pico, "paddle_inference", path, mkldnn=False)


# OpenVINO computes in bfloat16 on CPUs with AVX512-BF16 (slu/backends.py), hence its looser bound
@pytest.mark.parametrize("backend, atol", [("paddle", 1e-4), ("paddle_inference", 1e-4), ("onnx_runtime", 1e-4),
                                           ("openvino", 0.1), ("paddle_lite", 1e-4)])
def test_every_backend_answers_changing_batch_shapes_like_the_plain_kernels(trained_pico, reference, backend, atol):
    path, ref = reference
    got = logits(trained_pico, backend, path)
    for k, texts in enumerate(batch_sequence()):
        for name in ("intent", "slot"):
            a, b = got[f"{name}{k}"], ref[f"{name}{k}"]
            assert a.shape == b.shape and np.abs(a - b).max() <= atol, (backend, k, len(texts), name)
