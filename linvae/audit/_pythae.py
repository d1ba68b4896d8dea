"""pythae models (the optional extra ``linvae[pythae]``) as an :class:`AffineVAE` and a β.

pythae's ``VAE`` and ``BetaVAE`` with ``reconstruction_loss="mse"`` minimise, per example,
``½‖x − x̂‖² + β KL`` from release 0.1.2 (``0.5 * F.mse_loss(..., reduction="none").sum(-1)``
plus ``β`` times the KL summed over the latents; ``β = 1`` for ``VAE``), which is the
unit-variance model of eq. 13 at the same β; earlier releases sum the squared error without
the ½, so the same ``beta`` is ``β/2``. :func:`from_pythae` reads the installed release and
refuses one it does not know. ``"bce"`` is a Bernoulli decoder, outside the family. The encoder returns ``embedding`` and ``log_covariance`` (a
log-variance), the decoder ``reconstruction``; both nets must be made of ``nn.Linear``.
pythae itself is never imported here: the model is read through those attributes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._conventions import effective_beta, preset_options
from ._torch import from_torch

#: The pythae release from which the squared error carries the ½ of a Gaussian likelihood;
#: earlier releases summed it without (the same beta then means half the β). A newer
#: release is refused until its loss is checked.
PYTHAE_HALF_FROM = (0, 1, 2)
PYTHAE_CHECKED_UP_TO = (0, 1, 2)


def pythae_convention(version: str) -> str:
    """The preset of an installed pythae version: ``"pythae"`` or ``"pythae-0.1.1"``.

    Raises
    ------
    ValueError
        For a version whose loss linvae has not checked (newer than 0.1.2, or unreadable).
    """
    try:
        numbers = tuple(int(part) for part in version.split("+")[0].split(".")[:3])
    except ValueError:
        numbers = None
    if numbers is None or len(numbers) != 3 or numbers > PYTHAE_CHECKED_UP_TO:
        raise ValueError(
            f"pythae {version}: linvae knows the loss of pythae up to "
            f"{'.'.join(map(str, PYTHAE_CHECKED_UP_TO))}; read its BetaVAE.loss_function and "
            "give the convention to linvae.audit.effective_beta yourself"
        )
    return "pythae" if numbers >= PYTHAE_HALF_FROM else "pythae-0.1.1"


def _installed_pythae_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pythae")
    except PackageNotFoundError:
        raise ValueError("pythae is not installed (pip install linvae[pythae])") from None


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
        For a pythae class with another objective, a ``"bce"`` (Bernoulli) decoder, or an
        installed pythae whose loss convention linvae does not know (:func:`pythae_convention`).
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
    convention = pythae_convention(_installed_pythae_version())
    return affine, effective_beta(beta, **preset_options(convention))
