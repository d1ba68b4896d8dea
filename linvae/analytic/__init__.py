"""Closed forms of the linear β-VAE in float64 (appendix A.1).

Everything here is a pure function of arrays: the data enter only through their mean and
covariance, so every number is exact up to round-off, with no sampling.
"""

from ._curve import parse_betas, rate_distortion
from ._moments import moments
from ._objective import empirical_objective, gradients, objective
from ._optimum import covariance_optimum, decoder_optimum, encoder_optimum, optimum
from ._spectrum import rank, spectrum
from ._types import Curve, Gradients, LinearVAEParams, Moments, Spectrum, Terms

__all__ = [
    "Curve",
    "Gradients",
    "LinearVAEParams",
    "Moments",
    "Spectrum",
    "Terms",
    "covariance_optimum",
    "decoder_optimum",
    "empirical_objective",
    "encoder_optimum",
    "gradients",
    "moments",
    "objective",
    "optimum",
    "parse_betas",
    "rank",
    "rate_distortion",
    "spectrum",
]
