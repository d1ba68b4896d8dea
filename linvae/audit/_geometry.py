r"""Where the decoder points, against what water-filling says it should (eq. 23).

At the optimum ``D* = U max(0, Λ − βI)^{1/2} R``: the column space of ``D*`` is the span of
the ``a`` top eigenvectors with ``λ_i > β`` (``i ≤ k``), and its singular values are
``max(0, λ_i − β)^{1/2}``. This module measures a decoder against both.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from linvae.analytic import active_latents

#: Two eigenvalues closer than this times the largest count as a tie (scipy's ``_PSD``
#: round-off cutoff, the one ``linvae.analytic.spectrum`` uses). The same cutoff tells an
#: eigenvalue from β: a computed eigenvalue is off by a few ``ε·λ₁`` (eigh's backward
#: error), so ``λ = β`` can come back as ``β ± ulp`` and a strict ``λ > β`` would let the
#: BLAS kernel decide whether water-filling activates it.
TIE_TOLERANCE = 1e6 * np.finfo(np.float64).eps


class Geometry(NamedTuple):
    """The decoder's subspace and scales against the optimum's.

    Attributes
    ----------
    n_active : int
        Latents water-filling activates: ``#{i ≤ k : λ_i − β > 1e6·ε·λ₁}``. An eigenvalue
        within round-off of β (the tie cutoff ``TIE_TOLERANCE · λ₁``) is not told from
        ``λ = β``, where water-filling shuts the latent (rate ``½ log(λ/β) = 0``); counting
        it by a strict ``λ > β`` would depend on the BLAS kernel's last bits.
    reference_dim : int
        Dimension of the principal subspace the angles are measured against: ``n_active``,
        or, when a tie straddles its boundary, the end of the tied block.
    ambiguous : bool
        Whether a tie ``λ_a = λ_{a+1}`` at the boundary ``a = n_active`` makes the top-``a``
        subspace ill defined (any ``a`` of the tied directions are optimal).
    decoder_rank : int
        Numerical rank of ``D`` (singular values above ``max(d, k) · eps · σ_max``).
    principal_angles : ndarray of shape (min(decoder_rank, reference_dim),)
        Radians, largest first (``scipy.linalg.subspace_angles``) between ``range(D)`` and
        the reference subspace; all 0 at the optimum.
    singular_values : ndarray of shape (k,)
        Of ``D``, descending (padded with 0 if ``k > d``).
    optimal_singular_values : ndarray of shape (k,)
        ``max(0, λ_i − β)^{1/2}`` for the top ``k`` eigenvalues (padded with 0 if ``k > d``).
    """

    n_active: int
    reference_dim: int
    ambiguous: bool
    decoder_rank: int
    principal_angles: np.ndarray
    singular_values: np.ndarray
    optimal_singular_values: np.ndarray


def decoder_geometry(D, spec, beta):
    """Principal angles and singular values of the decoder ``D`` (d, k) against eq. 23.

    Parameters
    ----------
    D : ndarray of shape (d, k)
    spec : Spectrum
        Of the data covariance, eigenvalues descending.
    beta : float

    Returns
    -------
    Geometry
    """
    d, k = D.shape
    eigvals = spec.eigvals
    top = eigvals[: min(k, d)]
    tie = TIE_TOLERANCE * max(float(eigvals[0]), 0.0)
    # λ = β is a tie with β: decided by the same round-off cutoff, not by the last bits
    n_active = int(active_latents(eigvals, k, [beta])[0])
    optimal = np.zeros(k)
    optimal[: top.shape[0]] = np.sqrt(np.maximum(top - beta, 0.0))

    reference_dim = n_active
    ambiguous = False
    if 0 < n_active < d and eigvals[n_active - 1] - eigvals[n_active] <= tie:
        ambiguous = True
        # the tied block around the boundary, extended downwards: a well-defined subspace
        while reference_dim < d and eigvals[n_active - 1] - eigvals[reference_dim] <= tie:
            reference_dim += 1

    left, singular, _ = np.linalg.svd(D, full_matrices=False)
    cutoff = max(d, k) * np.finfo(np.float64).eps * (singular[0] if singular.size else 0.0)
    decoder_rank = int(np.count_nonzero(singular > cutoff))
    if decoder_rank == 0 or reference_dim == 0:
        angles = np.zeros(0)
    else:
        angles = scipy.linalg.subspace_angles(
            left[:, :decoder_rank], spec.eigvecs[:, :reference_dim]
        )
    padded = np.zeros(k)
    padded[: singular.shape[0]] = singular
    return Geometry(
        n_active=n_active,
        reference_dim=reference_dim,
        ambiguous=ambiguous,
        decoder_rank=decoder_rank,
        principal_angles=angles,
        singular_values=padded,
        optimal_singular_values=optimal,
    )
