"""The arithmetic limit of a model on this CPU: multiply-adds of an exported program at a sequence length, and
the peak of one core measured with a matrix multiply.

    .venv/bin/python benchmarks/arith.py --pdmodel output/nano/infer_model.pdmodel --seq_len 11

Multiply-adds are counted from the static program itself (every matmul_v2/matmul/mul with its operand shapes
from the ProgramDesc, batch 1, each unknown sequence dimension set to seq_len), so pruned programs count what
they run. Element-wise ops, softmax, layer norm and embedding lookups are not counted: they are memory-bound
and a small share of the work. The peak is float32 GFLOP/s of numpy's matrix multiply (OpenBLAS) on one thread
at a size where it runs at full speed, the best of several timings.
"""
import argparse
import json
import os
import subprocess
import sys

from slu import program

MATMUL_OPS = ("matmul_v2", "matmul", "mul")


def _attr(op, name, default):
    for a in op.attrs:
        if a.name == name:
            return a.b if a.type == 6 else a.i  # BOOLEAN or INT
    return default


def matmul_shapes(pdmodel_path, seq_len, batch=1):
    """[(op type, X shape, Y shape, trans_x, trans_y)] of every matmul in the program, unknown dims resolved:
    the first -1 of an operand is the batch, any later -1 is the sequence."""
    prog = program.read_program(pdmodel_path)
    out = []
    for block in prog.blocks:
        shapes = {v.name: list(v.type.lod_tensor.tensor.dims) for v in block.vars}
        for op in block.ops:
            if op.type not in MATMUL_OPS:
                continue
            ins = {i.parameter: i.arguments[0] for i in op.inputs}
            resolved = []
            for name in (ins["X"], ins["Y"]):
                if name not in shapes:
                    raise ValueError(f"{pdmodel_path}: {op.type} input {name} has no shape in the program")
                dims, seen = [], False
                for d in shapes[name]:
                    if d < 0:
                        d, seen = (seq_len if seen else batch), True
                    dims.append(d)
                resolved.append(dims)
            tx = bool(_attr(op, "trans_x", _attr(op, "transpose_X", False)))
            ty = bool(_attr(op, "trans_y", _attr(op, "transpose_Y", False)))
            out.append((op.type, resolved[0], resolved[1], tx, ty))
    return out


def program_macs(pdmodel_path, seq_len, batch=1):
    """Multiply-adds of one forward pass of the program at this batch and sequence length."""
    total = 0
    for typ, x, y, tx, ty in matmul_shapes(pdmodel_path, seq_len, batch):
        if typ == "mul":  # fc: X flattened to [rows, K] at x_num_col_dims (1 or 2 here), Y is [K, N]
            k, n = y
            rows = 1
            for d in x:
                rows *= d
            total += rows // k * k * n
            continue
        if len(x) == 1:
            x = [1] + x
        if len(y) == 1:
            y = y + [1]
        m, k = (x[-1], x[-2]) if tx else (x[-2], x[-1])
        k2, n = (y[-1], y[-2]) if ty else (y[-2], y[-1])
        if k != k2:
            raise ValueError(f"{pdmodel_path}: matmul inner sizes differ: X {x} Y {y} (trans {tx}, {ty})")
        lead = x[:-2] if len(x) >= len(y) else y[:-2]
        b = 1
        for d in lead:
            b *= d
        total += b * m * n * k
    return total


def peak_gflops(size=1024, repeats=7):
    """float32 GFLOP/s of one core: numpy matmul in a child process with every BLAS pool set to 1 thread."""
    code = (
        "import time, numpy as np\n"
        f"n = {size}\n"
        "a = np.random.rand(n, n).astype('float32'); b = np.random.rand(n, n).astype('float32')\n"
        "a @ b\n"
        "best = 1e9\n"
        f"for _ in range({repeats}):\n"
        "    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)\n"
        "print(2 * n ** 3 / best / 1e9)\n")
    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(p.stdout.strip().splitlines()[-1])


def limit_ms(macs, gflops):
    """The time the multiply-adds take at the peak: 2 FLOPs each."""
    return 2 * macs / (gflops * 1e9) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdmodel", required=True)
    ap.add_argument("--seq_len", type=int, required=True)
    a = ap.parse_args()
    macs = program_macs(a.pdmodel, a.seq_len)
    g = peak_gflops()
    print(json.dumps({"pdmodel": a.pdmodel, "seq_len": a.seq_len, "macs": macs, "peak_gflops_1_thread": round(g, 2),
                      "limit_ms": round(limit_ms(macs, g), 4)}))


if __name__ == "__main__":
    main()
