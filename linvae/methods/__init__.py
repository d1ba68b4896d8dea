"""Training methods for a whole rate-distortion curve from one model, scored exactly.

A method is a model family, an objective (exact or sampled) and a schedule; each trains on
(X, β range, :class:`Budget`) and is scored through its linear maps per β
(:func:`score`), against the analytic optimum. One module per registered method:

``beta_vae_bank``
    ``beta-vae-bank``: N linear β-VAEs trained batched, log-interpolated between.
``mrvae_paper``
    ``mrvae-paper``: the paper's MR-VAE (appendices B–C as written).
``mrvae_linvae``
    ``mrvae-linvae``: linvae's MR-VAE and recipe.
``yoto``
    ``yoto``: loss-conditional training, FiLM by an MLP of log β.
``gain_units``
    ``gain-units``: per-latent gain vectors at L levels, exponential interpolation.

A user's method: :func:`custom` (docs/scoreboard.md shows the whole plug-in).
"""

from . import beta_vae_bank, gain_units, mrvae_linvae, mrvae_paper, yoto  # noqa: F401  (register)
from ._base import (
    REGISTRY,
    Budget,
    Method,
    Trained,
    as_trained,
    custom,
    get,
    probed_maps,
    register,
)
from .scoring import score, summary

__all__ = [
    "REGISTRY",
    "Budget",
    "Method",
    "Trained",
    "as_trained",
    "custom",
    "get",
    "probed_maps",
    "register",
    "score",
    "summary",
]
