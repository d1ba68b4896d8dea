"""``audit``: a linear VAE's exact loss against the optimum, where the excess comes from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linvae._checks import as_beta, as_float_array, as_positive
from linvae.analytic import Moments, Terms, objective, spectrum

from ._geometry import Geometry, decoder_geometry
from ._split import above_constant, split_excess

#: Default threshold of the latent statuses: a latent whose rate is at most this (nats) is
#: collapsed; one with more rate whose decoder column has ‖D_j‖² at most this times
#: max(λ₁, β) is wasted. A convention, not a measured constant: pass ``tol`` to change it.
STATUS_TOLERANCE = 1e-6

MODES = ("fixed", "per-example")


@dataclass(frozen=True)
class Audit:
    """A linear VAE audited against the analytic optimum at one β, nats per example.

    Attributes
    ----------
    beta : float
    d, k : int
        Data and latent sizes.
    mode : {"fixed", "per-example"}
        How the posterior variance was evaluated: a free parameter (the loss is a function
        of the data's moments) or linear in x through its log (exact per example, averaged).
    loss, optimum : Terms
        The model's rate, distortion and loss, and those of the analytic optimum (eq. 23).
    excess : float
        ``loss.loss − optimum.loss`` ≥ 0 up to round-off, formed without the constant
        ``d/2 log 2π`` of both (from ``squared_error`` and ``rate``), so that it keeps its
        digits for data of any spread.
    encoder_mean, encoder_offset, encoder_variance : float
        The encoder part split into the mean map, its offset and the posterior variance
        (each ≥ 0, closed forms of eqs. 21–22; see ``linvae.audit._split``).
    bias : float
        What moving the decoder bias to the data mean gains with the best encoder (≥ 0).
    decoder : float
        What is left: the loss of the decoder with its best encoder and the bias at the
        mean, minus the optimum (≥ 0 up to round-off).
    best_encoder_loss, best_encoder_and_bias_loss : float
        The losses of the chain, L₁ and L₂.
    roundoff_scale : float
        ``tr S + |loss| + |optimum|``: the parts are exact to about ``1e-13`` of it.
    geometry : Geometry
    latent_rates : ndarray of shape (k,)
        KL of each latent, averaged over the data; they sum to ``loss.rate``.
    column_norms : ndarray of shape (k,)
        ``‖D_j‖²``.
    statuses : tuple of str, length k
        ``"active"``, ``"collapsed"`` (rate ≤ ``tol``) or ``"wasted"`` (rate > ``tol`` but
        ``‖D_j‖² ≤ tol · max(λ₁, β)``: rate paid for nothing the decoder uses).
    tol : float
        The threshold used for the statuses.
    """

    beta: float
    d: int
    k: int
    mode: str
    loss: Terms
    optimum: Terms
    excess: float
    encoder_mean: float
    encoder_offset: float
    encoder_variance: float
    bias: float
    decoder: float
    best_encoder_loss: float
    best_encoder_and_bias_loss: float
    roundoff_scale: float
    geometry: Geometry
    latent_rates: np.ndarray
    column_norms: np.ndarray
    statuses: tuple
    tol: float

    @property
    def encoder(self) -> float:
        """The encoder part: ``encoder_mean + encoder_offset + encoder_variance``."""
        return self.encoder_mean + self.encoder_offset + self.encoder_variance

    @property
    def parts(self) -> dict:
        """``{"encoder", "bias", "decoder"}``: they add up to ``excess``."""
        return {"encoder": self.encoder, "bias": self.bias, "decoder": self.decoder}

    @property
    def excess_per_beta(self) -> float:
        """``excess / β``: the excess of the Lagrangian R + D/β in nats of rate, free of the
        data's scale (data aX audited at a²β give the same)."""
        return self.excess / self.beta

    @property
    def n_active_latents(self) -> int:
        return sum(status == "active" for status in self.statuses)

    def to_dict(self) -> dict:
        """Every number as JSON builtins (lists for arrays), for ``linvae._io.write_json``."""
        g = self.geometry
        return {
            "beta": self.beta,
            "d": self.d,
            "k": self.k,
            "mode": self.mode,
            "loss": self.loss._asdict(),
            "optimum": self.optimum._asdict(),
            "excess": self.excess,
            "excess_per_beta": self.excess_per_beta,
            "parts": {
                "encoder": self.encoder,
                "encoder_mean": self.encoder_mean,
                "encoder_offset": self.encoder_offset,
                "encoder_variance": self.encoder_variance,
                "bias": self.bias,
                "decoder": self.decoder,
            },
            "chain": {
                "loss": self.loss.loss,
                "best_encoder_loss": self.best_encoder_loss,
                "best_encoder_and_bias_loss": self.best_encoder_and_bias_loss,
                "optimum": self.optimum.loss,
            },
            "roundoff_scale": self.roundoff_scale,
            "geometry": {
                "n_active": g.n_active,
                "reference_dim": g.reference_dim,
                "ambiguous": g.ambiguous,
                "decoder_rank": g.decoder_rank,
                "principal_angles": g.principal_angles.tolist(),
                "singular_values": g.singular_values.tolist(),
                "optimal_singular_values": g.optimal_singular_values.tolist(),
            },
            "latents": {
                "rate": self.latent_rates.tolist(),
                "column_norm_squared": self.column_norms.tolist(),
                "status": list(self.statuses),
                "tol": self.tol,
            },
        }

    def _repr_markdown_(self) -> str:
        """The audit as Markdown tables: the chain, the parts, and every latent's status."""
        parts = self.parts
        lines = [
            f"**Linear VAE audit at β = {self.beta:.6g}** (d = {self.d}, k = {self.k}, posterior "
            f"variance {self.mode}), nats per example",
            "",
            "| | rate | distortion | loss |",
            "|---|---|---|---|",
            f"| model | {self.loss.rate:.6f} | {self.loss.distortion:.6f} | {self.loss.loss:.6f} |",
            f"| optimum | {self.optimum.rate:.6f} | {self.optimum.distortion:.6f} | "
            f"{self.optimum.loss:.6f} |",
            "",
            "| part of the excess | nats |",
            "|---|---|",
            *(f"| {name} | {value:.6g} |" for name, value in parts.items()),
            f"| **excess** | **{self.excess:.6g}** |",
            "",
            f"Excess/β: {self.excess_per_beta:.6g} nats of rate (free of the data's scale).",
            "",
            f"{self.n_active_latents} of {self.k} latents active; water-filling activates "
            f"{self.geometry.n_active}.",
            "",
            "| latent | rate | ‖D_j‖² | status |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| z{j} | {self.latent_rates[j]:.6g} | {self.column_norms[j]:.4g} | {status} |"
            for j, status in enumerate(self.statuses)
        ]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """A one-screen text report."""
        g = self.geometry
        lines = [
            f"linear VAE audit at beta = {self.beta:.6g}  (d = {self.d}, k = {self.k}, "
            f"posterior variance: {self.mode})",
            f"  loss     {self.loss.loss:16.10f} nats  (rate {self.loss.rate:.6f}, "
            f"distortion {self.loss.distortion:.6f})",
            f"  optimum  {self.optimum.loss:16.10f} nats  (rate {self.optimum.rate:.6f}, "
            f"distortion {self.optimum.distortion:.6f})",
            f"  excess   {self.excess:16.10f} nats  ({self.excess_per_beta:.6g} excess/β, nats of "
            "rate: free of the data's scale)",
            f"    encoder  {self.encoder:14.10f}  (mean map {self.encoder_mean:.4g}, offset "
            f"{self.encoder_offset:.4g}, variance {self.encoder_variance:.4g})",
            f"    bias     {self.bias:14.10f}",
            f"    decoder  {self.decoder:14.10f}",
            f"  geometry: water-filling activates {g.n_active} of {self.k} latents; "
            f"decoder rank {g.decoder_rank}",
        ]
        if g.principal_angles.size:
            note = (
                f" (tie at the boundary: angles to the top-{g.reference_dim} block)"
                if g.ambiguous
                else ""
            )
            degrees = np.degrees(g.principal_angles)
            lines.append(
                f"    principal angles to the top-{g.reference_dim} subspace: max "
                f"{degrees.max():.4g} deg, mean {degrees.mean():.4g} deg{note}"
            )
        shown = min(self.k, 8)
        lines.append(
            "    singular values of D: "
            + " ".join(f"{v:.4g}" for v in g.singular_values[:shown])
            + (" ..." if self.k > shown else "")
        )
        lines.append(
            "    optimal (λ−β)⁺^½:     "
            + " ".join(f"{v:.4g}" for v in g.optimal_singular_values[:shown])
            + (" ..." if self.k > shown else "")
        )
        counts = {s: self.statuses.count(s) for s in ("active", "collapsed", "wasted")}
        lines.append(
            f"  latents: {counts['active']} active, {counts['collapsed']} collapsed, "
            f"{counts['wasted']} wasted (optimum: {g.n_active} active); tol {self.tol:g}"
        )
        order = np.argsort(-self.latent_rates)[:shown]
        lines.extend(
            f"    z{j:<3d} rate {self.latent_rates[j]:10.6f}  ‖D_j‖² {self.column_norms[j]:10.4g}"
            f"  {self.statuses[j]}"
            for j in order
        )
        if self.k > shown:
            lines.append(f"    ... {self.k - shown} more latents (to_dict() lists all)")
        return "\n".join(lines)


def _as_moments(moments):
    if isinstance(moments, Moments):
        mean, cov = moments.mean, moments.cov
    elif isinstance(moments, tuple) and len(moments) in (2, 3):
        mean, cov = moments[0], moments[1]
    else:
        raise TypeError(
            f"moments must be a Moments(mean, cov, n) or a (mean, cov) pair, "
            f"got {type(moments).__name__}"
        )
    return as_float_array(mean, "moments.mean", ndim=1), as_float_array(cov, "moments.cov", ndim=2)


def _as_tol(tol):
    return as_positive(tol, "tol")


def _statuses(latent_rates, column_norms, spec, beta, tol):
    scale = max(float(spec.eigvals[0]), beta)
    statuses = []
    for rate, norm in zip(latent_rates, column_norms, strict=True):
        if rate <= tol:
            statuses.append("collapsed")
        elif norm <= tol * scale:
            statuses.append("wasted")
        else:
            statuses.append("active")
    return tuple(statuses)


def build_audit(E, t, c_mean, log_c_mean, D, b, mean, cov, beta, mode, tol):
    """The Audit from validated arrays (shared by ``audit`` and ``audit_model``)."""
    spec = spectrum(cov)
    split = split_excess(E, t, c_mean, log_c_mean, D, b, mean, cov, spec, beta)
    column_norms = np.einsum("ij,ij->j", D, D)
    return Audit(
        beta=beta,
        d=mean.shape[0],
        k=E.shape[0],
        mode=mode,
        excess=above_constant(split.loss, beta) - above_constant(split.optimum, beta),
        roundoff_scale=float(np.trace(cov)) + abs(split.loss.loss) + abs(split.optimum.loss),
        geometry=decoder_geometry(D, spec, beta),
        column_norms=column_norms,
        statuses=_statuses(split.latent_rates, column_norms, spec, beta, tol),
        tol=tol,
        **split._asdict(),  # the chain's losses and the parts (the same names)
    )


def audit(params, moments, beta, *, decoder_bias=None, encoder_offset=None, tol=STATUS_TOLERANCE):
    """Audit a linear VAE with a fixed diagonal posterior variance against the optimum.

    The model is ``q(z|x) = N(E(x − m) + t, diag(c))``, ``p(x|z) = N(Dz + b, I)``, prior
    ``N(0, I)`` (eq. 12 with an encoder offset ``t`` and a free decoder bias ``b``).

    Parameters
    ----------
    params : LinearVAEParams
        ``E`` (k, d), ``c`` (k,) > 0, ``D`` (d, k).
    moments : Moments or (mean, cov)
        The data's mean ``m`` (d,) and maximum-likelihood covariance ``S`` (d, d).
    beta : float
        β > 0 of the unit-variance model (see :func:`effective_beta` for other conventions).
    decoder_bias : array_like of shape (d,), optional
        ``b``; the data mean by default.
    encoder_offset : array_like of shape (k,), optional
        ``t``; 0 by default. An ``nn.Linear`` encoder ``E x + e`` has ``t = E m + e``.
    tol : float, default 1e-6
        Threshold of the latent statuses (see :class:`Audit`).

    Returns
    -------
    Audit
        ``excess = encoder + bias + decoder`` along the chain of best responses (eqs. 21–23).

    Raises
    ------
    TypeError, ValueError
        On arrays of the wrong type or shape, NaN/inf, ``c <= 0``, a covariance that is not
        symmetric PSD, or ``beta``/``tol`` not finite and > 0.
    """
    mean, cov = _as_moments(moments)
    beta = as_beta(beta)
    tol = _as_tol(tol)
    d = mean.shape[0]
    b = mean if decoder_bias is None else as_float_array(decoder_bias, "decoder_bias", ndim=1)
    objective(params, mean, cov, beta, decoder_bias=b)  # validates params, shapes and cov
    E, c, D = (np.asarray(a, dtype=np.float64) for a in params)
    k = E.shape[0]
    if encoder_offset is None:
        t = np.zeros(k)
    else:
        t = as_float_array(encoder_offset, "encoder_offset", ndim=1)
        if t.shape != (k,):
            raise ValueError(
                f"encoder_offset must have shape ({k},) to match params.E, got {t.shape}"
            )
    if b.shape != (d,):
        raise ValueError(f"decoder_bias must have shape ({d},), got {b.shape}")
    return build_audit(E, t, c, np.log(c), D, b, mean, cov, beta, "fixed", tol)


__all__ = ["MODES", "STATUS_TOLERANCE", "Audit", "audit", "build_audit"]
