"""Paddle Lite 2.13rc0 for Paddle 2.6 exports: rewrite what Lite cannot take as exported, convert to a `.nb` file
(cached next to the model), and run it with Lite's own Python API (FastDeploy's x86 wheel has no Paddle Lite
backend).

The rewrite (outputs unchanged; Paddle Inference gives the same outputs on both programs):
- 0-D tensors (Python scalars become `fill_constant` with shape []) are given shape [1]. Lite converts the program
  as exported, but its `.nb` aborts at run time ("fill_constant ... no valid out_shape"); FastDeploy's OpenVINO
  backend fails to convert it ("Fail to convert fill_constant"). `rewrite_0d` is this rewrite alone (OpenVINO).
- QAT programs only: a `scale` that feeds a matmul's X (the query's 1/sqrt(head_dim)) is moved after the matmul
  (scale(q) @ k^T == scale(q @ k^T)). Lite's arm `transformer_attention_fuse_pass`, which runs only for INT8
  models, reads INT8 scales from the attention matmuls, which PaddleSlim's QAT leaves in float, and aborts the
  arm conversion ("No attributes called X0_scale found for matmul_v2"). With the scale after the matmul the pass
  does not match; the fc layers still get Lite's INT8 arm kernels.
Paddle Lite 2.10 needed more (matmul_v2 -> matmul, XShape outputs, an int64 cast of int32 ids, dropout
attributes); 2.13rc0 converts those as exported, for x86 and arm.

Targets: every stage converts for arm (phones, ARM boards). An arm `.nb` runs on Lite's ARM kernels in deploy/cpp's
`lite_demo` (the armv8 light API built by scripts/build_lite_arm.sh; here under qemu, tests/test_deploy_arm.py), not
in this Python API, whose wheel is x86 only. On x86, the `.nb` this Python API runs (`--backend paddle_lite`), the
INT8 stages are refused (slu/backends.py): the QAT program's x86 `.nb` returns NaN, and `dequantize_log` has no x86
kernel.
"""
import os
import subprocess
import sys
from importlib import metadata

from slu import envs, program
from slu.backends import QAT_OPS, refusal

TARGETS = ("x86", "arm")


def _attr(op, name):
    for a in op.attrs:
        if a.name == name:
            return a
    return None


def _args(slots, parameter):
    return [a for s in slots if s.parameter == parameter for a in s.arguments]


def _set_args(slots, parameter, names):
    for s in slots:
        if s.parameter == parameter:
            s.arguments[:] = names


def _zero_d_to_1d(block, framework_pb2):
    """0-D `fill_constant` outputs and 0-D variables -> shape [1]."""
    changes = []
    for op in block.ops:
        if op.type == "fill_constant":
            shape = _attr(op, "shape")
            if shape is not None and len(shape.longs) == 0 and len(shape.ints) == 0:
                if shape.type == framework_pb2.LONGS:
                    shape.longs.append(1)
                else:
                    shape.type = framework_pb2.INTS
                    shape.ints.append(1)
                changes.append("0-D fill_constant->[1]")
    for v in block.vars:
        t = v.type
        if program.is_dense_tensor(t) and not v.persistable and len(program.dense_tensor(t).tensor.dims) == 0 \
                and v.name not in ("feed", "fetch"):
            program.dense_tensor(t).tensor.dims.append(1)
            changes.append("0-D var->[1]")
    return changes


def _scale_after_matmul(block):
    """scale(a) -> x; matmul(x, k) -> y   becomes   matmul(a, k) -> x; scale(x) -> y, for a bias-free scale whose
    output only that matmul reads."""
    ops = list(block.ops)
    readers = {}
    for op in ops:
        for name in {a for s in op.inputs for a in s.arguments}:
            readers[name] = readers.get(name, 0) + 1
    producer = {a: op for op in ops for s in op.outputs for a in s.arguments}
    varmap = {v.name: v for v in block.vars}
    moved = []
    for mm in ops:
        if mm.type not in ("matmul", "matmul_v2"):
            continue
        x = _args(mm.inputs, "X")[0]
        sc = producer.get(x)
        bias = _attr(sc, "bias") if sc is not None else None
        if sc is None or sc.type != "scale" or readers.get(x) != 1 or _args(sc.inputs, "ScaleTensor") \
                or (bias is not None and bias.f != 0):
            continue
        a, y = _args(sc.inputs, "X")[0], _args(mm.outputs, "Out")[0]
        _set_args(mm.inputs, "X", [a])
        _set_args(mm.outputs, "Out", [x])
        _set_args(sc.inputs, "X", [x])
        _set_args(sc.outputs, "Out", [y])
        varmap[x].type.CopyFrom(varmap[y].type)  # x now holds the matmul's output
        moved.append(sc)
    if moved:
        order = [op for op in ops if not any(op is sc for sc in moved)]
        for sc in moved:
            out = _args(sc.inputs, "X")[0]
            k = next(i for i, op in enumerate(order) if out in _args(op.outputs, "Out"))
            order.insert(k + 1, sc)
        copies = []
        for op in order:
            c = type(op)()
            c.CopyFrom(op)
            copies.append(c)
        del block.ops[:]
        block.ops.extend(copies)
    return ["scale after matmul"] * len(moved)


def _rewrite(pdmodel_in, pdmodel_out, int8_attention):
    framework_pb2 = program.framework_pb2()
    prog = program.read_program(pdmodel_in)
    block = prog.blocks[0]
    changes = _zero_d_to_1d(block, framework_pb2)
    if int8_attention and {op.type for op in block.ops} & QAT_OPS:
        changes += _scale_after_matmul(block)
    with open(pdmodel_out, "wb") as f:
        f.write(prog.SerializeToString())
    return changes


def rewrite_for_lite(pdmodel_in, pdmodel_out):
    """Write the copy of a static program that Paddle Lite 2.13rc0 converts and runs (x86 and arm). Returns the list
    of changes made."""
    return _rewrite(pdmodel_in, pdmodel_out, int8_attention=True)


def rewrite_0d(pdmodel_in, pdmodel_out):
    """Write a copy of a static program with its 0-D tensors given shape [1] (FastDeploy's OpenVINO backend)."""
    return _rewrite(pdmodel_in, pdmodel_out, int8_attention=False)


_CONVERT = r"""
import sys
import paddlelite.lite as lite
opt = lite.Opt()
opt.set_model_file(sys.argv[1]); opt.set_param_file(sys.argv[2])
opt.set_valid_places(sys.argv[4]); opt.set_model_type("naive_buffer"); opt.set_optimize_out(sys.argv[3])
opt.run()
"""


def lite_python():
    """The interpreter with Paddle Lite's Python package (the legacy environment's, from the default one)."""
    return envs.python_for("paddlelite")


def lite_version():
    python = lite_python()
    if python == sys.executable:
        return metadata.version("paddlelite")
    return subprocess.run([python, "-c", "from importlib import metadata; print(metadata.version('paddlelite'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def convert(prefix, target="x86"):
    """`<prefix>.<target>.nb`, converted once and cached: rebuilt when the model is newer or another Paddle Lite
    release wrote it (`<prefix>.<target>.nb.version` records which)."""
    if target not in TARGETS:
        raise ValueError(f"unknown Paddle Lite target {target!r}: x86 or arm")
    nb = f"{prefix}.{target}.nb"
    src = [prefix + ".pdmodel", prefix + ".pdiparams"]
    for p in src:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"model file not found: {p}")
    if target == "x86":  # the .nb this machine runs; arm .nb files run on phones
        why = refusal("paddle_lite", program.program_ops(prefix + ".pdmodel"))
        if why:
            raise ValueError(f"{prefix} on paddle_lite (x86): {why}")
    stamp, version = nb + ".version", lite_version()
    if os.path.isfile(nb) and os.path.getmtime(nb) >= max(os.path.getmtime(p) for p in src) \
            and os.path.isfile(stamp) and open(stamp).read().strip() == version:
        return nb
    program.check_params(prefix)  # the optimizer aborts on a corrupt parameter file
    lite_model = f"{prefix}.lite.pdmodel"
    rewrite_for_lite(prefix + ".pdmodel", lite_model)
    # the optimizer aborts the process on what it cannot convert: run it in a subprocess
    p = subprocess.run([lite_python(), "-c", _CONVERT, lite_model, prefix + ".pdiparams", nb[:-3], target],
                       capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(nb):
        lines = [x for x in (p.stdout + p.stderr).splitlines() if "rror" in x or "not supported" in x
                 or "Check failed" in x]
        raise RuntimeError(f"Paddle Lite optimizer failed on {prefix} for {target}: "
                           + ("; ".join(lines[-3:]) or (p.stdout + p.stderr)[-1500:]))
    with open(stamp, "w") as f:
        f.write(version + "\n")
    return nb


class LiteRuntime:
    """Runs a `.nb` with Paddle Lite's MobileConfig; ids [B, T] (int32 or int64) -> (intent, slot logits)."""

    def __init__(self, nb_path):
        import paddlelite.lite as lite

        if not nb_path.endswith(".x86.nb"):
            raise ValueError(f"{nb_path}: only x86 .nb files run in this Python API (an arm .nb returns garbage on x86; "
                             "deploy/cpp's lite_demo runs it on aarch64)")
        config = lite.MobileConfig()
        config.set_model_from_file(nb_path)  # Lite's Python MobileConfig has no thread setting
        self.predictor = lite.create_paddle_predictor(config)

    def __call__(self, ids, token_type_ids=None):
        self.predictor.get_input(0).from_numpy(ids)
        if token_type_ids is not None:
            self.predictor.get_input(1).from_numpy(token_type_ids)
        self.predictor.run()
        # numpy() views Lite's buffer, which the next run (or freeing the predictor) overwrites: copy
        return [self.predictor.get_output(0).numpy().copy(), self.predictor.get_output(1).numpy().copy()]
