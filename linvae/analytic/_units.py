r"""The units of the rate-distortion literature: bits, mean squared error, PSNR.

linvae computes in nats per example, with the distortion a Gaussian negative log-likelihood
(eq. 13, decoder variance 1): ``distortion = d/2 · log 2π + ½ · E‖x − x̂‖²``. The compression
literature draws the same curve as rate in bits against the mean squared error per
dimension, or its PSNR:

.. math::

    R_{\text{bits}} = R_{\text{nats}} / \ln 2,\qquad
    \text{MSE} = \frac{2\,(\text{distortion} - \tfrac d2 \log 2\pi)}{d},\qquad
    \text{PSNR} = 10 \log_{10} \frac{\text{peak}^2}{\text{MSE}}\ \text{dB},

so that at the optimum, for ``k`` at least the number of eigenvalues above β, the curve in
bits and MSE is Shannon's rate-distortion function of the Gaussian source ``N(m, S)``
under squared error (reverse water-filling, Cover & Thomas Thm. 10.3.3), with D = d · MSE.
"""

import numpy as np

from .._checks import as_choice, as_int, as_positive
from ._objective import LOG_2PI

RATE_UNITS = ("nats", "bits")
DISTORTION_UNITS = ("nll", "mse", "psnr")

#: Axis labels, per example.
RATE_LABELS = {"nats": "rate (nats / example)", "bits": "rate (bits / example)"}
DISTORTION_LABELS = {
    "nll": "distortion (nats / example)",
    "mse": "mean squared error per dimension",
    "psnr": "PSNR (dB)",
}


def rate_in(rate, unit="nats"):
    """A rate in nats (per example) in ``unit``: ``"nats"`` or ``"bits"`` (÷ ln 2)."""
    unit = as_choice(unit, "rate_unit", RATE_UNITS)
    rate = np.asarray(rate, dtype=np.float64)
    return rate / np.log(2.0) if unit == "bits" else rate


def distortion_in(distortion, d, unit="nll", peak=1.0):
    """A distortion in nats (Gaussian NLL per example) in ``unit``.

    Parameters
    ----------
    distortion : float or array_like
        ``d/2 · log 2π + ½ E‖x − x̂‖²``, nats per example.
    d : int
        Data dimension.
    unit : {"nll", "mse", "psnr"}
        ``"nll"``: as given; ``"mse"``: the mean squared error per dimension,
        ``2 (distortion − d/2 log 2π) / d``; ``"psnr"``: ``10 log10(peak² / MSE)`` dB.
    peak : float, default 1.0
        The largest value a datum can take (1 for data in [0, 1]), for PSNR.

    Returns
    -------
    float or ndarray
        The distortion in ``unit``, the shape of ``distortion``.
    """
    unit = as_choice(unit, "distortion_unit", DISTORTION_UNITS)
    d = as_int(d, "d", minimum=1)
    distortion = np.asarray(distortion, dtype=np.float64)
    if unit == "nll":
        return distortion
    mse = 2.0 * (distortion - 0.5 * d * LOG_2PI) / d
    if unit == "mse":
        return mse
    peak = as_positive(peak, "peak")
    with np.errstate(divide="ignore"):  # a zero error is infinitely many dB
        return 10.0 * np.log10(peak**2 / mse)


def curve_in_units(curve, d, rate_unit="nats", distortion_unit="nll", peak=1.0):
    """``(rate, distortion)`` of a :class:`Curve` (or any record with those fields) in units."""
    return (
        rate_in(curve.rate, rate_unit),
        distortion_in(curve.distortion, d, distortion_unit, peak),
    )
