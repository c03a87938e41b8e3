"""The project's two Python environments (scripts/setup.sh makes both), and which one runs what.

    .venv         CPython 3.12, Paddle 3: training, compression, export (PIR), run_eval.py, Paddle Inference,
                  ONNX Runtime, the server, the benchmarks, the tests
    .venv-legacy  CPython 3.9, Paddle 2.6: FastDeploy 1.0.7 (backends "paddle" and "openvino"), Paddle Lite
                  2.13rc0 (backend "paddle_lite", .nb conversion), and the .pdmodel programs every other runtime
                  reads: the static export's (slu/export.py) and compression's QAT and INT8-embedding ones
                  (slu/compat.py)

A command started in the default environment that needs the second one starts itself again there
(`reexec_for_backend`), so a user never switches by hand.
"""
import importlib.util
import os
import sys
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEGACY_VENV = os.path.join(ROOT, ".venv-legacy")
# backend -> the module it needs that only the legacy environment has
LEGACY_MODULES = {"paddle": "fastdeploy", "openvino": "fastdeploy", "paddle_lite": "paddlelite"}


def has_module(name):
    return importlib.util.find_spec(name) is not None


def legacy_python():
    """The legacy environment's interpreter, or a clear error naming how to make it."""
    python = os.path.join(LEGACY_VENV, "bin", "python")
    if not os.access(python, os.X_OK):
        raise FileNotFoundError(f"{python} not found: FastDeploy and Paddle Lite run in the project's second "
                                "environment; run `bash scripts/setup.sh` to make it")
    return python


def python_for(module):
    """The interpreter that can import `module`: this one when it can, else the legacy environment's."""
    return sys.executable if has_module(module) else legacy_python()


def python_for_backend(backend):
    module = LEGACY_MODULES.get(backend)
    return sys.executable if module is None else python_for(module)


def in_legacy():
    return os.path.realpath(sys.prefix) == os.path.realpath(LEGACY_VENV)


def paddle_major():
    for name in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return int(metadata.version(name).split(".")[0])
        except metadata.PackageNotFoundError:
            pass
    return 0


def reexec_in_legacy():
    """Start this command again in the legacy environment: the same script, arguments and environment variables."""
    python = legacy_python()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, os.path.abspath(sys.argv[0]), *sys.argv[1:]])


def reexec_for_backend(backend):
    """Start this command again in the legacy environment when `backend` needs a module this one lacks; returns
    when this environment can run it."""
    if python_for_backend(backend) != sys.executable and not in_legacy():
        reexec_in_legacy()
