r"""Reviving dead latents: dead-unit resampling along what the model leaves unexplained.

A latent whose σ_D gates are shut on the whole β range has no gradient: the polish cannot
bring it back, and the recipe's ``keep_open`` opens its gate but not its direction. When
such a latent's encoder row points where the data has almost no variance, and its decoder
column where other latents already explain the data, opening it costs rate and buys
nothing, so the next run shuts it again; meanwhile directions of variance above β stay
without a latent (measured at d = 3025: 12 of 64 latents, docs/results.md). The repair is
the linear form of dead-unit resampling (as sparse autoencoders and vector quantisers
resample dead units towards the inputs they reconstruct worst): the latent is re-pointed at
a leading direction of the model's residual covariance at the range's bottom,

.. math::

    R = (I - D E)\, S\, (I - D E)^\top, \qquad E = E(\beta_{lo}),\ D = D(\beta_{lo}),

found by a few steps of block power iteration from a random start (each one a gradient
step on the latents' directions with the others fixed), and started at the optimum of one
latent alone on the residual ``(I − D E) x`` along a unit direction u of residual variance
μ = uᵀRu: ``E₁`` row ``uᵀ(I − D E)/√μ``, ``D₂`` column ``√μ u`` (eqs. 21–23 with λ = μ). A direction whose μ is not above β_lo is worth
no latent anywhere on the range, and none is revived along it: a latent beyond the data's
rank stays shut.

This reads the data's covariance and the model, never the analytic optimum: the
directions are the residual's, approximated from a random start.
"""

from __future__ import annotations

import torch

from linvae._checks import as_int

#: Block power iterations for the residual's leading directions (each one product with S).
REVIVE_ITERATIONS = 10


def residual_directions(
    E: torch.Tensor,
    D: torch.Tensor,
    S: torch.Tensor,
    count: int,
    *,
    iterations: int = REVIVE_ITERATIONS,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` leading eigenpairs, approximately, of ``R = (I − D E) S (I − D E)ᵀ``.

    Block power iteration (``iterations`` products with R, each orthonormalised) from a
    Gaussian start, then Rayleigh–Ritz within the block.

    Parameters
    ----------
    E : (k, d) tensor
        The encoder at the β where the residual is taken.
    D : (d, k) tensor
        The decoder at that β.
    S : (d, d) tensor
        The data's covariance.
    count : int
        How many directions, 1 ≤ count ≤ d.
    iterations : int, default REVIVE_ITERATIONS
    generator : torch.Generator, optional
        Of the random start (on the CPU; the start is moved to S's device).

    Returns
    -------
    U : (d, count) tensor
        Orthonormal directions, by decreasing residual variance.
    mu : (count,) tensor
        Their residual variances ``uᵀ R u``, decreasing.
    """
    d = S.shape[0]
    if S.shape != (d, d) or E.shape[1] != d or D.shape != (d, E.shape[0]):
        raise ValueError(
            f"E (k, d), D (d, k) and S (d, d) must agree, got {tuple(E.shape)}, "
            f"{tuple(D.shape)}, {tuple(S.shape)}"
        )
    count = as_int(count, "count", minimum=1)
    if count > d:
        raise ValueError(f"count must be at most d = {d}, got {count}")
    iterations = as_int(iterations, "iterations", minimum=0)

    def residual(Q):  # R Q in O(d² count + d k count)
        Y = S @ (Q - E.T @ (D.T @ Q))
        return Y - D @ (E @ Y)

    return leading_eigenpairs(residual, d, count, iterations, generator, S.dtype, S.device)


def leading_eigenpairs(apply, d, count, iterations, generator, dtype, device):
    """The ``count`` leading eigenpairs, approximately, of a symmetric (d, d) operator given
    by its product ``apply(Q)`` with (d, count) blocks: ``iterations`` orthonormalised
    products from a Gaussian start (from ``generator``, on the CPU, moved to ``device``),
    then Rayleigh–Ritz within the block. Returns ``(U (d, count), mu (count,))`` by
    decreasing ``mu``."""
    start = torch.randn(d, count, generator=generator, dtype=dtype).to(device)
    Q = torch.linalg.qr(start).Q
    for _ in range(iterations):
        Q = torch.linalg.qr(apply(Q)).Q
    T = Q.T @ apply(Q)
    mu, vectors = torch.linalg.eigh(0.5 * (T + T.T))
    return Q @ vectors.flip(1), mu.flip(0)
