r"""The MR-VAE's representation floor: how close its gate family can get to the optimum.

One set of MR-VAE parameters θ must serve every β. Its excess over the analytic optimum
at β splits into what no θ of this gate family can avoid and what training left:

.. math::

    \text{excess}(\beta) = \underbrace{\text{floor}(\beta)}_{\text{representation}}
        + \underbrace{\text{excess}(\beta) - \text{floor}(\beta)}_{\text{optimisation}},
    \qquad
    \text{floor}(\beta) = \text{excess}(\beta;\ \hat\theta),\quad
    \hat\theta \approx \arg\min_\theta \tfrac1m \textstyle\sum_{i=1}^m \text{excess}(\beta_i; \theta),

the excess profile of the θ that minimises the mean excess over the β grid. θ̂ is fitted
*directly to the analytic optimum* with the exact objective (no data sampling, no β
sampling): :func:`linvae.mrvae.objectives.exact_loss` in float64, minimised by
deterministic L-BFGS, started from Theorem 1's construction (:mod:`linvae.construction`)
for every layer whose gate admits one. Where the construction is exact for all three
responses (σ_D encoder, σ_D decoder, hinge covariance: the joint reading of
docs/theorem1.md) the floor is 0 to round-off and no iteration is needed.

The result is an **upper bound** on the true floor: L-BFGS finds a local minimum of the
mean excess, and a better θ may exist. The per-β profile belongs to that one θ̂ (a single
β alone can always be fitted exactly, so a per-β minimum would be 0 and meaningless).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.optimize
import torch

from linvae._checks import as_betas, as_int, as_latent_size
from linvae._progress import bar as progress_bar
from linvae.analytic import Spectrum, as_spectrum, rate_distortion
from linvae.construction import (
    GatedLayer,
    best_gate_product_fit,
    decoder_response_layers,
    joint_covariance_layers,
    joint_encoder_layers,
)

from .gates import DEFAULT_BETA_RANGE, gate_input_affine
from .model import LinearMRVAE
from .objectives import exact_loss

#: Gate choices whose Theorem 1 construction is exact at every β (docs/theorem1.md, reading (b)).
EXACT_GATES = {"encoder": "sqrt", "decoder": "sqrt", "covariance": "hinge"}


class Floor(NamedTuple):
    """The representation floor of one gate family on one spectrum.

    Attributes
    ----------
    betas : ndarray of shape (m,)
    floor : ndarray of shape (m,)
        Excess of the fitted MR-VAE over the analytic optimum at each β, nats per example:
        an upper bound on the family's floor (see the module docstring).
    optimum : ndarray of shape (m,)
        The analytic optimal loss at each β.
    mean_floor : float
        Mean of ``floor`` over the grid (what was minimised).
    start_mean_excess : float
        The same mean at the start (the construction, or the seeded initialisation).
    start : dict
        For ``encoder``, ``decoder`` and ``covariance``: how the layer was started.
    exact : bool
        Whether the construction is exact for all three (then no iteration was run).
    iterations : int
        L-BFGS iterations run.
    converged : bool
        Whether L-BFGS met its tolerance (False also when it hit ``max_iterations``).
    gates : dict
        ``encoder_gate``, ``decoder_gate``, ``covariance_gate``, ``hidden``, ``gate_input``,
        ``beta_range``.
    model : LinearMRVAE
        The fitted model (data mean 0: pass ``mean=0`` to evaluate it); not in ``to_dict``.
    """

    betas: np.ndarray
    floor: np.ndarray
    optimum: np.ndarray
    mean_floor: float
    start_mean_excess: float
    start: dict
    exact: bool
    iterations: int
    converged: bool
    gates: dict
    model: LinearMRVAE

    def to_dict(self) -> dict:
        """JSON builtins (lists for arrays), without the model."""
        record = self._asdict()
        del record["model"]
        for key in ("betas", "floor", "optimum"):
            record[key] = record[key].tolist()
        return record


def _load_layer(base, gate, layer, center, scale):
    """Copy a GatedLayer σ(slope·η + offset) into a model layer whose gate sees (η − center)/scale."""
    with torch.no_grad():
        base.copy_(torch.as_tensor(layer.base))
        gate.weight.copy_(torch.as_tensor(layer.slope * scale))
        gate.bias.copy_(torch.as_tensor(layer.offset + layer.slope * center))


# A gate value that is open with a nonzero gradient, for units a construction does not use.
_OPEN_OFFSET = {"sigmoid": 0.0, "sqrt": -np.log(2.0), "hinge": 0.0}


def _widen(layer, rows=None, cols=None):
    """``layer`` with its base zero-padded to ``rows`` × ``cols`` (extra hidden units unused).

    A wider hidden layer contains the narrow one: extra rows of a first layer and extra
    columns of a second layer are zero, so the product is unchanged at every η.
    """
    n_out, n_in = layer.base.shape
    rows, cols = rows or n_out, cols or n_in
    base = np.zeros((rows, cols))
    base[:n_out, :n_in] = layer.base
    slope = np.concatenate([layer.slope, np.zeros(rows - n_out)])
    offset = np.concatenate([layer.offset, np.full(rows - n_out, _OPEN_OFFSET[layer.gate])])
    return GatedLayer(base, slope, offset, layer.gate)


def _joint_gain_fits(eigvals, k, eta_range):
    """Per latent, K σ(h₁η + q₁) σ(h₂η + q₂) fitted to √(1 − e^η/λ_i)⁺ (linvae.construction.fit).

    The joint optimum's encoder row i is √(1 − β/λ_i)⁺ · λ_i^{-1/2} u_iᵀ: a scalar gain of η
    times a fixed row. Returns an array (k, 5) of (K, h₁, q₁, h₂, q₂); K = 0 where the gain
    is 0 on the whole range.
    """
    fits, cache = np.zeros((k, 5)), {}
    for i, lam in enumerate(eigvals[:k]):
        if lam <= np.exp(eta_range[0]):
            continue  # collapsed over the whole range: K = 0
        if lam not in cache:

            def gain(eta, lam=lam):
                return np.sqrt(np.maximum(0.0, 1.0 - np.exp(eta) / lam))

            cache[lam] = best_gate_product_fit(gain, "sigmoid", eta_range=eta_range).params
        fits[i] = cache[lam]
    return fits


def _start_from_theorem1(model, spec, k, eta_range):
    """Load every construction this gate choice admits; returns how each part started."""
    center, scale = gate_input_affine(model.gate_input, model.beta_range)
    start = {"encoder": "seeded initialisation", "decoder": "seeded initialisation"}
    start["covariance"] = "seeded initialisation"
    h = model.hidden
    if h < k:
        return start
    eigvals, eigvecs = spec.eigvals, spec.eigvecs
    pad = max(0, k - eigvals.shape[0])  # latents beyond d: zero eigenvalue, zero direction
    lam = np.concatenate([eigvals, np.zeros(pad)])[:k]
    U = np.concatenate([eigvecs, np.zeros((eigvecs.shape[0], pad))], axis=1)[:, :k]
    if model.decoder_gate == "sqrt":
        first, second = decoder_response_layers(eigvals, eigvecs, k)
        _load_layer(model.decoder1, model.decoder1_gate, _widen(first, rows=h), center, scale)
        _load_layer(model.decoder2, model.decoder2_gate, _widen(second, cols=h), center, scale)
        start["decoder"] = "Theorem 1, eqs. 37-39 (exact)"
    if model.encoder_gate == "sqrt":
        first, second = joint_encoder_layers(eigvals, eigvecs, k)
        _load_layer(model.encoder1, model.encoder1_gate, _widen(first, rows=h), center, scale)
        _load_layer(model.encoder2, model.encoder2_gate, _widen(second, cols=h), center, scale)
        start["encoder"] = "Theorem 1, reading (b) with σ_D (exact)"
    elif model.encoder_gate == "sigmoid":
        # reading (b) with σ_E: Λ^{-1/2}Uᵀ gated by the best sigmoid pair per latent
        fits = _joint_gain_fits(lam, k, eta_range)
        positive = lam > 0
        rows = np.where(
            positive[:, None], U.T / np.sqrt(np.where(positive, lam, 1.0))[:, None], 0.0
        )
        first = GatedLayer(rows, fits[:, 1], fits[:, 2], "sigmoid")
        second = GatedLayer(np.diag(fits[:, 0]), fits[:, 3], fits[:, 4], "sigmoid")
        _load_layer(model.encoder1, model.encoder1_gate, _widen(first, rows=h), center, scale)
        _load_layer(model.encoder2, model.encoder2_gate, _widen(second, cols=h), center, scale)
        start["encoder"] = "reading (b) with σ_E: least-squares gate fits per latent (not exact)"
    covariance_gate = model.covariance_gate_module
    placeholder = torch.empty(k, k, dtype=torch.float64)  # the covariance has no base matrix
    if model.covariance_gate == "hinge":
        first, _ = joint_covariance_layers(eigvals, k)
        with torch.no_grad():
            model.log_variance.zero_()  # c = e^ρ · min(1, e^x), ρ = 0; layer 2 is 1
        _load_layer(placeholder, covariance_gate, first, center, scale)
        start["covariance"] = "Theorem 1, reading (b) with the hinge (exact)"
    elif model.covariance_gate == "sigmoid":
        # σ(η − log λ) = β/(λ + β) ≈ min(1, β/λ) away from β = λ; c = 1 where λ = 0
        positive = lam > 0
        first = GatedLayer(
            np.eye(k),
            np.where(positive, 1.0, 0.0),
            np.where(positive, -np.log(np.where(positive, lam, 1.0)), 0.0),
            "sigmoid",
        )
        with torch.no_grad():
            model.log_variance.copy_(torch.as_tensor(np.where(positive, 0.0, np.log(2.0))))
        _load_layer(placeholder, covariance_gate, first, center, scale)
        start["covariance"] = "reading (b) with σ_E: σ(η − log λ_i) (not exact at β ≈ λ_i)"
    return start


_PARTS = {
    "encoder": ("encoder1", "encoder2", "encoder1_gate.", "encoder2_gate."),
    "decoder": ("decoder1", "decoder2", "decoder1_gate.", "decoder2_gate."),
    "covariance": ("log_variance", "covariance_gate_module."),
}


def _trainable(model, parts):
    """The parameters of ``parts`` (never the decoder bias: the data mean, 0 here)."""
    prefixes = tuple(prefix for part in parts for prefix in _PARTS[part])
    return [p for name, p in model.named_parameters() if name.startswith(prefixes)]


def _lbfgs(model, parameters, objective, max_iterations, progress=None):
    """Deterministic L-BFGS over ``parameters`` in place; returns (iterations, converged).

    ``progress`` (a tqdm bar) advances by one per iteration.
    """
    sizes = [p.numel() for p in parameters]

    def assign(flat):
        with torch.no_grad():
            for p, chunk in zip(parameters, np.split(flat, np.cumsum(sizes)[:-1]), strict=True):
                p.copy_(torch.as_tensor(chunk).reshape(p.shape))

    def value_and_gradient(flat):
        assign(flat)
        model.zero_grad()
        loss = objective()
        loss.backward()
        grad = [torch.zeros_like(p) if p.grad is None else p.grad for p in parameters]
        return loss.item(), np.concatenate([g.reshape(-1).numpy() for g in grad])

    flat0 = np.concatenate([p.detach().reshape(-1).numpy() for p in parameters])
    start_value = value_and_gradient(flat0)[0]
    result = scipy.optimize.minimize(
        value_and_gradient,
        flat0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 30},
        callback=None if progress is None else lambda _: progress.update(1),
    )
    assign(result.x if result.fun <= start_value else flat0)
    return int(result.nit), bool(result.success)


def representation_floor(
    cov,
    k,
    betas,
    *,
    encoder_gate="sigmoid",
    decoder_gate="sqrt",
    covariance_gate="sigmoid",
    hidden=None,
    gate_input="standardized",
    beta_range=DEFAULT_BETA_RANGE,
    max_iterations=1000,
    seed=0,
    progress=False,
):
    """Fit the MR-VAE's gated parameterisation to the analytic optimum over a β grid.

    Parameters
    ----------
    cov : array_like of shape (d, d), or Spectrum
        Data covariance (its eigenvectors matter: the decoder's output gates act per
        data coordinate).
    k : int
        Latent size, ``k >= 1`` (latents beyond ``d`` are collapsed at the optimum).
    betas : array_like of shape (m,)
        The β grid (the compare report's ``betas``).
    encoder_gate, decoder_gate, covariance_gate, hidden, gate_input, beta_range
        As for :class:`linvae.mrvae.model.LinearMRVAE` (the paper's gates by default);
        pass the trained MR-VAE's ``config()`` values. With ``hidden > k`` the construction
        uses k hidden units and the others start at zero, where their gradient is zero:
        the result is then the floor of ``hidden = k``, still an upper bound. With
        ``hidden < k`` there is no construction and every part starts from the seeded
        initialisation.
    max_iterations : int, default 1000
        L-BFGS iterations at most, per phase (phase 1: the parts without an exact
        construction, the others frozen at it; phase 2: all parts).
    seed : int, default 0
        Seed of the initial weights of layers without a construction.
    progress : bool, default False
        Draw a tqdm bar of the L-BFGS iterations on stderr (on a terminal or in a notebook).

    Returns
    -------
    Floor
        ``floor`` per β: an upper bound on the lowest excess this gate family reaches with
        one parameter set for the whole grid.

    Raises
    ------
    TypeError, ValueError
        On a bad covariance, ``k``, β grid or gate name.
    """
    spec = as_spectrum(cov)
    d = spec.eigvals.shape[0]
    k = as_latent_size(k)
    betas = as_betas(betas)
    max_iterations = as_int(max_iterations, "max_iterations", minimum=0)
    model = LinearMRVAE(
        d,
        k,
        encoder_gate,
        decoder_gate,
        covariance_gate,
        hidden,
        gate_input=gate_input,
        beta_range=beta_range,
        seed=seed,
        dtype=torch.float64,
    )
    eta_range = (float(np.log(betas.min())), float(np.log(betas.max())))
    if eta_range[0] == eta_range[1]:
        eta_range = (eta_range[0] - 1.0, eta_range[1] + 1.0)
    start = _start_from_theorem1(model, Spectrum(spec.eigvals, spec.eigvecs), k, eta_range)
    optimum = rate_distortion(spec.eigvals, k, betas).loss
    cov_t = torch.as_tensor((spec.eigvecs * spec.eigvals) @ spec.eigvecs.T)
    cov_t = (cov_t + cov_t.T) / 2
    mean_t = torch.zeros(d, dtype=torch.float64)
    log_betas = torch.as_tensor(np.log(betas))
    optimum_mean = float(np.mean(optimum))

    def mean_loss():
        return exact_loss(model, log_betas, mean_t, cov_t).loss

    with torch.no_grad():
        start_value = mean_loss().item() - optimum_mean
    exact_parts = [
        part
        for part, gate in zip(
            ("encoder", "decoder", "covariance"),
            (encoder_gate, decoder_gate, covariance_gate),
            strict=True,
        )
        if gate == EXACT_GATES[part] and model.hidden >= k
    ]
    exact = len(exact_parts) == 3
    iterations, converged = 0, True
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small products: threads cost more than they give
    fitting = not exact and max_iterations > 0
    name = f"floor {encoder_gate}/{decoder_gate}/{covariance_gate}"
    bar = progress_bar(name, None, unit="iteration", disable=None if progress else True)
    try:
        if fitting:
            # phase 1: the exactly represented responses stay at their construction, the
            # others fit to them (a sqrt gate pushed shut in a joint fit has no gradient
            # and kills its unit); phase 2: everything, from there
            free = [part for part in _PARTS if part not in exact_parts]
            if exact_parts:
                n, ok = _lbfgs(model, _trainable(model, free), mean_loss, max_iterations, bar)
                iterations, converged = iterations + n, ok
            everything = _trainable(model, list(_PARTS))
            n, ok = _lbfgs(model, everything, mean_loss, max_iterations, bar)
            iterations, converged = iterations + n, ok
    finally:
        bar.close()
        torch.set_num_threads(threads)
    with torch.no_grad():
        terms = exact_loss(model, log_betas, mean_t, cov_t)
        losses = (terms.distortion + torch.exp(log_betas) * terms.rate).numpy()
    floor = losses - optimum
    return Floor(
        betas=betas,
        floor=floor,
        optimum=optimum,
        mean_floor=float(np.mean(floor)),
        start_mean_excess=float(start_value),
        start=start,
        exact=exact,
        iterations=iterations,
        converged=converged,
        gates={
            "encoder_gate": encoder_gate,
            "decoder_gate": decoder_gate,
            "covariance_gate": covariance_gate,
            "hidden": model.hidden,
            "gate_input": gate_input,
            "beta_range": list(model.beta_range),
        },
        model=model,
    )
