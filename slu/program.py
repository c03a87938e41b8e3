"""Reading exported static programs (.pdmodel) without importing Paddle: ops, input dtype, parameter count, size.

Deployment processes (FastTokenizer + ONNX Runtime or Paddle Lite) use this to check a model before a runtime
loads it, without the ~250 MiB of the training stack.
"""
import math
import os

_FRAMEWORK_PB2 = None


def framework_pb2():
    """Paddle's ProgramDesc protobuf module. Loaded from its file, without importing paddle (about 250 MiB and
    seconds), so that deployment processes can read a program's ops and input dtype without the training stack;
    when paddle is already imported, its own module."""
    global _FRAMEWORK_PB2
    if _FRAMEWORK_PB2 is None:
        import importlib.util
        import sys

        mod = sys.modules.get("paddle.base.proto.framework_pb2")
        spec = None if mod else importlib.util.find_spec("paddle")
        path = os.path.join(os.path.dirname(spec.origin), "base", "proto", "framework_pb2.py") if spec else ""
        if mod is None and os.path.isfile(path):
            s = importlib.util.spec_from_file_location("_paddle_framework_pb2", path)
            mod = importlib.util.module_from_spec(s)
            s.loader.exec_module(mod)
        elif mod is None:
            from paddle.base.proto import framework_pb2 as mod
        _FRAMEWORK_PB2 = mod
    return _FRAMEWORK_PB2


def read_program(pdmodel_path):
    """The ProgramDesc of an exported .pdmodel file, with a clear error for a missing or unreadable file."""
    if not os.path.isfile(pdmodel_path):
        raise FileNotFoundError(f"model file not found: {pdmodel_path}")
    pb2 = framework_pb2()
    with open(pdmodel_path, "rb") as f:
        data = f.read()
    try:
        prog = pb2.ProgramDesc.FromString(data)
    except Exception as e:  # protobuf's DecodeError differs between implementations
        raise ValueError(f"{pdmodel_path}: not a Paddle program ({type(e).__name__}: {e})") from None
    if not prog.blocks:
        raise ValueError(f"{pdmodel_path}: not a Paddle program (no blocks)")
    return prog


def program_ops(pdmodel_path):
    """Operator types of a static Paddle program."""
    return {op.type for block in read_program(pdmodel_path).blocks for op in block.ops}


def model_input_dtype(pdmodel_path, name="input_ids"):
    """The dtype ('int32'/'int64') the static program declares for its input `name`."""
    pb2 = framework_pb2()
    for var in read_program(pdmodel_path).blocks[0].vars:
        if var.name == name:
            dt = var.type.lod_tensor.tensor.data_type
            return {pb2.VarType.INT32: "int32", pb2.VarType.INT64: "int64"}.get(dt, str(dt))
    raise ValueError(f"{pdmodel_path}: the program has no input named {name!r}")


def static_param_count(pdmodel_path):
    """Elements of every persistable tensor of a static program (weights, INT8 tables and scales)."""
    total = 0
    for var in read_program(pdmodel_path).blocks[0].vars:
        if var.persistable and var.name not in ("feed", "fetch") and var.type.HasField("lod_tensor"):
            total += math.prod(max(d, 1) for d in var.type.lod_tensor.tensor.dims)
    return total


def model_size_mib(prefix):
    """Size of <prefix>.pdmodel + <prefix>.pdiparams in MiB."""
    return sum(os.path.getsize(prefix + ext) for ext in (".pdmodel", ".pdiparams")) / 2 ** 20
