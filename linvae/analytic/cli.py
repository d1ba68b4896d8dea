"""``python -m linvae.analytic``: the optimal linear β-VAE's rate-distortion curve for a data set.

Prints the curve as a table; ``--json``, ``--csv`` and ``--plot`` also write it to files
(atomically). A bad flag or data set gets one line on stderr and exit code 2.
"""

from __future__ import annotations

import io
import sys
import time

import numpy as np

from .._cli import (
    add_data_flags,
    command_parser,
    positive_float,
    positive_int,
    program,
    run_command,
    user_input,
)
from .._io import (
    atomic_write_text,
    check_output,
    figure_format,
    git_revision,
    versions,
    write_figure,
    write_json,
)
from ._curve import DEFAULT_GRID, DEFAULT_LATENT, beta_grid, rate_distortion
from ._moments import moments
from ._spectrum import active_latents, rank, spectrum
from ._units import (
    DISTORTION_LABELS,
    DISTORTION_UNITS,
    RATE_LABELS,
    RATE_UNITS,
    check_peak,
    curve_in_units,
)

PROG = program("analytic")


def build_parser():
    parser = command_parser("analytic")
    add_data_flags(parser)
    parser.add_argument(
        "--latent",
        type=positive_int,
        default=DEFAULT_LATENT,
        help=f"latent size k; latents beyond the data dimension stay collapsed (default: {DEFAULT_LATENT})",
    )
    parser.add_argument(
        "--betas",
        default=DEFAULT_GRID,
        help="full (from the spectrum: every switch of the optimum), paper (0.01:10:31), "
        f"'LO:HI:N' log-spaced, or a comma list (default: {DEFAULT_GRID})",
    )
    parser.add_argument(
        "--units", choices=RATE_UNITS, default="nats", help="rate in nats or bits (default: nats)"
    )
    parser.add_argument(
        "--distortion",
        choices=DISTORTION_UNITS,
        default="nll",
        help="distortion as the Gaussian negative log-likelihood (nll, nats), the mean squared "
        "error per dimension (mse) or its PSNR in dB (psnr) (default: nll)",
    )
    parser.add_argument(
        "--peak",
        type=positive_float,
        default=1.0,
        help="the largest value of a datum, for PSNR; at least the data's largest |x| "
        "(default: 1, data in [0, 1])",
    )
    parser.add_argument("--json", metavar="PATH", help="write the curve as JSON")
    parser.add_argument("--csv", metavar="PATH", help="write the curve as CSV")
    parser.add_argument("--plot", metavar="PATH", help="write the rate-distortion plane (PNG/SVG)")
    parser.add_argument("--quiet", action="store_true", help="print no table")
    return parser


def curve_record(info, n, d, k, data_rank, betas, curve, eigvals, seconds, units=None) -> dict:
    """The curve and its provenance as a JSON-ready dict, rate and distortion in ``units``.

    ``units`` is ``{"rate": "nats"|"bits", "distortion": "nll"|"mse"|"psnr", "peak": float}``
    (nats and nll by default); the loss stays the β-VAE objective in nats.
    """
    units = {"rate": "nats", "distortion": "nll", "peak": 1.0, **(units or {})}
    rate, distortion = curve_in_units(curve, d, units["rate"], units["distortion"], units["peak"])
    described = (
        f"rate in {units['rate']} per example; distortion: "
        + {
            "nll": "Gaussian negative log-likelihood in nats per example, including d/2·log 2π",
            "mse": "mean squared error per dimension",
            "psnr": f"PSNR in dB, peak {units['peak']:g}",
        }[units["distortion"]]
        + "; loss (distortion + β·rate) in nats per example"
    )
    return {
        "linvae_version": versions()["linvae"],
        "versions": versions(),
        "git_revision": git_revision(),
        "dataset": {**info.to_dict(), "n": n, "d": d, "rank": data_rank},
        "latent": k,
        "units": {**units, "description": described},
        "betas": betas,
        "rate": rate,
        "distortion": distortion,
        "loss": curve.loss,
        "active_latents": active_latents(eigvals, k, betas),
        "eigenvalues": eigvals,
        "seconds": seconds,
    }


COLUMNS = ("betas", "rate", "distortion", "loss", "active_latents")


def curve_rows(record):
    """(β, rate, distortion, loss, active latents) per β of the record."""
    return zip(*(record[column] for column in COLUMNS), strict=True)


def render_table(record) -> str:
    lines = [
        f"# optimal linear β-VAE on {record['dataset']['name']}: n = {record['dataset']['n']}, "
        f"d = {record['dataset']['d']}, rank = {record['dataset']['rank']}, k = {record['latent']}",
        f"# {record['units']['description']}",
        f"{'beta':>12} {'rate':>14} {'distortion':>14} {'loss':>14} {'active':>7}",
    ]
    for beta, rate, distortion, loss, active in curve_rows(record):
        # %g: an MSE of tiny data (1e-17) keeps its digits where %f would print 0
        lines.append(f"{beta:12.6g} {rate:14.8f} {distortion:14.10g} {loss:14.8f} {active:7d}")
    return "\n".join(lines) + "\n"


def render_csv(record) -> str:
    out = io.StringIO()
    out.write("beta,rate,distortion,loss,active_latents\n")
    for *values, active in curve_rows(record):
        out.write(",".join(repr(float(v)) for v in values) + f",{int(active)}\n")
    return out.getvalue()


def render_plot(record, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 4.0), layout="constrained")
    points = axis.scatter(
        record["rate"], record["distortion"], c=np.log10(record["betas"]), cmap="viridis", s=14
    )
    axis.plot(record["rate"], record["distortion"], color="0.5", linewidth=0.8, zorder=0)
    axis.set_xlabel(RATE_LABELS[record["units"]["rate"]])
    axis.set_ylabel(DISTORTION_LABELS[record["units"]["distortion"]])
    axis.set_title(
        f"optimal linear β-VAE, {record['dataset']['name']} (d = {record['dataset']['d']}, "
        f"k = {record['latent']})"
    )
    figure.colorbar(points, label="log10 β")
    write_figure(figure, path, dpi=150)
    plt.close(figure)


def _check_outputs(args) -> None:
    """Every output path, checked before any work (a figure's format from its suffix)."""
    for flag, path in (("--json", args.json), ("--csv", args.csv), ("--plot", args.plot)):
        if path is not None:
            user_input(flag, check_output, path)
    if args.plot is not None:
        user_input("--plot", figure_format, args.plot)


def run(args) -> int:
    """The command: compute the curve, print it, write the files asked for."""
    from ..data import load

    _check_outputs(args)
    started = time.perf_counter()
    X, info = user_input(
        f"--dataset {args.dataset}:", lambda: load(args.dataset, n=args.n, seed=args.seed)
    )
    if args.distortion == "psnr":
        user_input("--peak", check_peak, args.peak, np.max(np.abs(X)))
    stats = user_input("--dataset:", moments, X)
    spec = spectrum(stats.cov)
    betas, _ = user_input("--betas", beta_grid, args.betas, spec.eigvals, args.latent)
    curve = rate_distortion(spec.eigvals, args.latent, betas)
    seconds = time.perf_counter() - started
    n, d = X.shape
    units = {"rate": args.units, "distortion": args.distortion, "peak": args.peak}
    record = curve_record(
        info, n, d, args.latent, rank(spec), betas, curve, spec.eigvals, seconds, units
    )
    if not args.quiet:
        sys.stdout.write(render_table(record))
    if args.json:
        user_input("--json", write_json, args.json, record)
    if args.csv:
        user_input("--csv", atomic_write_text, args.csv, render_csv(record))
    if args.plot:
        user_input("--plot", render_plot, record, args.plot)
    return 0


def main(argv=None) -> int:
    """Entry point of ``python -m linvae.analytic``; returns the exit status."""
    return run_command(PROG, build_parser(), run, argv)
