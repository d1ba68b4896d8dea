"""Figures of a comparison report, drawn from the report's JSON alone (matplotlib, Agg).

The displays of :mod:`linvae.compare.display` draw them; no pyplot state is used: each
figure is a ``matplotlib.figure.Figure`` rendered to bytes and written atomically.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from linvae._io import write_figure

from .display import ExcessDisplay, RateDistortionDisplay, ResponseDisplay


def _figure(size):
    figure = Figure(figsize=size)
    return figure, figure.add_subplot()


def rate_distortion_figure(report: dict) -> Figure:
    """Distortion against rate: the analytic curve, the MR-VAE's curve, the β-VAEs."""
    figure, axes = _figure((5.5, 4.0))
    units = report.get("units", {})
    RateDistortionDisplay.from_report(report).plot(
        axes,
        rate_unit=units.get("rate", "nats"),
        distortion_unit=units.get("distortion", "nll"),
        peak=units.get("peak", 1.0),
    )
    return figure


def excess_figure(report: dict) -> Figure:
    """Excess over the optimum against β, per β or in nats as ``report["units"]["excess"]``
    says (log axes; values ≤ 1e-8 drawn at 1e-8)."""
    figure, axes = _figure((5.5, 4.0))
    unit = report.get("units", {}).get("excess", "per-beta")
    ExcessDisplay.from_report(report).plot(axes, unit=unit)
    return figure


def floor_figure(report: dict) -> Figure:
    """Excess = representation floor + optimisation part, against β (a report with a floor)."""
    figure, axes = _figure((5.5, 4.0))
    ExcessDisplay.from_report(report, floor=True).plot(axes)
    return figure


def responses_figure(report: dict) -> Figure:
    """Singular values of D(β) and sorted c(β): learned (points) against analytic (lines)."""
    figure = Figure(figsize=(10.0, 4.0))
    ResponseDisplay.from_report(report).plot(figure.subplots(1, 2))
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
