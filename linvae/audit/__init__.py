"""Audit any linear-Gaussian VAE against the analytic optimum.

``audit`` splits a model's excess loss over the optimum into an encoder, a bias and a
decoder part along one chain of best responses (eqs. 21–23), measures the decoder's
geometry against water-filling, and says which latents are active, collapsed or wasted.
``effective_beta`` maps a training convention to the β of the unit-variance model.

The audit itself is numpy only: ``import linvae.audit`` does not import torch. The
adapters that read torch modules (:func:`from_torch`, :func:`from_pythae`) import it when
first used.
"""

from ._audit import STATUS_TOLERANCE, Audit, audit
from ._conventions import PRESETS, Convention, effective_beta, parse_convention, preset_options
from ._files import load_npz, save_npz
from ._geometry import Geometry
from ._model import AffineVAE, NotLinearError, audit_model, linvae_form
from ._mrvae import audit_mrvae, mrvae_at

#: Names whose module imports torch, loaded on first use (PEP 562).
_LAZY = {"from_torch": "._torch", "from_pythae": "._pythae"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "STATUS_TOLERANCE",
    "AffineVAE",
    "Audit",
    "Convention",
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
    "preset_options",
    "save_npz",
]
