r"""Theorem 1's gated parameterisations, instantiated in float64 (appendix A.2).

A gated layer (eqs. 25-26, 30-31, 37-38) scales row i of a fixed base by a gate of η:

.. math::

    W(\eta) = \sigma(h\,\eta + q) \odot_{\text{row}} W_{\text{base}},

and each response is the product of two such layers, ``W⁽²⁾(η) W⁽¹⁾(η)``. The functions
here build the layers of each construction; :func:`two_layer` evaluates them.

Readings (see docs/theorem1.md): (a) encoder and covariance as best responses to a fixed
decoder D (eqs. 21-22, what the appendix builds); (b) the joint optimum, where D = D*(η)
moves with η and E, c respond to it.
"""

from typing import NamedTuple

import numpy as np

from .._checks import as_choice, as_float_array, as_latent_size, as_real
from .gates import GATES, gate_function

# A constant layer is a gate with zero slope: sigmoid(0) = 1/2, so its base is doubled;
# σ_D never reaches 1, so a σ_D-gated constant uses q = −log 2 (σ_D = 2^{-1/2}) and a base
# scaled by √2; the hinge is 1 at q = 0.
_CONSTANT_OFFSET = {"sigmoid": 0.0, "sqrt": -np.log(2.0), "hinge": 0.0}
_CONSTANT_VALUE = {"sigmoid": 0.5, "sqrt": np.sqrt(0.5), "hinge": 1.0}


class GatedLayer(NamedTuple):
    """One gated linear layer ``σ(slope·η + offset) ⊙_row base``.

    Attributes
    ----------
    base : ndarray of shape (n_out, n_in)
    slope : ndarray of shape (n_out,)
        The appendix's v, t or h.
    offset : ndarray of shape (n_out,)
        The appendix's s, p or q.
    gate : str
        One of ``"sigmoid"``, ``"sqrt"``, ``"hinge"``.
    """

    base: np.ndarray
    slope: np.ndarray
    offset: np.ndarray
    gate: str


def gated_weight(layer, eta):
    """The weight of a gated layer at η (eqs. 25, 30, 37), shape (n_out, n_in)."""
    if not isinstance(layer, GatedLayer):
        raise TypeError(f"layer must be a GatedLayer, got {type(layer).__name__}")
    eta = as_real(eta, "eta")
    scale = gate_function(layer.gate)(layer.slope * eta + layer.offset)
    return scale[:, None] * layer.base


def two_layer(layers, eta):
    """``W⁽²⁾(η) W⁽¹⁾(η)`` for ``layers = (first, second)``, shape (n_out, n_in)."""
    first, second = layers
    return gated_weight(second, eta) @ gated_weight(first, eta)


def constant_layer(matrix, gate):
    """A gated layer equal to ``matrix`` for every η: zero slope, base rescaled by the gate."""
    as_choice(gate, "gate", GATES)
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    return GatedLayer(
        matrix / _CONSTANT_VALUE[gate],
        np.zeros(n),
        np.full(n, _CONSTANT_OFFSET[gate]),
        gate,
    )


def _check_matrix(value, name, ndim=2):
    return as_float_array(value, name, ndim=ndim)


def _numerical_rank_mask(values):
    """Which of the nonnegative ``values`` are nonzero at float64 precision."""
    cutoff = np.finfo(np.float64).eps * max(values.shape[0], 1) * (values.max(initial=0.0))
    return values > cutoff


def encoder_response_layers(D):
    """Eqs. 25-28, reading (a): a sigmoid-gated E(η) = E*(η) for the fixed decoder D.

    With the thin SVD D = A S Bᵀ, layer 1 is σ_E(−η + 2 log Sᵢᵢ) ⊙_row Aᵀ (eq. 27) and
    layer 2 the constant B S⁻¹ (base 2BS⁻¹ with gate σ_E(0) = 1/2). Correction for a zero
    singular value (where eq. 27's log Sᵢᵢ is undefined): row i of the base Aᵀ is zero
    and S⁻¹ is the pseudo-inverse, since E*(η) = B(S² + βI)⁻¹SAᵀ has no component there.

    Parameters
    ----------
    D : array_like of shape (d, k)

    Returns
    -------
    (GatedLayer, GatedLayer)
        Layer 1 of shape (k, d), layer 2 of shape (k, k).
    """
    D = _check_matrix(D, "D")
    A, s, Bt = np.linalg.svd(D, full_matrices=False)
    nonzero = _numerical_rank_mask(s)
    safe = np.where(nonzero, s, 1.0)
    first = GatedLayer(
        np.where(nonzero[:, None], A.T, 0.0),
        -np.ones_like(s),  # v⁽¹⁾ = −1
        np.where(nonzero, 2.0 * np.log(safe), 0.0),  # s⁽¹⁾ᵢ = 2 log Sᵢᵢ, eq. 27
        "sigmoid",
    )
    second = constant_layer(Bt.T * np.where(nonzero, 1.0 / safe, 0.0), "sigmoid")  # 2BS⁺ base
    return first, second


def covariance_response_layers(D):
    """Eqs. 29-32, reading (a): a sigmoid-gated diagonal C(η) = C*(η) for the fixed D.

    Layer 1 (eq. 30): where g = diag(DᵀD)ᵢ > 0, base 1, t = 1, p = −log g (σ_E(η − log g)
    = β/(g + β)); where g = 0, base 2, t = p = 0 (σ_E(0)·2 = 1 = C*). Layer 2 is the
    constant I (base 2I, gate σ_E(0)).

    Returns
    -------
    (GatedLayer, GatedLayer)
        Two diagonal (k, k) layers.
    """
    D = _check_matrix(D, "D")
    g = np.einsum("ij,ij->j", D, D)
    positive = g > 0
    first = GatedLayer(
        np.diag(np.where(positive, 1.0, 2.0)),
        np.where(positive, 1.0, 0.0),
        np.where(positive, -np.log(np.where(positive, g, 1.0)), 0.0),
        "sigmoid",
    )
    return first, constant_layer(np.eye(D.shape[1]), "sigmoid")


def _top_spectrum(eigvals, eigvecs, k, rotation):
    eigvals = _check_matrix(eigvals, "eigvals", ndim=1)
    eigvecs = _check_matrix(eigvecs, "eigvecs")
    d = eigvals.shape[0]
    if eigvecs.shape != (d, d):
        raise ValueError(f"eigvecs must have shape ({d}, {d}), got {eigvecs.shape}")
    k = as_latent_size(k)
    if np.any(eigvals < 0):
        raise ValueError(f"eigvals must be >= 0, got min {eigvals.min()}")
    R = np.eye(k) if rotation is None else _check_matrix(rotation, "rotation")
    if R.shape != (k, k):
        raise ValueError(f"rotation must have shape ({k}, {k}), got {R.shape}")
    if k > d:  # latents beyond d are collapsed: a zero eigenvalue and a zero eigenvector each
        eigvals = np.concatenate([eigvals, np.zeros(k - d)])
        eigvecs = np.concatenate([eigvecs, np.zeros((d, k - d))], axis=1)
    lam = eigvals[:k]
    return lam, eigvecs[:, :k], R, lam > 0


def decoder_response_layers(eigvals, eigvecs, k, rotation=None):
    """Eqs. 37-39: a σ_D-gated D(η) = D*(η) = U max(0, Λ − e^η)^{1/2} R.

    Layer 1: σ_D(η − ξᵢ) ⊙_row R with ξᵢ = log λᵢ; layer 2: the constant UΛ^{1/2}
    (base √2·UΛ^{1/2}, gate σ_D(−log 2) = 2^{-1/2}, since σ_D < 1). Correction for λᵢ = 0
    (ξᵢ undefined): any finite offset (0 here); column i of UΛ^{1/2} is zero anyway.

    Parameters
    ----------
    eigvals : array_like of shape (d,)
        Descending eigenvalues of the data covariance, >= 0.
    eigvecs : array_like of shape (d, d)
        Matching eigenvectors in columns.
    k : int
    rotation : array_like of shape (k, k), optional
        R; identity by default.

    Returns
    -------
    (GatedLayer, GatedLayer)
        Layer 1 (k, k), layer 2 (d, k).
    """
    lam, U, R, positive = _top_spectrum(eigvals, eigvecs, k, rotation)
    xi = np.log(np.where(positive, lam, 1.0))
    first = GatedLayer(R.copy(), np.ones(k), np.where(positive, -xi, 0.0), "sqrt")  # q = −ξ
    return first, constant_layer(U * np.sqrt(lam), "sqrt")


def joint_encoder_layers(eigvals, eigvecs, k, rotation=None):
    """Reading (b): a σ_D-gated E(η) = E*(D*(η)) = Rᵀ diag(√(λ − e^η)⁺/λ) Uᵀ.

    √(λ − β)⁺/λ = λ^{-1/2} σ_D(η − log λ): layer 1 is σ_D(η − ξᵢ) ⊙_row Λ^{-1/2}Uᵀ and
    layer 2 the constant Rᵀ. Rows with λᵢ = 0 have a zero base (E* is zero there).

    Returns
    -------
    (GatedLayer, GatedLayer)
        Layer 1 (k, d), layer 2 (k, k).
    """
    lam, U, R, positive = _top_spectrum(eigvals, eigvecs, k, rotation)
    safe = np.where(positive, lam, 1.0)
    base = np.where(positive[:, None], U.T / np.sqrt(safe)[:, None], 0.0)
    first = GatedLayer(base, np.ones(k), np.where(positive, -np.log(safe), 0.0), "sqrt")
    return first, constant_layer(R.T, "sqrt")


def joint_covariance_layers(eigvals, k):
    """Reading (b), R = I: a hinge-gated c(η) = c*(D*(η)) = min(1, e^η/λ).

    Layer 1: min(1, e^{η − ξᵢ}) with base 1 (t = 1, p = −ξᵢ); where λᵢ = 0, c* = 1 and the
    gate is the constant min(1, e⁰) = 1. Layer 2: the constant I. Valid when D*ᵀD* is
    diagonal (R = I or a signed permutation), the only rotations at the joint optimum.

    Returns
    -------
    (GatedLayer, GatedLayer)
        Two diagonal (k, k) layers.
    """
    eigvals = _check_matrix(eigvals, "eigvals", ndim=1)
    lam, _, _, positive = _top_spectrum(eigvals, np.eye(eigvals.shape[0]), k, None)
    offset = np.where(positive, -np.log(np.where(positive, lam, 1.0)), 0.0)
    first = GatedLayer(np.eye(k), np.where(positive, 1.0, 0.0), offset, "hinge")
    return first, constant_layer(np.eye(k), "hinge")
