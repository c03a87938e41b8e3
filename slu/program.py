"""Reading exported static programs without importing Paddle: ops, input dtype, parameter count, size. Two formats:
<prefix>.pdmodel (ProgramDesc protobuf, which every runtime here reads) and <prefix>.json (Paddle 3's PIR program,
which only Paddle 3's Inference reads); both take their weights from the same <prefix>.pdiparams.

Deployment processes (FastTokenizer + ONNX Runtime or Paddle Lite) use this to check a model before a runtime
loads it, without the ~250 MiB of the training stack.
"""
import importlib.util
import json
import math
import os
import struct
import sys

_FRAMEWORK_PB2 = None


def framework_pb2():
    """Paddle's ProgramDesc protobuf module. Loaded from its file, without importing paddle (about 250 MiB and
    seconds), so that deployment processes can read a program's ops and input dtype without the training stack;
    when paddle is already imported, its own module."""
    global _FRAMEWORK_PB2
    if _FRAMEWORK_PB2 is None:
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


def _tensor_field():
    """The VarType field of a dense tensor: `lod_tensor` in Paddle 2's framework.proto, renamed `dense_tensor` in
    Paddle 3 (same field number: the files are the same)."""
    fields = framework_pb2().VarType.DESCRIPTOR.fields_by_name
    return "lod_tensor" if "lod_tensor" in fields else "dense_tensor"


def dense_tensor(var_type):
    """A variable's dense tensor description (dims, data_type), under either release's field name."""
    return getattr(var_type, _tensor_field())


def is_dense_tensor(var_type):
    return var_type.HasField(_tensor_field())


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


PIR_PARAMETER_OP = "p"


def program_file(prefix):
    """<prefix>.pdmodel when it exists, else Paddle 3's PIR program <prefix>.json; a clear error when neither does."""
    for ext in (".pdmodel", ".json"):
        if os.path.isfile(prefix + ext):
            return prefix + ext
    raise FileNotFoundError(f"model file not found: {prefix}.pdmodel (nor Paddle 3's PIR program {prefix}.json)")


def is_pir(path):
    return path.endswith(".json")


def read_pir(json_path):
    """The operators of a PIR program file (every block, nested regions included), as their JSON objects."""
    try:
        with open(json_path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
        if doc["base_code"]["magic"] != "pir":
            raise ValueError("no 'pir' magic")
        ops, regions = [], list(doc["program"]["regions"])
        while regions:
            for block in regions.pop()["blocks"]:
                for op in block["ops"]:
                    ops.append(op)
                    regions.extend(op.get("regions", []))
        if not all(isinstance(op["#"], str) for op in ops):
            raise ValueError("an operator without a name")
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {json_path}") from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{json_path}: not a Paddle PIR program ({type(e).__name__}: {e})") from None
    if not ops:
        raise ValueError(f"{json_path}: not a Paddle PIR program (no operators)")
    return ops


def _pir_op_type(op):
    """'1.matmul' -> 'matmul' (the number is the op's dialect)."""
    return op["#"].split(".", 1)[-1]


def program_ops(path):
    """Operator types of a static Paddle program (.pdmodel, or a PIR .json: its op names without the dialect)."""
    if is_pir(path):
        return {_pir_op_type(op) for op in read_pir(path) if op["#"] != PIR_PARAMETER_OP}
    return {op.type for block in read_program(path).blocks for op in block.ops}


def _pir_input_dtype(json_path, name):
    for op in read_pir(json_path):
        if _pir_op_type(op) != "data":
            continue
        attrs = {a.get("N"): a.get("AT", {}).get("D") for a in op.get("A", []) if isinstance(a, dict)}
        if attrs.get("name") == name:
            return str(attrs.get("dtype"))
    raise ValueError(f"{json_path}: the program has no input named {name!r}")


def model_input_dtype(pdmodel_path, name="input_ids"):
    """The dtype ('int32'/'int64') the static program (.pdmodel or PIR .json) declares for its input `name`."""
    if is_pir(pdmodel_path):
        return _pir_input_dtype(pdmodel_path, name)
    pb2 = framework_pb2()
    for var in read_program(pdmodel_path).blocks[0].vars:
        if var.name == name:
            dt = dense_tensor(var.type).tensor.data_type
            return {pb2.VarType.INT32: "int32", pb2.VarType.INT64: "int64"}.get(dt, str(dt))
    raise ValueError(f"{pdmodel_path}: the program has no input named {name!r}")


def static_param_count(pdmodel_path):
    """Elements of every persistable tensor of a static program (weights, INT8 tables and scales)."""
    total = 0
    for var in read_program(pdmodel_path).blocks[0].vars:
        if var.persistable and var.name not in ("feed", "fetch") and is_dense_tensor(var.type):
            total += math.prod(max(d, 1) for d in dense_tensor(var.type).tensor.dims)
    return total


def model_size_mib(prefix):
    """Size of <prefix>.pdmodel + <prefix>.pdiparams in MiB."""
    return sum(os.path.getsize(prefix + ext) for ext in (".pdmodel", ".pdiparams")) / 2 ** 20


# bytes per element of Paddle's VarType data types (framework.proto)
_DTYPE_BYTES = {0: 1, 1: 2, 2: 4, 3: 8, 4: 2, 5: 4, 6: 8, 20: 1, 21: 1, 22: 2, 23: 8, 24: 16}


def check_params(prefix):
    """Walk <prefix>.pdiparams (the combined tensors paddle.jit.save writes, one per persistable variable of the
    program) and raise ValueError naming the file when it is truncated, padded, crafted or not a parameter file.
    Runtimes abort the whole process on such files (or loop on them) instead of raising. The walk only moves
    forward and reads each byte at most once, so it ends on any file."""
    path = prefix + ".pdiparams"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    program = program_file(prefix)
    if is_pir(program):
        expected = sum(1 for op in read_pir(program) if op["#"] == PIR_PARAMETER_OP)
    else:
        expected = sum(1 for v in read_program(program).blocks[0].vars
                       if v.persistable and v.name not in ("feed", "fetch") and is_dense_tensor(v.type))
    with open(path, "rb") as f:
        data = f.read()
    reader = _ParamReader(path, data)
    while reader.pos < len(data):
        if reader.count == expected:
            raise ValueError(f"{path}: truncated or corrupt (more data after the {expected} tensors of "
                             f"{program}, at byte {reader.pos} of {len(data)})")
        reader.tensor()
    if reader.count != expected:
        raise ValueError(f"{path}: holds {reader.count} tensors, {program} has {expected} parameters")


class _ParamReader:
    """Paddle's combined-parameter format, one tensor at a time: version (uint32, 0), LoD levels (uint64) and
    their sizes, tensor version (uint32), TensorDesc size (int32) and protobuf, then the data."""

    def __init__(self, path, data):
        self.path, self.data, self.pos, self.count = path, data, 0, 0

    def fail(self, what):
        raise ValueError(f"{self.path}: truncated or corrupt (tensor {self.count + 1} at byte "
                         f"{self.pos}: {what})")

    def take(self, n, what):
        if n < 0:
            self.fail(f"negative {what} size {n}")
        if self.pos + n > len(self.data):
            self.fail(f"{what} of {n} bytes runs past the end of the file at byte {len(self.data)}")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def number(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def tensor(self):
        if self.number("<I", "version") != 0:
            self.fail("unknown version")
        lod_levels = self.number("<Q", "LoD")
        if lod_levels > 8:
            self.fail(f"{lod_levels} LoD levels")
        for _ in range(lod_levels):
            self.take(self.number("<Q", "LoD level"), "LoD level")
        if self.number("<I", "tensor version") != 0:
            self.fail("unknown tensor version")
        header = self.take(self.number("<i", "header"), "header")
        try:
            desc = framework_pb2().VarType.TensorDesc.FromString(header)
        except Exception:  # protobuf's DecodeError differs between implementations
            self.fail("bad tensor header")
        if desc.data_type not in _DTYPE_BYTES:
            self.fail(f"data type {desc.data_type}")
        if any(d < 0 for d in desc.dims):
            self.fail(f"negative dimension in {list(desc.dims)}")
        self.take(math.prod(desc.dims) * _DTYPE_BYTES[desc.data_type], "data")
        self.count += 1
