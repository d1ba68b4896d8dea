"""pythae models (the optional extra ``linvae[pythae]``) as an :class:`AffineVAE` and a β.

pythae's ``VAE`` and ``BetaVAE`` with ``reconstruction_loss="mse"`` minimise, per example,
``½‖x − x̂‖² + β KL`` (``0.5 * F.mse_loss(..., reduction="none").sum(-1)`` plus ``β`` times the
KL summed over the latents; ``β = 1`` for ``VAE``), which is the unit-variance model of
eq. 13 at the same β: ``effective_beta(β)`` with the defaults. ``"bce"`` is a Bernoulli
decoder, outside the family. The encoder returns ``embedding`` and ``log_covariance`` (a
log-variance), the decoder ``reconstruction``; both nets must be made of ``nn.Linear``.
pythae itself is never imported here: the model is read through those attributes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._conventions import effective_beta
from ._torch import from_torch

#: pythae model classes whose objective is the β-VAE loss of eq. 13.
SUPPORTED_CLASSES = ("VAE", "BetaVAE")


class _FlatEncoder(nn.Module):
    """x (n, d) → (mean, log-variance) side by side (n, 2k), through the pythae encoder."""

    def __init__(self, encoder, input_dim):
        super().__init__()
        self.net = encoder
        self.input_dim = tuple(input_dim)

    def forward(self, x):
        out = self.net(x.reshape(x.shape[0], *self.input_dim))
        return torch.cat([out["embedding"], out["log_covariance"]], dim=-1)


class _FlatDecoder(nn.Module):
    """z (n, k) → the reconstruction flattened to (n, d)."""

    def __init__(self, decoder):
        super().__init__()
        self.net = decoder

    def forward(self, z):
        out = self.net(z)["reconstruction"]
        return out.reshape(out.shape[0], -1)


def from_pythae(model):
    """The :class:`AffineVAE` of a linear pythae ``VAE``/``BetaVAE`` and the β it optimises.

    Parameters
    ----------
    model : pythae.models.VAE or pythae.models.BetaVAE
        With ``model_config.reconstruction_loss == "mse"`` and encoder and decoder nets of
        ``nn.Linear`` layers only.

    Returns
    -------
    model : AffineVAE
        In float64 (the posterior log-variance may depend on x: ``model.mode``).
    beta : float
        The β of the unit-variance model: the pythae model's ``beta`` (1 for ``VAE``).

    Raises
    ------
    ValueError
        For a pythae class with another objective, or a ``"bce"`` (Bernoulli) decoder.
    NotLinearError
        Naming the first non-linear layer of the encoder or decoder net.
    """
    name = type(model).__name__
    if not type(model).__module__.startswith("pythae") or name not in SUPPORTED_CLASSES:
        raise ValueError(
            f"model must be a pythae VAE or BetaVAE (the β-VAE objective of eq. 13), got "
            f"{type(model).__module__}.{name}"
        )
    config = model.model_config
    if config.reconstruction_loss != "mse":
        raise ValueError(
            f"the pythae model's reconstruction_loss is {config.reconstruction_loss!r}, a "
            "Bernoulli decoder: outside the linear-Gaussian family (only 'mse' is Gaussian)"
        )
    input_dim = tuple(config.input_dim)
    d = math.prod(input_dim)
    affine = from_torch(
        _FlatEncoder(model.encoder, input_dim), _FlatDecoder(model.decoder), "split", d=d
    )
    beta = float(getattr(model, "beta", 1.0)) if name == "BetaVAE" else 1.0
    return affine, effective_beta(beta)
