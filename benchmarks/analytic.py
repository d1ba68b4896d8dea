"""Speed of the closed forms, as ratios measured in one run on one machine.

``python -m benchmarks.analytic [--d 784] [--betas 10000] [--n 60000] [--markdown PATH]``

1. ``rate_distortion`` for many β after one eigendecomposition, against the naive form
   ``objective(optimum(spectrum, k, β), ...)`` called once per β (timed on a subset of β
   and reported per β), and against the direct elementwise form (an m × k array of logs).
2. ``moments`` (chunked, Chan's update, float64) against a plain ``X.T @ X`` on the
   centred data, the GEMM it cannot beat.
"""

import argparse
import sys

import numpy as np

from linvae.analytic import moments, objective, optimum, rate_distortion, spectrum

from ._timing import machine, median_seconds


def elementwise_curve(eigvals, k, betas):
    """The curve summed directly over an (m, k) array: the straightforward vectorised form."""
    top = eigvals[:k][None, :]
    b = betas[:, None]
    rate = 0.5 * np.sum(np.log(np.maximum(top, b) / b), axis=1)
    error = np.sum(np.minimum(top, b), axis=1) + np.sum(eigvals[k:])
    distortion = 0.5 * len(eigvals) * np.log(2 * np.pi) + 0.5 * error
    return rate, distortion, distortion + betas * rate


def run(d=784, k=None, n_betas=10_000, n=60_000, seed=0):
    rng = np.random.default_rng(seed)
    k = d // 2 if k is None else k
    # A covariance with a power-law spectrum (as natural images have) and a few exact zeros.
    eigvals = np.concatenate([10.0 * np.arange(1, d - 4 + 1, dtype=float) ** -1.5, np.zeros(4)])
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    cov = (V * eigvals) @ V.T
    cov = (cov + cov.T) / 2
    betas = np.geomspace(1e-4, 1e2, n_betas)
    rows = []

    t_eig = median_seconds(lambda: spectrum(cov), repeats=3)
    spec = spectrum(cov)
    t_curve = median_seconds(lambda: rate_distortion(spec.eigvals, k, betas))
    t_elementwise = median_seconds(lambda: elementwise_curve(spec.eigvals, k, betas), repeats=3)
    subset = betas[:: max(1, n_betas // 20)]
    mean = np.zeros(d)
    t_naive_subset = median_seconds(
        lambda: [objective(optimum(spec, k, b), mean, cov, b) for b in subset], repeats=1
    )
    t_naive_per_beta = t_naive_subset / len(subset)
    rows += [
        ("spectrum (one eigendecomposition)", f"d = {d}", t_eig, None),
        (f"rate_distortion, {n_betas} β", f"d = {d}, k = {k}", t_curve, 1.0),
        (
            f"elementwise form, {n_betas} β",
            f"d = {d}, k = {k}",
            t_elementwise,
            t_elementwise / t_curve,
        ),
        (
            f"objective(optimum(...)) per β × {n_betas} (timed on {len(subset)})",
            f"d = {d}, k = {k}",
            t_naive_per_beta * n_betas,
            t_naive_per_beta * n_betas / t_curve,
        ),
    ]

    X = rng.standard_normal((n, d)) + 3.0
    t_moments = median_seconds(lambda: moments(X), repeats=3)

    def plain_gemm():
        centred = X - X.mean(axis=0)
        return centred.T @ centred / n

    t_gemm = median_seconds(plain_gemm, repeats=3)
    rows += [
        ("moments (chunked, Chan)", f"n = {n}, d = {d}", t_moments, t_moments / t_gemm),
        ("plain centred X.T @ X", f"n = {n}, d = {d}", t_gemm, 1.0),
    ]
    return rows


def render(rows, command):
    lines = [
        f"Machine: {machine()}. Command: `{command}`. Median of repeated runs; "
        "ratio = time / time of the row marked 1.00 in its group.",
        "",
        "| what | size | median time | ratio |",
        "|---|---|---|---|",
    ]
    for what, size, seconds, ratio in rows:
        shown = f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"
        lines.append(f"| {what} | {size} | {shown} | {'' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analytic", description=__doc__)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--k", type=int, default=None, help="latent size (default d/2)")
    parser.add_argument("--betas", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=60_000)
    args = parser.parse_args(argv)
    command = "python -m benchmarks.analytic " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    table = render(run(args.d, args.k, args.betas, args.n), command.strip())
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
