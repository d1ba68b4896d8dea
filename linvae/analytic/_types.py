"""The records the analytic module returns; all arrays are float64."""

from typing import NamedTuple

import numpy as np


class Moments(NamedTuple):
    """First and second moments of a data set.

    Attributes
    ----------
    mean : ndarray of shape (d,)
        Sample mean.
    cov : ndarray of shape (d, d)
        Maximum-likelihood covariance (normalised by ``n``, not ``n - 1``).
    n : int
        Number of examples.
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int


class Spectrum(NamedTuple):
    """Eigendecomposition of a covariance, ``cov = eigvecs @ diag(eigvals) @ eigvecs.T``.

    Attributes
    ----------
    eigvals : ndarray of shape (d,)
        Eigenvalues in descending order, >= 0 (round-off negatives are set to 0).
    eigvecs : ndarray of shape (d, d)
        Orthonormal eigenvectors, one per column, in the order of ``eigvals``.
    """

    eigvals: np.ndarray
    eigvecs: np.ndarray


class LinearVAEParams(NamedTuple):
    """Parameters of a linear VAE with a diagonal Gaussian posterior (eq. 12).

    The model is ``q(z|x) = N(E (x - mean), diag(c))`` and ``p(x|z) = N(D z + b, I)``.

    Attributes
    ----------
    E : ndarray of shape (k, d)
        Encoder weight.
    c : ndarray of shape (k,)
        Posterior variances, > 0.
    D : ndarray of shape (d, k)
        Decoder weight.
    """

    E: np.ndarray
    c: np.ndarray
    D: np.ndarray


class Terms(NamedTuple):
    """The β-VAE objective (eq. 13) split into its terms, in nats per example.

    Attributes
    ----------
    rate : float
        ``E_x[KL(q(z|x) || p(z))]``.
    distortion : float
        ``E_x E_q[-log p(x|z)]``, including the constant ``d/2 log 2π``.
    loss : float
        ``distortion + beta * rate``.
    squared_error : float
        ``E‖x − x̂‖²`` per example: ``distortion = d/2 log 2π + squared_error / 2``, kept
        apart from the constant, which swallows it for data of small spread (MSE, PSNR and
        the excess are formed from it).
    """

    rate: float
    distortion: float
    loss: float
    squared_error: float


class Gradients(NamedTuple):
    """Gradients of the loss (not of the ELBO) per example, with the decoder bias at the mean.

    Attributes
    ----------
    E : ndarray of shape (k, d)
    c : ndarray of shape (k,)
    D : ndarray of shape (d, k)
    """

    E: np.ndarray
    c: np.ndarray
    D: np.ndarray


class Curve(NamedTuple):
    """The optimal linear β-VAE's rate, distortion and loss on a grid of β.

    Attributes
    ----------
    betas : ndarray of shape (m,)
    rate, distortion, loss : ndarray of shape (m,)
        Nats per example, aligned with ``betas``.
    squared_error : ndarray of shape (m,)
        ``E‖x − x̂‖²`` per example, apart from the constant of the distortion (see
        :class:`Terms`).
    """

    betas: np.ndarray
    rate: np.ndarray
    distortion: np.ndarray
    loss: np.ndarray
    squared_error: np.ndarray
