"""The linear Multi-Rate VAE in torch: gates, model, objectives and training (appendix A.2, B).

Modules
-------
gates
    The per-unit gate of pre-activations by log β (Listing 1): sigmoid, sqrt, hinge, FiLM.
model
    :class:`LinearMRVAE` (two gated linear layers each for encoder and decoder, a gated
    diagonal covariance) and the ungated β-VAE baseline :class:`LinearVAE`.
objectives
    The sampled (reparameterised) and exact (closed-form, from the data's moments) loss.
train
    Adam with warm-up and cosine decay, β sampling, seeding, progress, Ctrl-C.
recipe, sampled
    linvae's recipe on the exact objective (whitening, Adam, L-BFGS) and on the sampled
    ELBO (mini-batches, antithetic noise, "sticking the landing", no (d, d) matrix).
"""

from .gates import Gate, hinge_gate, sigmoid_gate, sqrt_gate
from .model import LinearMRVAE, LinearVAE, model_from_config
from .objectives import LossTerms, exact_loss, sampled_loss
from .train import TrainConfig, TrainResult, resolve_device

# the training function stays ``linvae.mrvae.train.train``: re-exporting it here would
# hide the submodule ``linvae.mrvae.train`` behind a function of the same name

__all__ = [
    "Gate",
    "LinearMRVAE",
    "LinearVAE",
    "LossTerms",
    "TrainConfig",
    "TrainResult",
    "exact_loss",
    "hinge_gate",
    "model_from_config",
    "resolve_device",
    "sampled_loss",
    "sigmoid_gate",
    "sqrt_gate",
]
