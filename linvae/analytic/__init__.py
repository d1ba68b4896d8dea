"""Closed forms of the linear β-VAE in float64 (appendix A.1).

Everything here is a pure function of arrays: the data enter only through their mean and
covariance, so every number is exact up to round-off, with no sampling.
"""

from ._curve import (
    DEFAULT_GRID,
    DEFAULT_LATENT,
    FULL_GRID_MARGIN,
    FULL_GRID_POINTS,
    MAX_GRID_POINTS,
    NAMED_GRIDS,
    PAPER_GRID,
    PAPER_LATENT,
    beta_grid,
    collapsed_latents,
    full_grid,
    parse_betas,
    rate_distortion,
)
from ._moments import DEFAULT_CHUNK_SIZE, moments, moments_of_chunks
from ._objective import (
    check_moments,
    covariance_factor,
    empirical_objective,
    gradients,
    objective,
    objective_terms,
)
from ._optimum import (
    best_response,
    covariance_optimum,
    decoder_optimum,
    encoder_optimum,
    optimum,
)
from ._spectrum import active_latents, as_spectrum, numerical_rank, rank, spectrum
from ._types import Curve, Gradients, LinearVAEParams, Moments, Spectrum, Terms
from ._units import (
    DISTORTION_UNITS,
    RATE_UNITS,
    check_peak,
    curve_in_units,
    distortion_in,
    rate_in,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_GRID",
    "DEFAULT_LATENT",
    "DISTORTION_UNITS",
    "FULL_GRID_MARGIN",
    "FULL_GRID_POINTS",
    "MAX_GRID_POINTS",
    "NAMED_GRIDS",
    "PAPER_GRID",
    "PAPER_LATENT",
    "RATE_UNITS",
    "Curve",
    "Gradients",
    "LinearVAEParams",
    "Moments",
    "Spectrum",
    "Terms",
    "active_latents",
    "as_spectrum",
    "best_response",
    "beta_grid",
    "check_moments",
    "check_peak",
    "collapsed_latents",
    "covariance_factor",
    "covariance_optimum",
    "curve_in_units",
    "decoder_optimum",
    "distortion_in",
    "empirical_objective",
    "encoder_optimum",
    "full_grid",
    "gradients",
    "moments",
    "moments_of_chunks",
    "numerical_rank",
    "objective",
    "objective_terms",
    "optimum",
    "parse_betas",
    "rank",
    "rate_distortion",
    "rate_in",
    "spectrum",
]
