r"""Numeric witnesses that a product of gates cannot follow a response function.

For a scalar response f(η) (a latent size k = 1, so each layer has one gated unit), the
two-layer gated parameterisation is

.. math::

    K\,\sigma(h_1\eta + q_1)\,\sigma(h_2\eta + q_2),

and :func:`best_gate_product_fit` finds its least-squares optimum over a grid of η, in a
box (:data:`SLOPE_BOUND`, :data:`OFFSET_BOUND`, :data:`K_BOUND`). K enters linearly, so it
is solved in closed form for every (h₁, q₁, h₂, q₂) (variable projection, K clipped to its
bound); the other four are searched globally on a dense grid of factor pairs (two matrix
products score every pair at once), and the best pairs of distinct slope classes are
polished by restarted Nelder-Mead. Every start reaches the same optimum, so it is the same
on any machine to round-off, which a local search from a few starts is not (issue 21: the
σ_D fit of min(1, e^η) gave 0.17 on one instruction set and 0.18 on another). Measured:
other search grids (9 to 20 slopes, crossing steps 0.17 to 0.4), OpenBLAS's Sandybridge and
Haswell kernels and numpy's baseline SIMD path move every max error of the theorem's
claims by < 1e-8. The search is dense, not certified: a residual far above round-off is a
witness, not a proof, that the gates cannot represent f; the structural reason is stated
with each claim.
"""

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

from .gates import gate_function

ETA_RANGE = (np.log(0.01), np.log(10.0))

#: The box of the search: |h| <= SLOPE_BOUND, |q| <= OFFSET_BOUND for both factors, and
#: |K| <= K_BOUND·max|f|. Without it the infimum can lie at infinity (a step between two
#: grid points of η as |h| grows; an exponential tail of σ_E, or a ramp from two σ_D near 0,
#: as |K| grows) and a search drifts along a valley to where round-off stops it; in the box
#: the optimum is attained, and so is the same everywhere.
SLOPE_BOUND = 30.0
OFFSET_BOUND = 150.0
K_BOUND = 1e3

#: The search grid of one factor: slopes ±geomspace(0.05, 30, 14) and 0, crossings -q/h
#: every 0.25 from 6 below to 6 above the η range; how many of the best pairs are polished.
_SLOPES = np.geomspace(0.05, SLOPE_BOUND, 14)
_CROSSING_STEP, _CROSSING_MARGIN = 0.25, 6.0
_POLISHED = 12


class GateFit(NamedTuple):
    """The least-squares gate product.

    Attributes
    ----------
    max_error : float
        max over the grid of |fit − f| / max |f|.
    params : ndarray of shape (5,)
        (K, h₁, q₁, h₂, q₂).
    worst_eta : float
        Where the error is largest.
    """

    max_error: float
    params: np.ndarray
    worst_eta: float


def _product(params, eta, gate):
    K, h1, q1, h2, q2 = params
    return K * gate(h1 * eta + q1) * gate(h2 * eta + q2)


def _factor_grid(eta, slopes, step, margin):
    """(h, q) of one factor: every slope with crossings -q/h on a grid, and two constants."""
    slopes = np.concatenate([-slopes[::-1], slopes])
    crossings = np.arange(eta[0] - margin, eta[-1] + margin + step / 2, step)
    h, c = (a.ravel() for a in np.meshgrid(slopes, crossings, indexing="ij"))
    hq = np.column_stack([h, -h * c])
    hq = hq[np.abs(hq[:, 1]) <= OFFSET_BOUND]
    return np.vstack([hq, [[0.0, OFFSET_BOUND], [0.0, -OFFSET_BOUND]]])


def _best_pairs(G, f, count):
    """Indices (a, b), a <= b, of the ``count`` factor pairs G[a]·G[b] that fit f best.

    For g = G[a]·G[b] the best K is ⟨g, f⟩/⟨g, g⟩ and the residual ‖f‖² − ⟨g, f⟩²/⟨g, g⟩,
    so ranking every pair needs only GᵀdiagfG and (G²)(G²)ᵀ.
    """
    Gf, G2 = G * f, G * G
    n = G.shape[0]
    scores, pairs = np.empty(0), np.empty((0, 2), dtype=int)
    for start in range(0, n, 512):  # row blocks: at most 512 × n scores in memory
        rows = slice(start, min(start + 512, n))
        num, den = G[rows] @ Gf.T, G2[rows] @ G2.T
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(den > 0, num * num / den, 0.0)
        a, b = np.indices(score.shape)
        a += start
        score[a > b] = 0.0  # the product is symmetric in its two factors
        top = np.argpartition(score.ravel(), -count)[-count:]
        scores = np.concatenate([scores, score.ravel()[top]])
        pairs = np.vstack([pairs, np.column_stack([a.ravel()[top], b.ravel()[top]])])
        keep = np.argsort(-scores, kind="stable")[:count]
        scores, pairs = scores[keep], pairs[keep]
    return pairs


def _diverse(pairs, hq, count):
    """The first ``count`` pairs (best first) whose two slopes no earlier pair has: one
    start per slope class, so that a basin the grid ranks second is polished too."""
    chosen, seen = [], set()
    for a, b in pairs:
        key = (hq[a, 0], hq[b, 0])
        if key not in seen:
            seen.add(key)
            chosen.append((a, b))
        if len(chosen) == count:
            break
    return chosen


def _projected(theta, eta, f, gate):
    """The product's values without K, and the least-squares K in [-K_BOUND, K_BOUND]."""
    g = gate(theta[0] * eta + theta[1]) * gate(theta[2] * eta + theta[3])
    den = g @ g
    return g, (float(np.clip(g @ f / den, -K_BOUND, K_BOUND)) if den > 0 else 0.0)


def best_gate_product_fit(
    target, gate_name, n_grid=161, eta_range=ETA_RANGE, slopes=_SLOPES, crossing_step=None
):
    """Least-squares optimum of K·σ(h₁η + q₁)·σ(h₂η + q₂) for ``target`` on an η grid.

    Parameters
    ----------
    target : callable
        f(η) for an ndarray of η, returning an ndarray of the same shape.
    gate_name : str
        ``"sigmoid"``, ``"sqrt"`` or ``"hinge"``.
    n_grid : int
        Number of equispaced η in ``eta_range``.
    slopes, crossing_step : optional
        The search grid of one factor (positive slopes, mirrored; the spacing of the
        crossings): only to show that another grid reaches the same optimum.

    Returns
    -------
    GateFit
        The fit with the least sum of squares in the box (|h| <= SLOPE_BOUND,
        |q| <= OFFSET_BOUND, |K| <= K_BOUND·max|f|), factors ordered by (h, q).
    """
    gate = gate_function(gate_name)
    eta = np.linspace(*eta_range, n_grid)
    f = np.asarray(target(eta), dtype=np.float64)
    scale = np.max(np.abs(f))
    if not np.isfinite(scale) or scale == 0:
        raise ValueError("target must be finite and not identically zero on the grid")
    f = f / scale
    hq = _factor_grid(
        eta, np.asarray(slopes, dtype=np.float64), crossing_step or _CROSSING_STEP, _CROSSING_MARGIN
    )
    G = gate(hq[:, :1] * eta + hq[:, 1:])
    peak = np.max(np.abs(G), axis=1)
    hq, G = hq[peak > 0], G[peak > 0] / peak[peak > 0, None]  # K absorbs each factor's size

    def cost(theta):
        g, K = _projected(np.clip(theta, -bound, bound), eta, f, gate)
        r = K * g - f
        return float(r @ r)

    # Nelder-Mead, not a gradient method: the σ_D gate's slope is infinite where it reaches
    # 0, so the sum of squares has kinks; each start is restarted until it stops improving
    bound = np.array([SLOPE_BOUND, OFFSET_BOUND] * 2)
    best, best_cost = None, np.inf
    for a, b in _diverse(_best_pairs(G, f, 40 * _POLISHED), hq, _POLISHED):
        theta = np.concatenate([hq[a], hq[b]])
        value = cost(theta)
        for _ in range(20):
            fit = minimize(
                cost,
                theta,
                method="Nelder-Mead",
                options={"xatol": 1e-10, "fatol": 1e-13, "maxfev": 2000},
            )
            theta = np.clip(fit.x, -bound, bound)
            improved, value = fit.fun < value * (1 - 1e-12), min(value, fit.fun)
            if not improved:
                break
        if value < best_cost:
            best, best_cost = theta, value
    if best is None:
        raise ValueError(f"no {gate_name} product is nonzero on the grid")
    if best[:2] @ [1, 1e-9] > best[2:] @ [1, 1e-9]:
        best = np.concatenate([best[2:], best[:2]])  # one order of the two factors
    g, K = _projected(best, eta, f, gate)
    error = np.abs(K * g - f)
    params = np.concatenate([[K * scale], best])
    return GateFit(float(error.max()), params, float(eta[np.argmax(error)]))
