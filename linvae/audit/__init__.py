"""Audit any linear-Gaussian VAE against the analytic optimum (issue 7).

``audit`` splits a model's excess loss over the optimum into an encoder, a bias and a
decoder part along one chain of best responses (eqs. 21–23), measures the decoder's
geometry against water-filling, and says which latents are active, collapsed or wasted.
``effective_beta`` maps a training convention to the β of the unit-variance model.
"""

from ._audit import STATUS_TOLERANCE, Audit, audit
from ._conventions import effective_beta, parse_convention
from ._files import load_npz, save_npz
from ._geometry import Geometry
from ._model import AffineVAE, audit_model, linvae_form
from ._mrvae import audit_mrvae, mrvae_at
from ._pythae import from_pythae
from ._torch import NotLinearError, from_torch

__all__ = [
    "STATUS_TOLERANCE",
    "AffineVAE",
    "Audit",
    "Geometry",
    "NotLinearError",
    "audit",
    "audit_model",
    "audit_mrvae",
    "effective_beta",
    "from_pythae",
    "from_torch",
    "linvae_form",
    "load_npz",
    "mrvae_at",
    "parse_convention",
    "save_npz",
]
