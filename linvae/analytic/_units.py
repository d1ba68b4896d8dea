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

The MSE is taken from the squared error itself where it is at hand (``Curve.squared_error``,
``Terms.squared_error``): subtracted back out of the distortion, it is lost in the constant
``d/2 log 2π`` for data of small spread.
"""

import numpy as np

from .._checks import PSD_EPS_FACTOR, as_choice, as_float_array, as_int, as_positive
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


def distortion_in(distortion, d, unit="nll", peak=1.0, *, squared_error=None):
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
    squared_error : float or array_like, optional
        ``E‖x − x̂‖²`` per example, the shape of ``distortion`` (``Curve.squared_error``):
        the MSE is then ``squared_error / d``, exact however small.

    Returns
    -------
    float or ndarray
        The distortion in ``unit``, the shape of ``distortion``.

    Raises
    ------
    ValueError
        For an MSE asked of a distortion alone that lies below ``d/2 log 2π``, or above it
        by no more than round-off (``1e6·ε`` of it): its squared error is lost there; pass
        ``squared_error``.
    """
    unit = as_choice(unit, "distortion_unit", DISTORTION_UNITS)
    d = as_int(d, "d", minimum=1)
    distortion = np.asarray(distortion, dtype=np.float64)
    if unit == "nll":
        return distortion
    if unit == "psnr":
        peak = as_positive(peak, "peak")
    if squared_error is not None:
        mse = as_float_array(squared_error, "squared_error") / d
    else:
        constant = 0.5 * d * LOG_2PI
        error = np.ravel(distortion - constant)
        if np.any(error < 0.0):
            raise ValueError(
                f"distortion {float(np.ravel(distortion)[np.argmax(error < 0.0)]):.17g} is below "
                f"d/2·log 2π = {constant:.17g}: a squared error cannot be negative"
            )
        # 0 < error ≤ round-off: digits of the squared error are lost (0 itself: no error)
        lost = (error > 0.0) & (error <= PSD_EPS_FACTOR * np.finfo(np.float64).eps * constant)
        if np.any(lost):
            raise ValueError(
                f"distortion {float(np.ravel(distortion)[np.argmax(lost)]):.17g} lies within "
                f"round-off of d/2·log 2π = {constant:.17g}: its squared error is lost in the "
                "constant; pass squared_error (Curve.squared_error, Terms.squared_error)"
            )
        mse = 2.0 * (distortion - constant) / d
    if unit == "mse":
        return mse
    with np.errstate(divide="ignore"):  # a zero error is infinitely many dB
        return 10.0 * np.log10(peak**2 / mse)


def check_peak(peak, largest) -> float:
    """PSNR's ``peak`` as a float, checked against ``largest``, the data's largest ``|x|``.

    Raises
    ------
    ValueError
        ``"{peak} is below the largest value of the data ({largest})…"``: a peak the data
        exceed makes PSNR meaningless (float data up to 255 against a peak of 1 come out
        near −42 dB).
    """
    peak = as_positive(peak, "peak")
    largest = float(largest)
    if largest > peak:
        raise ValueError(
            f"{peak:g} is below the largest value of the data ({largest:.6g}): PSNR is "
            f"measured against the largest value a datum can take; give it (e.g. "
            f"{np.ceil(largest):g})"
        )
    return peak


def curve_in_units(curve, d, rate_unit="nats", distortion_unit="nll", peak=1.0):
    """``(rate, distortion)`` of a :class:`Curve` (or any record with those fields) in units;
    the MSE and PSNR come from its ``squared_error`` when it has one."""
    return (
        rate_in(curve.rate, rate_unit),
        distortion_in(
            curve.distortion,
            d,
            distortion_unit,
            peak,
            squared_error=getattr(curve, "squared_error", None),
        ),
    )
