"""FastDeploy's OpenVINO backend on a Paddle 2.6 export.

OpenVINO's Paddle frontend (OpenVINO 2023.0 inside FastDeploy 1.0.7) cannot convert the 0-D `fill_constant` ops
Paddle >= 2.5 writes for Python scalars (ERNIE's attention mask): "Fail to convert fill_constant". The program is
read with its 0-D tensors given shape [1] (slu/lite.py `rewrite_0d`, outputs unchanged), written to a temporary
directory beside a link to the parameters; OpenVINO holds the model in memory once the runtime exists.

OpenVINO 2023.0's CPU plugin computes in bfloat16 on CPUs with AVX512-BF16 (its default
INFERENCE_PRECISION_HINT there), and FastDeploy 1.0.7 has no option to ask for float32: on such a CPU the
outputs differ from Paddle Inference's by bfloat16 rounding (docs/environment.md has the measurements).
"""
import contextlib
import os
import tempfile

from slu.lite import rewrite_0d


@contextlib.contextmanager
def rewritten(prefix):
    """The prefix of a temporary copy of <prefix>.pdmodel with its 0-D tensors given shape [1], beside a link to
    <prefix>.pdiparams; build the OpenVINO runtime inside the `with` (it keeps the model in memory)."""
    with tempfile.TemporaryDirectory(prefix="slu_openvino_") as tmp:
        out = os.path.join(tmp, os.path.basename(prefix))
        rewrite_0d(prefix + ".pdmodel", out + ".pdmodel")
        os.symlink(os.path.abspath(prefix + ".pdiparams"), out + ".pdiparams")
        yield out
