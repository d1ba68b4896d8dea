"""Display objects for notebooks and figures, in the manner of scikit-learn's displays.

Each display holds the numbers of one figure, is built from where they come from
(``from_run``, ``from_report``, ``from_curve``), and draws with ``plot(ax=None)``: the axes,
figure and artists are then ``ax_``, ``figure_`` and ``lines_``. The figures of a run folder
are drawn by these same classes (:mod:`linvae.compare.figures`). To lay your own model over
the optimum::

    display = RateDistortionDisplay.from_curve(cov, k=32, betas="full")
    display.add_point("my VAE", rate, distortion)  # exact terms, e.g. from linvae.audit
    display.plot(rate_unit="bits", distortion_unit="mse")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from linvae.analytic import (
    DISTORTION_UNITS,
    RATE_UNITS,
    as_spectrum,
    beta_grid,
    distortion_in,
    rate_distortion,
    rate_in,
)
from linvae.analytic._units import DISTORTION_LABELS, RATE_LABELS

#: Excess values at or below this are drawn at it on log axes.
EXCESS_CLIP = 1e-8


def _axes(ax, figsize):
    """``ax`` or a new figure's axes (pyplot's when matplotlib has a backend chosen)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


@dataclass
class RateDistortionDisplay:
    """The optimal rate-distortion curve, with learned curves and single models overlaid.

    Parameters
    ----------
    optimum : dict
        ``rate`` and ``distortion`` (arrays of shape (m,), nats per example) of the analytic
        optimum along a grid of β.
    d : int
        Data dimension (for distortion units other than nats).
    title : str
    curves : list of dict
        ``{"label", "rate", "distortion"}`` each: a model evaluated along β (an MR-VAE).
    points : list of dict
        ``{"label", "rate", "distortion"}`` each: models trained at one β each.
    """

    optimum: dict
    d: int
    title: str = ""
    curves: list = field(default_factory=list)
    points: list = field(default_factory=list)

    @classmethod
    def from_curve(cls, cov, k, betas="full", *, title=None):
        """The optimum of data with covariance ``cov`` (or its Spectrum) and latent size ``k``.

        ``betas`` is any grid :func:`linvae.analytic.beta_grid` takes (``"full"``, ``"paper"``,
        ``"LO:HI:N"``, values).
        """
        spec = as_spectrum(cov)
        grid, _ = beta_grid(betas, spec.eigvals, k)
        curve = rate_distortion(spec.eigvals, k, grid)
        optimum = {
            "betas": grid,
            "rate": curve.rate,
            "distortion": curve.distortion,
            "squared_error": curve.squared_error,
        }
        d = spec.eigvals.shape[0]
        return cls(optimum, d, title if title is not None else f"optimal linear β-VAE, k = {k}")

    @classmethod
    def from_report(cls, report: dict):
        """The curves of a compare report.json (as a dict): optimum, MR-VAE and β-VAEs."""
        keys = ("rate", "distortion", "squared_error")
        display = cls(
            {key: np.asarray(report["analytic"][key]) for key in keys if key in report["analytic"]},
            report["dataset"]["d"],
            f"{report['dataset']['name']}, k = {report['latent']}",
        )
        display.add_curve("MR-VAE", report["mrvae"]["rate"], report["mrvae"]["distortion"])
        if report["beta_vae"]:
            display.add_point(
                "β-VAEs",
                [b["rate"] for b in report["beta_vae"]],
                [b["distortion"] for b in report["beta_vae"]],
            )
        return display

    @classmethod
    def from_run(cls, path):
        """The curves of a run folder (its report.json)."""
        from .report import read_evaluated

        return cls.from_report(read_evaluated(Path(path) / "report.json"))

    def add_curve(self, label, rate, distortion):
        """Add a model evaluated along β (nats per example); returns the display."""
        self.curves.append({"label": label, "rate": rate, "distortion": distortion})
        return self

    def add_point(self, label, rate, distortion):
        """Add one or more models trained at one β each (nats per example); returns the display."""
        self.points.append({"label": label, "rate": rate, "distortion": distortion})
        return self

    def plot(self, ax=None, *, rate_unit="nats", distortion_unit="nll", peak=1.0):
        """Draw into ``ax`` (a new figure when None), in the units asked for.

        Parameters
        ----------
        rate_unit : {"nats", "bits"}
        distortion_unit : {"nll", "mse", "psnr"}
            Gaussian negative log-likelihood in nats, mean squared error per dimension, or
            PSNR in dB against ``peak``.

        Returns
        -------
        RateDistortionDisplay
            With ``ax_``, ``figure_`` and ``lines_`` (the artists, optimum first).
        """
        if rate_unit not in RATE_UNITS or distortion_unit not in DISTORTION_UNITS:
            raise ValueError(
                f"units must be one of {RATE_UNITS} and {DISTORTION_UNITS}, got "
                f"{rate_unit!r} and {distortion_unit!r}"
            )
        ax = _axes(ax, (5.5, 4.0))

        def units(entry):
            return (
                rate_in(entry["rate"], rate_unit),
                distortion_in(
                    entry["distortion"],
                    self.d,
                    distortion_unit,
                    peak,
                    squared_error=entry.get("squared_error"),
                ),
            )

        lines = ax.plot(*units(self.optimum), "k-", lw=2.5, alpha=0.35, label="analytic optimum")
        for i, curve in enumerate(self.curves):
            lines += ax.plot(*units(curve), "o-", ms=3, lw=1, color=f"C{i}", label=curve["label"])
        for i, point in enumerate(self.points):
            color = f"C{3 + i}"
            lines += ax.plot(
                *units(point), "s", ms=6, mfc="none", color=color, label=point["label"]
            )
        ax.set_xlabel(RATE_LABELS[rate_unit])
        ax.set_ylabel(DISTORTION_LABELS[distortion_unit])
        if self.title:
            ax.set_title(self.title)
        ax.legend(frameon=False)
        self.ax_, self.figure_, self.lines_ = ax, ax.figure, lines
        return self


@dataclass
class ExcessDisplay:
    """Excess loss over the optimum against β: one model along the grid, others at their β.

    Parameters
    ----------
    betas, excess : array_like of shape (m,)
        The grid and the MR-VAE's excess on it (nats per example).
    baselines : (betas, excess) or None
        The β-VAEs, each at its own β.
    floor : dict or None
        ``{"floor", "optimisation_part", "gates"}`` and optionally ``"paper_floor"``: drawn
        as the representation floor and the optimisation part (the floor figure).
    """

    betas: np.ndarray
    excess: np.ndarray
    baselines: tuple | None = None
    floor: dict | None = None

    @classmethod
    def from_report(cls, report: dict, *, floor: bool = False):
        """The excess of a compare report.json; ``floor`` adds the representation floor."""
        mrvae = report["mrvae"]
        baselines = None
        if report["beta_vae"] and not floor:
            baselines = (
                [b["beta"] for b in report["beta_vae"]],
                [b["excess"] for b in report["beta_vae"]],
            )
        floors = None
        if floor:
            floors = {**mrvae["floor"], "paper_floor": mrvae.get("paper_floor", {}).get("floor")}
        return cls(np.asarray(report["betas"]), np.asarray(mrvae["excess"]), baselines, floors)

    @classmethod
    def from_run(cls, path, *, floor: bool = False):
        from .report import read_evaluated

        return cls.from_report(read_evaluated(Path(path) / "report.json"), floor=floor)

    def plot(self, ax=None, *, unit: str = "nats"):
        """Draw on log axes (values ≤ 1e-8 at 1e-8); returns the display with ``lines_``.

        ``unit``: "nats" (per example) or "per-beta" (excess/β, nats of rate: free of the
        data's scale); the floor figure is in nats.
        """
        if unit not in ("nats", "per-beta"):
            raise ValueError(f"unit must be 'nats' or 'per-beta', got {unit!r}")
        ax = _axes(ax, (5.5, 4.0))
        clip = EXCESS_CLIP
        if self.floor is None:

            def per(betas):  # the divisor of the unit
                return np.asarray(betas, dtype=np.float64) if unit == "per-beta" else 1.0

            excess = np.asarray(self.excess) / per(self.betas)
            lines = ax.plot(self.betas, np.maximum(excess, clip), "o-", ms=3, color="C0",
                            label="MR-VAE (one model)")  # fmt: skip
            if self.baselines is not None:
                betas, excess = self.baselines
                excess = np.asarray(excess) / per(betas)
                lines += ax.plot(betas, np.maximum(excess, clip), "s", ms=6, mfc="none",
                                 color="C3", label="β-VAE at its β")  # fmt: skip
            level = "0.01 (excess/β)" if unit == "per-beta" else "0.01 nats"
            lines.append(ax.axhline(0.01, color="k", ls=":", lw=1, label=level))
            ax.set_ylabel(
                "(loss − optimum) / β (nats of rate)"
                if unit == "per-beta"
                else "loss − optimum (nats / example)"
            )
            legend = {}
        else:
            gates = "/".join(
                self.floor["gates"][key]
                for key in ("encoder_gate", "decoder_gate", "covariance_gate")
            )
            lines = ax.plot(self.betas, np.maximum(self.excess, clip), "o-", ms=3, color="C0",
                            label="excess (trained MR-VAE)")  # fmt: skip
            lines += ax.plot(self.betas, np.maximum(self.floor["floor"], clip), "-", color="C2",
                             label=f"representation floor ({gates})")  # fmt: skip
            lines += ax.plot(self.betas, np.maximum(self.floor["optimisation_part"], clip), ":",
                             color="C1", label="optimisation part")  # fmt: skip
            if self.floor.get("paper_floor") is not None:
                lines += ax.plot(self.betas, np.maximum(self.floor["paper_floor"], clip), "--",
                                 color="C3",
                                 label="floor of the paper's gates (sigmoid/sqrt/sigmoid)")  # fmt: skip
            ax.set_ylabel("nats / example (values ≤ 1e-8 drawn at 1e-8)")
            ax.set_title("floors are upper bounds (fitted by L-BFGS)", fontsize=9)
            legend = {"fontsize": 8}
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("β")
        ax.legend(frameon=False, **legend)
        self.ax_, self.figure_, self.lines_ = ax, ax.figure, lines
        return self


@dataclass
class ResponseDisplay:
    """Singular values of D(β) and sorted c(β): learned (points) against analytic (lines)."""

    betas: np.ndarray
    response: dict

    @classmethod
    def from_report(cls, report: dict):
        return cls(np.asarray(report["betas"]), report["mrvae"]["response"])

    @classmethod
    def from_run(cls, path):
        from .report import read_evaluated

        return cls.from_report(read_evaluated(Path(path) / "report.json"))

    def plot(self, axes=None):
        """Draw into two axes (a new figure of two when None); returns the display."""
        if axes is None:
            import matplotlib.pyplot as plt

            axes = plt.subplots(1, 2, figsize=(10.0, 4.0))[1]
        left, right = axes
        lines = []
        for ax, learned, analytic, label in (
            (left, "singular_values", "analytic_singular_values", "singular values of D(β)"),
            (right, "variances", "analytic_variances", "posterior variances c(β), sorted"),
        ):
            lines += ax.plot(
                self.betas, np.asarray(self.response[analytic]), "-", color="0.6", lw=1
            )
            lines += ax.plot(
                self.betas, np.asarray(self.response[learned]), ".", color="C0", ms=2.5
            )
            ax.plot([], [], "-", color="0.6", label="analytic (eq. 21, 23)")
            ax.plot([], [], ".", color="C0", label="MR-VAE")
            ax.set_xscale("log")
            ax.set_xlabel("β")
            ax.set_title(label)
            ax.legend(frameon=False)
        right.set_yscale("log")
        self.axes_, self.figure_, self.lines_ = (left, right), left.figure, lines
        return self
