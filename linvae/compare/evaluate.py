"""Exact evaluation of trained linear (MR-)VAEs against the analytic optimum; never samples.

For each β, a model's ``(E(β), c(β), D(β))`` and decoder bias go through
:func:`linvae.analytic.objective` in float64, with the data's mean and covariance: the
rate, distortion and loss are the model's exact expected values, with no sampling noise.
"""

from __future__ import annotations

import time

import numpy as np

from linvae._checks import as_beta, as_betas
from linvae.analytic import (
    Terms,
    as_spectrum,
    check_moments,
    covariance_factor,
    covariance_optimum,
    decoder_optimum,
    objective_terms,
    rate_distortion,
)
from linvae.mrvae.model import LinearMRVAE

#: A loss below the analytic optimum by more than this (relative to max(1, |optimum|)) is
#: impossible for a linear VAE: the evaluation lost precision or is wrong, and
#: :func:`excess_loss` raises.
EXCESS_TOLERANCE = 1e-9


class BelowOptimumError(RuntimeError):
    """A model's exact loss lies below the analytic optimum beyond round-off: an evaluation
    or round-off problem (no linear VAE can beat the optimum)."""


def exact_terms(
    model: LinearMRVAE, beta: float, mean: np.ndarray, cov: np.ndarray, *, factor=None
) -> Terms:
    """The exact rate, distortion and loss of ``model`` at β on data of this mean and covariance.

    Parameters
    ----------
    model : LinearMRVAE
        Any trained (MR-)VAE.
    beta : float
        β > 0.
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
    factor : ndarray of shape (d, r), optional
        :func:`linvae.analytic.covariance_factor` of ``cov``, formed here if not given
        (O(d³): give it when evaluating many models on the same data).

    Returns
    -------
    Terms
        :func:`linvae.analytic.objective` of ``model.params_at(β)`` with the model's decoder
        bias and encoder offset: its posterior mean is ``E(x − m) + t`` with
        ``t = t_FiLM(β) + E(m − input_mean)`` (``t = 0`` without FiLM gates when
        ``input_mean`` is the data mean).
    """
    mean, cov = check_moments(mean, cov)
    factor = covariance_factor(cov) if factor is None else factor
    return _terms(model, as_beta(beta), mean, cov, factor)


def _terms(model: LinearMRVAE, beta: float, mean, cov, factor=None) -> Terms:
    """:func:`exact_terms` on moments already checked (``factor``: see
    :func:`linvae.analytic.objective_terms`)."""
    params = model.params_at(beta)
    input_mean = model.input_mean.detach().cpu().double().numpy()
    offset = model.latent_offset(beta) + params.E @ (mean - input_mean)
    return objective_terms(
        *params, mean, cov, beta, model.decoder_bias(beta), offset, factor=factor
    )


def evaluate_model(model: LinearMRVAE, mean, cov, betas, *, factor=None) -> dict[str, np.ndarray]:
    """Exact ``rate``, ``distortion``, ``loss`` and ``squared_error`` of ``model`` at each β,
    arrays of shape (m,) (``squared_error``: ``E‖x − x̂‖²``, apart from the constant).

    The moments are checked once (symmetric, positive semidefinite), not per β, and the
    traces formed as sums of squares through ``factor`` (:func:`linvae.analytic.
    covariance_factor` of ``cov``; formed here if not given), free of cancellation.
    """
    mean, cov = check_moments(mean, cov)
    factor = covariance_factor(cov) if factor is None else factor
    rows = np.array([_terms(model, beta, mean, cov, factor) for beta in as_betas(betas)])
    return {name: rows[:, i] for i, name in enumerate(Terms._fields)}


def loss_above_constant(terms: dict, betas) -> np.ndarray:
    """``½ squared_error + β·rate`` (m,): a loss of :func:`evaluate_model` or
    :func:`analytic_curve` without its constant ``d/2 log 2π``.

    Give these to :func:`excess_loss`: the difference of two losses that both hold the
    constant is lost in it for data of small spread (an excess of exactly 0 for data × 1e-7).
    """
    return 0.5 * np.asarray(terms["squared_error"]) + as_betas(betas) * np.asarray(terms["rate"])


def excess_loss(
    loss, optimum_loss, tolerance: float = EXCESS_TOLERANCE, *, betas=None, model="the model"
) -> np.ndarray:
    """``loss − optimum_loss``, shape (m,), which must be ≥ 0 up to round-off.

    ``betas`` (m,) and ``model`` (a name) only make the error message concrete.

    Raises
    ------
    BelowOptimumError
        If some entry is below ``−tolerance · max(1, |optimum|)``: a linear VAE cannot beat
        the global optimum, so the evaluation lost precision (round-off) or is wrong. One
        line with the numbers.
    """
    loss = np.asarray(loss, dtype=np.float64)
    optimum_loss = np.asarray(optimum_loss, dtype=np.float64)
    excess = loss - optimum_loss
    floor = -tolerance * np.maximum(1.0, np.abs(optimum_loss))
    if np.any(excess < floor):
        worst = int(np.argmin(excess - floor))
        where = f"entry {worst}" if betas is None else f"β = {float(np.ravel(betas)[worst]):.6g}"
        raise BelowOptimumError(
            f"{model}'s exact loss at {where} is {float(loss[worst])!r}, below the analytic "
            f"optimum {float(optimum_loss[worst])!r} by {float(-excess[worst]):.3g}, more than "
            f"round-off allows ({float(-floor[worst]):.3g}); no linear VAE can beat the "
            "optimum, so this is an evaluation or round-off problem (e.g. a covariance near "
            "singular), not a better model"
        )
    return excess


def response_functions(model: LinearMRVAE, cov, k: int, betas) -> dict[str, np.ndarray]:
    """Learned against analytic response functions on a grid of β.

    Returns
    -------
    dict of ndarray of shape (m, k)
        ``singular_values``: of the learned D(β), descending; ``analytic_singular_values``:
        (max(0, λ_i − β))^{1/2}, i ≤ k, of D*(β) (eq. 23); ``variances``: the learned c(β)
        in ascending order; ``analytic_variances``: C*(β) = β (diag(D*ᵀD*) + β)⁻¹ (eq. 21)
        at the joint optimum (R = I), ascending.
    """
    spec = as_spectrum(cov)
    out = {
        name: []
        for name in (
            "singular_values",
            "analytic_singular_values",
            "variances",
            "analytic_variances",
        )
    }
    for beta in betas:
        beta = float(beta)
        params = model.params_at(beta)
        optimal_D = decoder_optimum(spec, k, beta)
        out["singular_values"].append(np.linalg.svd(params.D, compute_uv=False))
        out["analytic_singular_values"].append(np.linalg.svd(optimal_D, compute_uv=False))
        out["variances"].append(np.sort(params.c))
        out["analytic_variances"].append(np.sort(covariance_optimum(optimal_D, beta)))
    return {name: np.array(rows) for name, rows in out.items()}


def analytic_curve(cov, k: int, betas) -> dict[str, np.ndarray]:
    """The optimum's ``rate``, ``distortion``, ``loss`` and ``squared_error`` at each β
    (reverse water-filling).

    ``cov`` is a covariance or its :class:`~linvae.analytic.Spectrum`.
    """
    curve = rate_distortion(as_spectrum(cov).eigvals, k, np.asarray(betas, dtype=np.float64))
    return {name: getattr(curve, name) for name in Terms._fields}


#: The paper's gates (appendix A.2 and Listing 1): σ_E encoder and covariance, σ_D decoder.
PAPER_GATES = {"encoder_gate": "sigmoid", "decoder_gate": "sqrt", "covariance_gate": "sigmoid"}
#: The gates whose Theorem 1 construction is exact at every β (the linvae recipe's).
EXACT_GATES = {"encoder_gate": "sqrt", "decoder_gate": "sqrt", "covariance_gate": "hinge"}


def representation_floors(
    config: dict, cov, k: int, betas, excess, which: str, progress: bool = False
) -> dict:
    """The representation floor per β and the optimisation part ``excess − floor``.

    Parameters
    ----------
    config : dict
        The trained MR-VAE's ``config()`` (gates, hidden width, gate input, β range).
    cov : ndarray of shape (d, d)
    k : int
    betas : ndarray of shape (m,)
    excess : ndarray of shape (m,)
        The trained MR-VAE's excess on ``betas``.
    which : {"model", "paper", "none"}
        "model": the floor of the trained model's gate family; "paper": also that of the
        paper's gates (sigmoid encoder and covariance, σ_D decoder), a minute of L-BFGS on
        digits; "none": nothing.
    progress : bool
        Draw a tqdm bar of each fit's L-BFGS iterations (on a terminal or in a notebook).

    Returns
    -------
    dict
        ``{"model": {...}, "paper": {...}}`` (those asked for), each with ``gates``,
        ``floor`` (m,), ``optimisation_part`` (m,) (model only), ``upper_bound: True``
        and ``seconds``. The floor is fitted to the analytic optimum (linvae.audit.floor)
        and is an upper bound on the family's true floor, so the optimisation part can
        be slightly negative.
    """
    if which == "none":
        return {}
    from linvae.mrvae.floor import representation_floor

    if config["class"] == "LatentMRVAE":
        # one gate per latent: the σ_D / σ_D / hinge family of width k, whose Theorem 1
        # construction is exact (the floor is 0 with no fit)
        family = {**EXACT_GATES, "hidden": config["k"], "gate_input": "log_beta"}
    else:
        family = {key: config[key] for key in (*PAPER_GATES, "hidden", "gate_input")}
    families = {"model": family}
    if which == "paper":
        families["paper"] = {**PAPER_GATES, "hidden": k, "gate_input": "standardized"}
    floors = {}
    for name, family in families.items():
        started = time.perf_counter()
        fit = representation_floor(
            cov, k, betas, **family, beta_range=tuple(config["beta_range"]), progress=progress
        )
        gates = {key: family[key] for key in PAPER_GATES}
        entry = {
            "gates": gates,
            "floor": fit.floor,
            "upper_bound": True,
            "seconds": time.perf_counter() - started,
        }
        if name == "model":
            entry["optimisation_part"] = np.asarray(excess) - fit.floor
        floors[name] = entry
    return floors
