"""The recipe step's (k, d) × (d, d) products on the CPU, by who forms them.

At d ≥ 1000 three such products (``W P``, ``E₁ S``, ``Y S Pᵀ``) are nearly all of a
step's and of a polish evaluation's time. This times each way
:func:`linvae.mrvae._step.step_products` can form them, on one thread, in one run, so the
ratios hold on any machine: torch's ``mm`` (MKL in torch's CPU wheels), numpy's
``matmul`` (OpenBLAS in numpy's wheels), ``W P`` as a triangular product (``P`` lower
triangular: half the arithmetic), and each in float32 (Adam's precision from d = 1024 on).

    python -m benchmarks.products --sizes 784,3025 --latent 64
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from linvae.mrvae._step import covariance_factors, step_products
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, positive_ints, write_result
from ._timing import machine


def _cpu_seconds(function, argument, repeats: int) -> float:
    """Median CPU seconds of ``function(argument)`` over ``repeats`` calls after one
    warm-up."""
    function(argument)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function(argument)
        times.append(time.process_time() - start)
    return float(np.median(times))


def factors(d: int, seed: int = 0):
    """A covariance S (d, d) of a random data set, its whitening factor P (lower
    triangular), P S and S Pᵀ, all float64."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(2 * d, d, generator=g, dtype=torch.float64)
    S = X.T @ X / (2 * d)
    L = torch.linalg.cholesky(S + 1e-3 * torch.eye(d, dtype=torch.float64))
    P = torch.linalg.solve_triangular(L, torch.eye(d, dtype=torch.float64), upper=False)
    return P, *covariance_factors(S, P, (L, 1e-3))


def run(sizes, k: int, repeats: int):
    """One row per (d, blas, dtype): CPU ms of each product and of the three together."""
    rows = []
    for d in sizes:
        P, PS, SPt = factors(d)
        W = torch.randn(k, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        for blas in ("torch", "numpy"):
            for dtype in (torch.float64, torch.float32):
                products = step_products(P, PS, SPt, dtype=dtype, blas=blas)
                ms = {
                    name: 1e3 * _cpu_seconds(getattr(products, name), W, repeats)
                    for name in ("encoder", "covariance", "back")
                }
                row = {"d": d, "k": k, "blas": blas, "dtype": str(dtype).split(".")[1], **ms}
                row["step"] = sum(ms.values())
                rows.append(row)
                log(f"d = {d} {blas} {row['dtype']}: {row['step']:.1f} ms")
        base = next(r["step"] for r in rows if r["d"] == d and r["blas"] == "torch"
                    and r["dtype"] == "float64")  # fmt: skip
        for row in rows:
            if row["d"] == d:
                row["speed-up"] = base / row["step"]
    return rows


def render(rows, command: str) -> str:
    lines = [
        f"CPU ms a product, one thread, median ({machine()}); `{command}`",
        "",
        "| d | k | blas | dtype | W P | E₁ S | Y S Pᵀ | all three | against torch float64 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['k']} | {r['blas']} | {r['dtype']} | {r['encoder']:.1f} | "
            f"{r['covariance']:.1f} | {r['back']:.1f} | {r['step']:.1f} | "
            f"{r['speed-up']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.products", description=__doc__)
    parser.add_argument("--sizes", type=positive_ints, default=[784, 3025])
    parser.add_argument("--latent", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default="products")
    args = parser.parse_args(argv)
    set_cpu_threads(1)
    rows = run(args.sizes, args.latent, args.repeats)
    command = command_line("benchmarks.products", argv)
    write_result(args.out, "products", {"command": command, "rows": rows},
                 render(rows, command))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
