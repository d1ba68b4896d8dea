"""A (trained) ``linvae.mrvae.LinearMRVAE`` at one β as an :class:`AffineVAE`, and its audit per β."""

from __future__ import annotations

import numpy as np

from linvae._checks import as_betas

from ._audit import STATUS_TOLERANCE
from ._model import AffineVAE, audit_model


def mrvae_at(model, beta):
    """The MR-VAE at β as an :class:`AffineVAE`: ``μ(x) = E(β)(x − m_in) + t(β)``.

    Parameters
    ----------
    model : linvae.mrvae.model.LinearMRVAE
        Any (MR-)VAE of linvae, FiLM gates included (their offset and bias move with β).
    beta : float

    Returns
    -------
    AffineVAE
        Fixed posterior variance ``c(β)``; ``encoder_bias = t(β) − E(β) m_in``.
    """
    E, c, D = model.params_at(beta)
    input_mean = model.input_mean.detach().cpu().double().numpy()
    encoder_bias = model.latent_offset(beta) - E @ input_mean
    return AffineVAE(E, encoder_bias, np.log(c), D, model.decoder_bias(beta))


def audit_mrvae(model, moments, betas, *, tol=STATUS_TOLERANCE):
    """:func:`audit_model` of the MR-VAE at each β of a grid.

    Parameters
    ----------
    model : linvae.mrvae.model.LinearMRVAE
    moments : Moments or (mean, cov)
        The data's mean (d,) and covariance (d, d).
    betas : array_like of shape (m,)

    Returns
    -------
    list of Audit
        One per β, in order: ``[a.encoder, a.bias, a.decoder]`` split each ``a.excess``.
    """
    return [
        audit_model(mrvae_at(model, float(beta)), moments, beta, tol=tol)
        for beta in as_betas(betas)
    ]
