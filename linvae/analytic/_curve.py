r"""The rate-distortion curve of the optimal linear β-VAE in closed form.

At the optimum each of the top-k principal directions with :math:`\lambda_i > \beta` keeps a
rate of :math:`\tfrac12\log(\lambda_i/\beta)` and leaves a squared error of :math:`\beta`;
every other direction is dropped (rate 0, squared error :math:`\lambda_i`):

.. math::

    R(\beta) = \tfrac12 \sum_{i \le k} \log^+ \frac{\lambda_i}{\beta},\qquad
    \text{distortion}(\beta) = \tfrac d2 \log 2\pi
        + \tfrac12 \Big(\sum_{i \le k} \min(\lambda_i, \beta) + \sum_{i > k} \lambda_i\Big).

This is reverse water-filling at water level β on the top-k components: for ``k`` at least
the number of eigenvalues above β it is the Shannon rate-distortion function of the
Gaussian source ``N(m, S)`` under squared error (Cover & Thomas, Thm. 10.3.3), and the
rate, an average KL, equals the mutual information ``I(x; z)`` because the aggregate
posterior is exactly the prior there.
"""

import numpy as np

from .._checks import as_betas, as_float_array, as_int, as_latent_size, check_psd
from ._objective import LOG_2PI
from ._spectrum import numerical_rank
from ._types import Curve


def rate_distortion(eigvals, k, betas):
    """Rate, distortion and loss of the optimal linear β-VAE for many β at once.

    Parameters
    ----------
    eigvals : array_like of shape (d,)
        Eigenvalues of the data covariance, in any order; round-off negatives
        (``>= -1e6 · eps · max|λ|``) count as 0.
    k : int
        Latent size, ``k >= 1``; latents beyond ``d`` are collapsed (the curve of ``k = d``).
    betas : float or array_like of shape (m,)
        β values > 0, in any order.

    Returns
    -------
    Curve
        ``betas`` (m,) as given, and ``rate``, ``distortion``, ``loss`` (m,) in nats per
        example; equal to ``objective(optimum(cov, k, β), mean, cov, β)`` for each β; and
        ``squared_error`` (m,), ``E‖x − x̂‖²`` apart from the constant ``d/2 log 2π``.

    Notes
    -----
    One sort of the spectrum, then ``O(m log k)``: prefix sums of ``log λ`` and suffix sums
    of ``λ`` indexed by the number of eigenvalues above each β.
    """
    eigvals = as_float_array(eigvals, "eigvals", ndim=1)
    d = eigvals.shape[0]
    if d == 0:
        raise ValueError("eigvals must not be empty")
    eigvals = check_psd(eigvals, "eigvals")
    k = min(as_latent_size(k), d)  # latents beyond d are collapsed: they add nothing
    betas = as_betas(betas)
    ordered = np.sort(eigvals)[::-1]
    top = ordered[:k]
    tail = float(np.sum(ordered[k:]))
    # active[j] = number of top eigenvalues strictly above betas[j]
    active = k - np.searchsorted(top[::-1], betas, side="right")
    with np.errstate(divide="ignore"):
        log_top = np.log(top)
    # Sums over the active prefix of log λ, and over the dropped suffix of λ (summed
    # smallest first so that small eigenvalues are not swamped).
    prefix_log = np.concatenate(([0.0], np.cumsum(np.where(top > 0, log_top, 0.0))))
    suffix = np.concatenate((np.cumsum(top[::-1])[::-1], [0.0]))
    rate = 0.5 * (prefix_log[active] - active * np.log(betas))
    squared_error = active * betas + suffix[active] + tail
    distortion = 0.5 * d * LOG_2PI + 0.5 * squared_error
    return Curve(
        betas=betas,
        rate=rate,
        distortion=distortion,
        loss=distortion + betas * rate,
        squared_error=squared_error,
    )


#: The most β a grid may hold: more is a typo (10⁸ points), not a curve.
MAX_GRID_POINTS = 100_000


def parse_betas(text):
    """β values from a command-line string.

    ``"LO:HI:N"`` gives N values log-spaced from LO to HI, both included (``"0.01:10:31"``);
    ``"B1,B2,..."`` gives the listed values.

    Raises
    ------
    ValueError
        If the text is neither form, N < 1 or above :data:`MAX_GRID_POINTS`, or a value is
        not finite and > 0.
    """
    if not isinstance(text, str):
        raise TypeError(f"betas must be a string like '0.01:10:31', got {type(text).__name__}")
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            low, high, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 1 or not (np.isfinite(low) and np.isfinite(high)) or low <= 0 or high <= 0:
                raise ValueError
            if count > MAX_GRID_POINTS:
                raise OverflowError
            values = np.geomspace(low, high, count) if count > 1 else np.array([low])
        else:
            values = np.array([float(part) for part in text.split(",")])
    except OverflowError:
        raise ValueError(
            f"betas must hold at most {MAX_GRID_POINTS} values, got {text!r}"
        ) from None
    except ValueError:
        raise ValueError(
            f"betas must be 'LO:HI:N' (N log-spaced values, LO and HI > 0) or a comma list of "
            f"values > 0, got {text!r}"
        ) from None
    return as_betas(values)


#: The paper's linear experiment (appendix C.1): latent size 32, β log-spaced from 0.01 to 10.
PAPER_LATENT = 32
PAPER_GRID = "0.01:10:31"

#: Named grids: ``"paper"`` is :data:`PAPER_GRID`; ``"full"`` comes from the spectrum.
NAMED_GRIDS = ("full", "paper")

#: The full grid runs from λ_k / FULL_GRID_MARGIN to FULL_GRID_MARGIN · λ₁ in this many points.
FULL_GRID_MARGIN = 2.0
FULL_GRID_POINTS = 31

#: The latent size and grid of the commands (``python -m linvae.analytic`` and ``compare``):
#: the paper's latent size, and the whole curve of the data at hand.
DEFAULT_LATENT = PAPER_LATENT
DEFAULT_GRID = "full"


def full_grid(eigvals, k, points=FULL_GRID_POINTS):
    """The β over which the optimal curve changes, with a margin: λ_m / 2 to 2 λ₁, log-spaced.

    ``m = min(k, r)``, with r the numerical rank (:func:`linvae.analytic.numerical_rank`,
    the rule of :func:`linvae.analytic.rank` and :func:`collapsed_latents`). Every latent is active below λ_m and every latent is
    shut above λ₁; the margin :data:`FULL_GRID_MARGIN` shows both ends of the curve. When
    k > r, the k − r latents left are collapsed at the optimum on the whole curve: an
    eigenvalue at round-off is no direction of the data, and a grid that ran down to it
    would train and score its noise.

    Parameters
    ----------
    eigvals : array_like of shape (d,)
        Eigenvalues of the data covariance, any order, >= 0.
    k : int
        Latent size.
    points : int, default 31
        Number of β, from 2 to :data:`MAX_GRID_POINTS`.

    Returns
    -------
    ndarray of shape (points,)
        Increasing.

    Raises
    ------
    ValueError
        If every eigenvalue is 0 (the data do not vary), the top ``2·λ₁`` or the bottom
        ``λ_m / 2`` leaves float64, or an argument is out of range.
    """
    eigvals = check_psd(as_float_array(eigvals, "eigvals", ndim=1), "eigvals")
    k = as_latent_size(k)
    points = as_int(points, "points", minimum=2)
    if points > MAX_GRID_POINTS:
        raise ValueError(f"points must be <= {MAX_GRID_POINTS}, got {points}")
    m = min(k, numerical_rank(eigvals))
    if m == 0:
        raise ValueError("the data have no variance: every eigenvalue of the covariance is 0")
    eigvals = np.sort(eigvals)[::-1]
    largest, smallest = float(eigvals[0]), float(eigvals[m - 1])
    if largest * FULL_GRID_MARGIN > np.finfo(np.float64).max:
        raise ValueError(
            f"the full grid's top {FULL_GRID_MARGIN:g}·λ₁ overflows float64 (λ₁ = {largest:.3g}): "
            "rescale the data"
        )
    if smallest / FULL_GRID_MARGIN < np.finfo(np.float64).tiny:
        raise ValueError(
            f"the full grid's bottom λ_{m}/{FULL_GRID_MARGIN:g} underflows float64 "
            f"(λ_{m} = {smallest:.3g}): rescale the data"
        )
    return np.geomspace(smallest / FULL_GRID_MARGIN, largest * FULL_GRID_MARGIN, points)


def collapsed_latents(eigvals, k) -> int:
    """How many of k latents are collapsed at the optimum at every β: ``max(0, k − r)``.

    r is the numerical rank of the covariance (:func:`linvae.analytic.numerical_rank`: its
    eigenvalues above ``1e6·ε·λ₁``), the rule of :func:`linvae.analytic.rank` and
    :func:`full_grid`.
    """
    k = as_latent_size(k)
    return max(0, k - numerical_rank(eigvals))


def beta_grid(betas, eigvals, k):
    """A grid of β from its description, and a sentence saying what it is.

    Parameters
    ----------
    betas : str or sequence of float
        ``"full"``, ``"paper"``, text for :func:`parse_betas`, or the values.
    eigvals : ndarray of shape (d,)
        Eigenvalues of the data covariance (for ``"full"``).
    k : int
        Latent size.

    Returns
    -------
    (ndarray of shape (m,), str)
    """
    if isinstance(betas, str) and betas == "full":
        grid = full_grid(eigvals, k)
        note = (
            f"full: {grid.size} β log-spaced from λ_k/{FULL_GRID_MARGIN:g} to "
            f"{FULL_GRID_MARGIN:g}·λ₁ of this data set (every latent active below λ_k, every "
            "latent shut above λ₁)"
        )
        collapsed = collapsed_latents(eigvals, k)
        if collapsed:
            note = note.replace("λ_k", f"λ_{k - collapsed}", 1) + (
                f"; the covariance's numerical rank is {k - collapsed} < k = {k}, so "
                f"{collapsed} latent{'s are' if collapsed > 1 else ' is'} collapsed at the "
                "optimum along the whole curve"
            )
        return grid, note
    if isinstance(betas, str) and betas == "paper":
        return parse_betas(PAPER_GRID), f"paper: {PAPER_GRID}, the paper's range (appendix C.1)"
    if isinstance(betas, str):
        return parse_betas(betas), f"given: {betas}"
    return as_betas(betas), "given: a list of β"
