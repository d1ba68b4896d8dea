"""The pythae extra: a tiny linear pythae β-VAE trained on digits, then audited exactly."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from linvae.audit import NotLinearError, audit_model, from_pythae
from linvae.data import load

LOG_2PI = np.log(2 * np.pi)


def test_a_non_pythae_model_is_refused():
    with pytest.raises(ValueError, match="model must be a pythae VAE or BetaVAE"):
        from_pythae(nn.Linear(2, 2))


def _linear_nets(d, k):
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.mean = nn.Linear(d, k)
            self.log_var = nn.Linear(d, k)

        def forward(self, x):
            x = x.reshape(x.shape[0], -1)
            return ModelOutput(embedding=self.mean(x), log_covariance=self.log_var(x))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(k, 16), nn.Linear(16, d))

        def forward(self, z):
            return ModelOutput(reconstruction=self.layers(z))

    return Encoder(), Decoder()


def pythae_loss_per_example(model, X, beta):
    """pythae's own β-VAE loss, its expectation over q in closed form, from its modules."""
    encoder = copy.deepcopy(model.encoder).double()
    decoder = copy.deepcopy(model.decoder).double()
    with torch.no_grad():
        x = torch.as_tensor(X)
        out = encoder(x)
        mu, log_var = out["embedding"], out["log_covariance"]
        k = mu.shape[1]
        at_zero = decoder(torch.zeros(1, k, dtype=torch.float64))["reconstruction"]
        columns = decoder(torch.eye(k, dtype=torch.float64))["reconstruction"] - at_zero  # Dᵀ
        error = torch.sum((x - decoder(mu)["reconstruction"]) ** 2, -1) + torch.exp(
            log_var
        ) @ torch.sum(columns**2, -1)
        kl = -0.5 * torch.sum(1 + log_var - mu**2 - torch.exp(log_var), -1)
    # pythae's loss is ½ error + β KL; ours adds the constant d/2 log 2π
    return float(torch.mean(0.5 * X.shape[1] * LOG_2PI + 0.5 * error + beta * kl))


@pytest.mark.slow
def test_a_linear_pythae_beta_vae_trained_on_digits_is_audited(tmp_path):
    pytest.importorskip("pythae")
    from pythae.models import BetaVAE, BetaVAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    X, _ = load("digits")
    d, k, beta = X.shape[1], 4, 0.5
    torch.manual_seed(0)
    config = BetaVAEConfig(input_dim=(d,), latent_dim=k, beta=beta, reconstruction_loss="mse")
    model = BetaVAE(config, *_linear_nets(d, k))
    training = BaseTrainerConfig(
        output_dir=str(tmp_path),
        num_epochs=5,
        learning_rate=1e-2,
        per_device_train_batch_size=64,
        seed=0,
        no_cuda=True,
    )
    TrainingPipeline(model=model, training_config=training)(train_data=X.astype(np.float32))

    affine, beta_eff = from_pythae(model)
    assert beta_eff == beta  # pythae's "mse" is ½‖x − x̂‖², its KL a sum: β as given
    result = audit_model(affine, X, beta_eff)
    assert result.mode == "per-example"  # the log-variance is a linear layer of x
    tol = 1e-10 * result.roundoff_scale
    assert result.excess >= -tol
    assert min(result.encoder_mean, result.encoder_offset, result.encoder_variance) >= 0.0
    assert result.bias >= 0.0 and result.decoder >= -tol
    assert abs(result.excess - (result.encoder + result.bias + result.decoder)) <= tol
    # the adapter read pythae's model exactly: its own loss, computed from its modules
    expected = pythae_loss_per_example(model, X, beta)
    assert abs(result.loss.loss - expected) <= 1e-12 * result.roundoff_scale


def test_pythae_default_nets_and_bernoulli_decoders_are_refused():
    pytest.importorskip("pythae")
    from pythae.models import VAE, VAEConfig

    mlp = VAE(VAEConfig(input_dim=(64,), latent_dim=2))  # pythae's default MLP has ReLUs
    with pytest.raises(NotLinearError, match=r"\(ReLU\) is not a linear layer"):
        from_pythae(mlp)
    bernoulli = VAE(VAEConfig(input_dim=(8,), latent_dim=2, reconstruction_loss="bce"))
    with pytest.raises(ValueError, match="Bernoulli decoder: outside the linear-Gaussian family"):
        from_pythae(bernoulli)
