"""The arithmetic limit of a model on this CPU: multiply-adds of an exported program at a sequence length, and
the peak of one core measured with a matrix multiply.

    .venv/bin/python benchmarks/arith.py --pdmodel output/nano/infer_model.pdmodel --seq_len 11
    .venv/bin/python benchmarks/arith.py --pdmodel output/nano/width_mult_0.75/int8.pdmodel --seq_len 11 \
        --arm_core cortex-a76

Multiply-adds are counted from the static program itself (every matmul_v2/matmul/mul with its operand shapes
from the ProgramDesc, batch 1, each unknown sequence dimension set to seq_len), so pruned programs count what
they run. Element-wise ops, softmax, layer norm and embedding lookups are not counted: they are memory-bound
and a small share of the work. The peak is float32 GFLOP/s of numpy's matrix multiply (OpenBLAS) on one thread
at a size where it runs at full speed, the best of several timings.

`--arm_core` adds the limit on a stated phone core, from its datasheet pipelines (nothing is measured, and no time
measured under qemu enters it): the matmuls with a weight operand (fc layers, which Paddle Lite's arm optimizer
gives INT8 kernels in an INT8 model) at the core's INT8 rate, the activation-by-activation ones (attention's
Q.K^T and P.V, which stay float) at its FP32 rate.
"""
import argparse
import json
import os
import subprocess
import sys

from slu import program

MATMUL_OPS = ("matmul_v2", "matmul", "mul")

# Multiply-adds per cycle of one core, from its pipelines, and a clock it ships at (stated, not measured here).
# Cortex-A76 (the big cores of e.g. Kirin 980 and Snapdragon 855, up to 2.6 GHz; Arm's Cortex-A76 Software
# Optimization Guide): two 128-bit ASIMD pipes (V0, V1), each issuing one FMLA .4S (4 FP32 multiply-adds) or one
# SDOT .4S (16 INT8 multiply-adds, the ARMv8.2 dot product Paddle Lite's armv8 build uses when the CPU has it) per
# cycle.
ARM_CORES = {
    "cortex-a76": {"ghz": 2.6, "fp32_macs_per_cycle": 8, "int8_macs_per_cycle": 32},
}


def _attr(op, name, default):
    for a in op.attrs:
        if a.name == name:
            return a.b if a.type == 6 else a.i  # BOOLEAN or INT
    return default


def matmul_shapes(pdmodel_path, seq_len, batch=1):
    """[(op type, X shape, Y shape, trans_x, trans_y, weight)] of every matmul in the program, unknown dims
    resolved: the first -1 of an operand is the batch, any later -1 is the sequence. `weight`: Y has no unknown
    dim (a weight, also where QAT dequantizes it first), against an activation of the batch."""
    prog = program.read_program(pdmodel_path)
    out = []
    for block in prog.blocks:
        shapes = {v.name: list(program.dense_tensor(v.type).tensor.dims) for v in block.vars}
        for op in block.ops:
            if op.type not in MATMUL_OPS:
                continue
            ins = {i.parameter: i.arguments[0] for i in op.inputs}
            resolved, weight = [], min(shapes.get(ins["Y"], [-1]) or [-1]) > 0
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
            out.append((op.type, resolved[0], resolved[1], tx, ty, weight))
    return out


def program_macs(pdmodel_path, seq_len, batch=1):
    """Multiply-adds of one forward pass of the program at this batch and sequence length."""
    return sum(split_macs(pdmodel_path, seq_len, batch))


def split_macs(pdmodel_path, seq_len, batch=1):
    """(multiply-adds of the matmuls with a weight operand, of those between two activations)."""
    weight, activation = 0, 0
    for typ, x, y, tx, ty, is_weight in matmul_shapes(pdmodel_path, seq_len, batch):
        macs = _macs(pdmodel_path, typ, x, y, tx, ty)
        if is_weight:
            weight += macs
        else:
            activation += macs
    return weight, activation


def _macs(pdmodel_path, typ, x, y, tx, ty):
    if typ == "mul":  # fc: X flattened to [rows, K] at x_num_col_dims (1 or 2 here), Y is [K, N]
        k, n = y
        rows = 1
        for d in x:
            rows *= d
        return rows // k * k * n
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
    return b * m * n * k


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


def arm_limit_ms(weight_macs, activation_macs, core, int8):
    """The time `core` (ARM_CORES) takes for the multiply-adds at its peak: weight matmuls at its INT8 rate when
    `int8`, everything else at its FP32 rate."""
    c = ARM_CORES[core]
    hz = c["ghz"] * 1e9
    weight_rate = c["int8_macs_per_cycle"] if int8 else c["fp32_macs_per_cycle"]
    return (weight_macs / weight_rate + activation_macs / c["fp32_macs_per_cycle"]) / hz * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdmodel", required=True)
    ap.add_argument("--seq_len", type=int, required=True)
    ap.add_argument("--arm_core", choices=sorted(ARM_CORES), help="also the limit on this phone core (datasheet)")
    ap.add_argument("--int8", action="store_true", help="with --arm_core: the weight matmuls at the INT8 rate "
                    "(default: when the program holds QAT ops)")
    a = ap.parse_args()
    weight, activation = split_macs(a.pdmodel, a.seq_len)
    macs = weight + activation
    g = peak_gflops()
    row = {"pdmodel": a.pdmodel, "seq_len": a.seq_len, "macs": macs, "weight_macs": weight,
           "activation_macs": activation, "peak_gflops_1_thread": round(g, 2), "limit_ms": round(limit_ms(macs, g), 4)}
    if a.arm_core:
        from slu.backends import QAT_OPS

        int8 = a.int8 or bool(program.program_ops(a.pdmodel) & QAT_OPS)
        row.update(arm_core=a.arm_core, arm_int8=int8, **ARM_CORES[a.arm_core],
                   arm_limit_ms=round(arm_limit_ms(weight, activation, a.arm_core, int8), 4))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
