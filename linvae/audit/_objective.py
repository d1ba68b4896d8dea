r"""The exact objective with an encoder offset, and the best responses to a fixed decoder.

The posterior mean of an affine encoder is ``E(x − m) + t`` (``m`` the data mean, ``t`` the
offset: ``t = E m + e`` for ``μ(x) = E x + e``). With ``r = m − b`` the decoder bias gap, the
residual ``x − b − Dz`` is ``(I − DE)(x − m) + (r − D t) − D ε``, so (extension of eqs. 14–18):

.. math::

    \text{rate} &= \text{rate}_{t=0} + \tfrac12 \lVert t \rVert^2, \\
    \text{distortion} &= \text{distortion}_{t=0,\ b} \text{ with } b \to b + D t,

i.e. an offset acts on the distortion as the decoder bias ``b + D t`` and adds ``½‖t‖²`` to
the rate. ``linvae.analytic.objective`` evaluates the rest.

For a fixed decoder ``(D, b)`` the loss is a convex quadratic in ``(E, t)`` plus a separable
strictly convex function of ``c``; with ``A = DᵀD + βI`` its minimisers are

.. math::

    E^\star = A^{-1} D^\top \ (\text{eq. 22}),\quad
    t^\star = A^{-1} D^\top (m - b),\quad
    c^\star = \beta / (\operatorname{diag}(D^\top D) + \beta)\ (\text{eq. 21}).
"""

from __future__ import annotations

import numpy as np

from linvae.analytic import LinearVAEParams, Terms, objective


def objective_with_offset(params, mean, cov, beta, decoder_bias, encoder_offset):
    """Exact rate, distortion and loss of ``q(z|x) = N(E(x − m) + t, diag(c))``, ``p = N(Dz + b, I)``.

    Parameters
    ----------
    params : LinearVAEParams
        ``E`` (k, d), ``c`` (k,), ``D`` (d, k).
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
    beta : float
    decoder_bias : ndarray of shape (d,)
        ``b``.
    encoder_offset : ndarray of shape (k,)
        ``t``.

    Returns
    -------
    Terms
        Nats per example; ``objective`` with the bias ``b + D t`` and ``½‖t‖²`` added to
        the rate.
    """
    t = encoder_offset
    terms = objective(params, mean, cov, beta, decoder_bias=decoder_bias + params.D @ t)
    rate = terms.rate + 0.5 * float(t @ t)
    return Terms(rate, terms.distortion, terms.distortion + beta * rate)


def best_encoder(D, beta, bias_gap):
    """The best encoder ``(E*, c*, t*)`` for the decoder ``D`` and ``r = m − b``.

    Parameters
    ----------
    D : ndarray of shape (d, k)
    beta : float
    bias_gap : ndarray of shape (d,)
        ``r = m − b``.

    Returns
    -------
    params : LinearVAEParams
        ``E* = A⁻¹Dᵀ`` (eq. 22), ``c* = β / (diag(DᵀD) + β)`` (eq. 21), ``D``.
    offset : ndarray of shape (k,)
        ``t* = A⁻¹Dᵀ r``, the minimiser of ``½β‖t‖² + ½‖r − D t‖²``.
    """
    k = D.shape[1]
    A = D.T @ D + beta * np.eye(k)
    solution = np.linalg.solve(A, np.column_stack([D.T, D.T @ bias_gap]))  # eq. 22
    E_star, t_star = solution[:, :-1], solution[:, -1]
    c_star = beta / (np.einsum("ij,ij->j", D, D) + beta)  # eq. 21
    return LinearVAEParams(E_star, c_star, D), t_star
