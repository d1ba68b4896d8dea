"""Figures of a comparison report, drawn from the report's JSON alone (matplotlib, Agg).

No pyplot state is used: each figure is a ``matplotlib.figure.Figure`` rendered to bytes
and written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from linvae._io import write_figure

FIGURE_NAMES = ("rate_distortion", "excess", "responses")


def rate_distortion_figure(report: dict) -> Figure:
    """Distortion against rate: the analytic curve, the MR-VAE's curve, the β-VAEs."""
    figure = Figure(figsize=(5.5, 4.0))
    axes = figure.add_subplot()
    analytic = report["analytic"]
    axes.plot(
        analytic["rate"], analytic["distortion"], "k-", lw=2.5, alpha=0.35, label="analytic optimum"
    )
    mrvae = report["mrvae"]
    axes.plot(mrvae["rate"], mrvae["distortion"], "o-", ms=3, lw=1, color="C0", label="MR-VAE")
    if report["beta_vae"]:
        axes.plot(
            [b["rate"] for b in report["beta_vae"]],
            [b["distortion"] for b in report["beta_vae"]],
            "s",
            ms=6,
            mfc="none",
            color="C3",
            label="β-VAEs",
        )
    axes.set_xlabel("rate (nats / example)")
    axes.set_ylabel("distortion (nats / example)")
    axes.set_title(f"{report['dataset']['name']}, k = {report['latent']}")
    axes.legend(frameon=False)
    return figure


def excess_figure(report: dict) -> Figure:
    """Excess loss over the optimum against β (log axes; values ≤ 1e-8 drawn at 1e-8)."""
    figure = Figure(figsize=(5.5, 4.0))
    axes = figure.add_subplot()
    floor = 1e-8
    betas = np.asarray(report["betas"])
    axes.plot(
        betas,
        np.maximum(report["mrvae"]["excess"], floor),
        "o-",
        ms=3,
        color="C0",
        label="MR-VAE (one model)",
    )
    if report["beta_vae"]:
        axes.plot(
            [b["beta"] for b in report["beta_vae"]],
            np.maximum([b["excess"] for b in report["beta_vae"]], floor),
            "s",
            ms=6,
            mfc="none",
            color="C3",
            label="β-VAE at its β",
        )
    axes.axhline(0.01, color="k", ls=":", lw=1, label="0.01 nats")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("β")
    axes.set_ylabel("loss − optimum (nats / example)")
    axes.legend(frameon=False)
    return figure


def floor_figure(report: dict) -> Figure:
    """Excess = representation floor + optimisation part, against β (log axes, clipped at 1e-8).

    Only for a report with a floor (not ``--floor none``).
    """
    mrvae = report["mrvae"]
    clip = 1e-8
    betas = np.asarray(report["betas"])
    figure = Figure(figsize=(5.5, 4.0))
    axes = figure.add_subplot()
    gates = "/".join(
        mrvae["floor"]["gates"][key] for key in ("encoder_gate", "decoder_gate", "covariance_gate")
    )
    axes.plot(
        betas,
        np.maximum(mrvae["excess"], clip),
        "o-",
        ms=3,
        color="C0",
        label="excess (trained MR-VAE)",
    )
    axes.plot(
        betas,
        np.maximum(mrvae["floor"]["floor"], clip),
        "-",
        color="C2",
        label=f"representation floor ({gates})",
    )
    axes.plot(
        betas,
        np.maximum(mrvae["floor"]["optimisation_part"], clip),
        ":",
        color="C1",
        label="optimisation part",
    )
    if "paper_floor" in mrvae:
        axes.plot(betas, np.maximum(mrvae["paper_floor"]["floor"], clip), "--", color="C3",
                  label="floor of the paper's gates (sigmoid/sqrt/sigmoid)")  # fmt: skip
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("β")
    axes.set_ylabel("nats / example (values ≤ 1e-8 drawn at 1e-8)")
    axes.set_title("floors are upper bounds (fitted by L-BFGS)", fontsize=9)
    axes.legend(frameon=False, fontsize=8)
    return figure


def responses_figure(report: dict) -> Figure:
    """Singular values of D(β) and sorted c(β): learned (points) against analytic (lines)."""
    response = report["mrvae"]["response"]
    betas = np.asarray(report["betas"])
    figure = Figure(figsize=(10.0, 4.0))
    left, right = figure.subplots(1, 2)
    for axes, learned, analytic, label in (
        (left, "singular_values", "analytic_singular_values", "singular values of D(β)"),
        (right, "variances", "analytic_variances", "posterior variances c(β), sorted"),
    ):
        learned_values = np.asarray(response[learned])
        analytic_values = np.asarray(response[analytic])
        axes.plot(betas, analytic_values, "-", color="0.6", lw=1)
        axes.plot(betas, learned_values, ".", color="C0", ms=2.5)
        axes.plot([], [], "-", color="0.6", label="analytic (eq. 21, 23)")
        axes.plot([], [], ".", color="C0", label="MR-VAE")
        axes.set_xscale("log")
        axes.set_xlabel("β")
        axes.set_title(label)
        axes.legend(frameon=False)
    right.set_yscale("log")
    return figure


_DRAWERS = {
    "rate_distortion": rate_distortion_figure,
    "excess": excess_figure,
    "responses": responses_figure,
    "floor": floor_figure,
}


def figure_files(report: dict, formats=("png",)) -> dict:
    """The figures a report has, as ``{name: {fmt: file name}}`` (the floor's only with a floor)."""
    names = [name for name in _DRAWERS if name != "floor" or "floor" in report["mrvae"]]
    return {name: {fmt: f"{name}.{fmt}" for fmt in formats} for name in names}


def write_figures(report: dict, out_dir, formats=("png",)) -> dict:
    """Draw every figure into ``out_dir`` in each format; returns ``{name: {fmt: file name}}``."""
    out_dir = Path(out_dir)
    files = figure_files(report, formats)
    for name, by_format in files.items():
        figure = _DRAWERS[name](report)
        for fmt, file_name in by_format.items():
            write_figure(figure, out_dir / file_name, fmt, dpi=110, bbox_inches="tight")
    return files
