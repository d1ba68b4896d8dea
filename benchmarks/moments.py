"""Throughput of moments at data-set scale, as ratios measured in one run.

``python -m benchmarks.moments [--n 1000000] [--d 784] [--device cpu|cuda]``

Writes an (n, d) uint8 ``.npy`` to a temporary folder (n·d bytes; 784 MB by default) and
measures, each as a median of runs:

1. ``file_moments`` streaming it from disk (memory-mapped, float64 accumulation);
2. ``moments`` of the same data already in memory as float64 (the first ``--in-memory``
   rows, since n × d float64 may not fit);
3. numpy's plain ``Xc.T @ Xc`` on that in-memory block: the GEMM the covariance needs;
4. the float64 GEMM peak of the device, from a square ``A @ A`` of size 4096.

Throughput is in rows per second and GFLOP/s, counting n·d(d+1) flops for the scatter:
numpy (OpenBLAS) computes ``Xᵀ X`` as a symmetric rank-k update (syrk), which does the
upper triangle only, half the work of a general product. The peak is a general square
GEMM (2·size³ flops).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from linvae.analytic import moments
from linvae.data import file_moments

from ._timing import machine, median_seconds


def gemm_peak_gflops(device, size=4096):
    """Measured float64 GEMM rate of the device, in GFLOP/s (2·size³ flops a product)."""
    if device == "cpu":
        A = np.random.default_rng(0).standard_normal((size, size))
        seconds = median_seconds(lambda: A @ A, repeats=3)
    else:
        import torch

        A = torch.randn(size, size, dtype=torch.float64, device=device)

        def product():
            A @ A
            torch.cuda.synchronize()

        seconds = median_seconds(product, repeats=5)
    return 2 * size**3 / seconds / 1e9


def run(n, d, in_memory, device, chunk_size):
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npy"
        stored = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, d))
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            stored[start:stop] = rng.integers(0, 256, size=(stop - start, d), dtype=np.uint8)
        stored.flush()
        del stored
        accumulate = None if device == "cpu" else device
        t_file = median_seconds(
            lambda: file_moments(path, chunk_size=chunk_size, device=accumulate),
            repeats=3,
            warmup=1,
        )
        block = np.load(path, mmap_mode="r")[:in_memory].astype(np.float64)
    t_memory = median_seconds(lambda: moments(block, device=accumulate), repeats=3)

    def plain():
        centred = block - block.mean(axis=0)
        return centred.T @ centred

    t_plain = median_seconds(plain, repeats=3)
    peak = gemm_peak_gflops(device)

    def gflops(count, seconds):
        return count * d * (d + 1) / seconds / 1e9  # syrk: the upper triangle of Xᵀ X

    rows.append(("file_moments, uint8 .npy from disk", n, n / t_file, gflops(n, t_file)))
    rows.append(
        ("moments, float64 in memory", in_memory, in_memory / t_memory, gflops(in_memory, t_memory))
    )
    rows.append(
        (
            "numpy centred X.T @ X, in memory",
            in_memory,
            in_memory / t_plain,
            gflops(in_memory, t_plain),
        )
    )
    return rows, peak


def render(rows, peak, command, device):
    lines = [
        f"Machine: {machine()}; accumulation on {device}. Command: `{command}`. "
        f"Median of 3 runs. Float64 GEMM peak measured on the device: {peak:.1f} GFLOP/s.",
        "",
        "| what | rows | rows/s | GFLOP/s | share of GEMM peak |",
        "|---|---|---|---|---|",
    ]
    for what, count, rate, flops in rows:
        lines.append(f"| {what} | {count:,} | {rate:,.0f} | {flops:.1f} | {flops / peak:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.moments", description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--in-memory", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=65_536)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.moments " + " ".join(argv if argv is not None else sys.argv[1:])
    rows, peak = run(args.n, args.d, min(args.in_memory, args.n), args.device, args.chunk_size)
    sys.stdout.write(render(rows, peak, command.strip(), args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
