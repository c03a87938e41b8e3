"""Paddle Lite 2.10 for Paddle 2.6 exports: rewrite the program so Lite's optimizer accepts it, convert to a
`.nb` file (cached next to the model), and run it with Lite's own Python API (FastDeploy's x86 wheel has no
Paddle Lite backend).

What Paddle Lite 2.10 rejects in a Paddle 2.6 export, and the rewrite (outputs unchanged):
- `matmul_v2` has no x86 kernel: written as `matmul` (trans_x/trans_y -> transpose_X/transpose_Y, alpha 1);
- `transpose2` / `unsqueeze2` / `reshape2` / `squeeze2` without their `XShape` output fail on arm: added;
- 0-D tensors (Python scalars become `fill_constant` with shape []): given shape [1];
- int32 ids into `lookup_table_v2`: a `cast` to int64 is inserted after the feed;
- `dropout` (identity at inference) lacks the `fix_seed`/`seed` attributes Lite reads: added.
QAT programs with `quantize_linear`/`dequantize_linear` and INT8 embeddings (`dequantize_log`) have no Lite
2.10 kernels; they are refused (slu/backends.py).
"""
import os
import subprocess
import sys

from slu import program
from slu.backends import refusal

XSHAPE_OPS = {"transpose2", "unsqueeze2", "reshape2", "squeeze2", "flatten_contiguous_range"}


def _attr(op, name):
    for a in op.attrs:
        if a.name == name:
            return a
    return None


def _set_bool(op, name, value, framework_pb2):
    a = _attr(op, name) or op.attrs.add()
    a.name, a.type, a.b = name, framework_pb2.BOOLEAN, bool(value)


def rewrite_for_lite(pdmodel_in, pdmodel_out):
    """Write a Lite-compatible copy of a static program. Returns the list of changes made."""
    framework_pb2 = program.framework_pb2()
    prog = program.read_program(pdmodel_in)
    why = refusal("paddle_lite", {op.type for b in prog.blocks for op in b.ops})
    if why:
        raise ValueError(f"{pdmodel_in} on paddle_lite: {why}")
    changes = []
    block = prog.blocks[0]
    varmap = {v.name: v for v in block.vars}
    for op in block.ops:
        if op.type == "matmul_v2":
            tx, ty = _attr(op, "trans_x"), _attr(op, "trans_y")
            op.type = "matmul"
            keep = [a for a in op.attrs if a.name not in ("trans_x", "trans_y")]
            del op.attrs[:]
            op.attrs.extend(keep)
            _set_bool(op, "transpose_X", tx.b if tx else False, framework_pb2)
            _set_bool(op, "transpose_Y", ty.b if ty else False, framework_pb2)
            a = op.attrs.add()
            a.name, a.type, a.f = "alpha", framework_pb2.FLOAT, 1.0
            changes.append("matmul_v2->matmul")
        if op.type == "dropout":  # Paddle 2.6 drops attributes Lite 2.10 reads (is_test: identity at inference)
            for name, kind, value in (("fix_seed", "b", False), ("seed", "i", 0)):
                if _attr(op, name) is None:
                    a = op.attrs.add()
                    a.name, a.type = name, framework_pb2.BOOLEAN if kind == "b" else framework_pb2.INT
                    setattr(a, kind, value)
                    changes.append(f"dropout+{name}")
        if op.type in XSHAPE_OPS and not any(o.parameter == "XShape" for o in op.outputs):
            out_name = [o for o in op.outputs if o.parameter == "Out"][0].arguments[0]
            name = out_name + ".xshape_for_lite"
            v = block.vars.add()
            v.name = name
            v.type.type = framework_pb2.VarType.LOD_TENSOR
            v.type.lod_tensor.tensor.data_type = varmap[out_name].type.lod_tensor.tensor.data_type
            v.type.lod_tensor.tensor.dims.extend([0])
            o = op.outputs.add()
            o.parameter = "XShape"
            o.arguments.append(name)
            changes.append(f"{op.type}+XShape")
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
        if t.type == framework_pb2.VarType.LOD_TENSOR and not v.persistable and len(t.lod_tensor.tensor.dims) == 0 \
                and v.name not in ("feed", "fetch"):
            t.lod_tensor.tensor.dims.append(1)
            changes.append("0-D var->[1]")
    # int32 ids: cast to int64 right after the feed, for lookup_table_v2
    feeds = [op.outputs[0].arguments[0] for op in block.ops if op.type == "feed"]
    for name in feeds:
        var = varmap[name]
        if var.type.lod_tensor.tensor.data_type != framework_pb2.VarType.INT32:
            continue
        users = [op for op in block.ops if op.type == "lookup_table_v2"
                 and any(i.parameter == "Ids" and name in i.arguments for i in op.inputs)]
        if not users:
            continue
        cast_name = name + ".int64_for_lite"
        v = block.vars.add()
        v.CopyFrom(var)
        v.name = cast_name
        v.type.lod_tensor.tensor.data_type = framework_pb2.VarType.INT64
        for op in users:
            for i in op.inputs:
                if i.parameter == "Ids":
                    i.arguments[:] = [cast_name if a == name else a for a in i.arguments]
        cast = framework_pb2.OpDesc()
        cast.type = "cast"
        x = cast.inputs.add()
        x.parameter, x.arguments[:] = "X", [name]
        o = cast.outputs.add()
        o.parameter, o.arguments[:] = "Out", [cast_name]
        for an, av in (("in_dtype", framework_pb2.VarType.INT32), ("out_dtype", framework_pb2.VarType.INT64)):
            a = cast.attrs.add()
            a.name, a.type, a.i = an, framework_pb2.INT, av
        last_feed = max(k for k, op in enumerate(block.ops) if op.type == "feed")
        ops = list(block.ops)
        ops.insert(last_feed + 1, cast)
        del block.ops[:]
        block.ops.extend(ops)
        changes.append("cast int32 ids->int64")
    with open(pdmodel_out, "wb") as f:
        f.write(prog.SerializeToString())
    return changes


_CONVERT = r"""
import sys
import paddlelite.lite as lite
opt = lite.Opt()
opt.set_model_file(sys.argv[1]); opt.set_param_file(sys.argv[2])
opt.set_valid_places(sys.argv[4]); opt.set_model_type("naive_buffer"); opt.set_optimize_out(sys.argv[3])
opt.run()
"""


def convert(prefix, target="x86"):
    """`<prefix>.<target>.nb`, converted once and cached (rebuilt when the model is newer)."""
    if target not in ("x86", "arm"):
        raise ValueError(f"unknown Paddle Lite target {target!r}: x86 or arm")
    nb = f"{prefix}.{target}.nb"
    src = [prefix + ".pdmodel", prefix + ".pdiparams"]
    for p in src:
        if not os.path.isfile(p):
            raise FileNotFoundError(f"model file not found: {p}")
    if os.path.isfile(nb) and os.path.getmtime(nb) >= max(os.path.getmtime(p) for p in src):
        return nb
    program.check_params(prefix)  # the optimizer aborts on a corrupt parameter file
    lite_model = f"{prefix}.lite.pdmodel"
    rewrite_for_lite(prefix + ".pdmodel", lite_model)
    # the optimizer aborts the process on what it cannot convert: run it in a subprocess
    p = subprocess.run([sys.executable, "-c", _CONVERT, lite_model, prefix + ".pdiparams", nb[:-3], target],
                       capture_output=True, text=True)
    if p.returncode != 0 or not os.path.isfile(nb):
        lines = [x for x in (p.stdout + p.stderr).splitlines() if "rror" in x or "not supported" in x]
        raise RuntimeError(f"Paddle Lite optimizer failed on {prefix} for {target}: "
                           + ("; ".join(lines[-3:]) or (p.stdout + p.stderr)[-1500:]))
    return nb


class LiteRuntime:
    """Runs a `.nb` with Paddle Lite's MobileConfig; ids [B, T] (int32 or int64) -> (intent, slot logits)."""

    def __init__(self, nb_path):
        import paddlelite.lite as lite

        if not nb_path.endswith(".x86.nb"):
            raise ValueError(f"{nb_path}: only x86 .nb files run on this machine (an arm .nb returns garbage here)")
        config = lite.MobileConfig()
        config.set_model_from_file(nb_path)  # Lite 2.10's Python MobileConfig has no thread setting
        self.predictor = lite.create_paddle_predictor(config)

    def __call__(self, ids, token_type_ids=None):
        self.predictor.get_input(0).from_numpy(ids)
        if token_type_ids is not None:
            self.predictor.get_input(1).from_numpy(token_type_ids)
        self.predictor.run()
        # numpy() views Lite's buffer, which the next run (or freeing the predictor) overwrites: copy
        return [self.predictor.get_output(0).numpy().copy(), self.predictor.get_output(1).numpy().copy()]
