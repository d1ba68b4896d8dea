"""The named conventions: each library's loss, written literally as that library writes it, is
a positive multiple of the unit-variance loss at the preset's β (so the same minimisers)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linvae.audit import PRESETS, effective_beta, parse_convention, preset_options
from linvae.audit._pythae import pythae_convention

B, D_DATA, K = 16, 6, 3
SIGMA2 = 0.3
KLD_WEIGHT = 16 / 1797  # PyTorch-VAE's default: batch / data set size


def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, D_DATA, generator=g, dtype=torch.float64)
    mu = torch.randn(B, K, generator=g, dtype=torch.float64)
    log_var = 0.3 * torch.randn(B, K, generator=g, dtype=torch.float64)
    x_hat = torch.rand(B, D_DATA, generator=g, dtype=torch.float64)
    return x, x_hat, mu, log_var


def kl_per_example(mu, log_var):
    return -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)


def unit_loss(x, x_hat, mu, log_var, beta):
    """eq. 13 per example, averaged over the batch: ½‖x − x̂‖² + β KL."""
    return torch.mean(0.5 * ((x - x_hat) ** 2).sum(-1) + beta * kl_per_example(mu, log_var))


def library_loss(name, x, x_hat, mu, log_var, beta):
    """Each library's loss line (the ``loss`` of its preset), literally."""
    if name == "unit":
        return torch.mean(0.5 * ((x - x_hat) ** 2).sum(-1) + beta * kl_per_example(mu, log_var))
    if name in ("pythae", "pythae-0.1.1"):
        half = 0.5 if name == "pythae" else 1.0
        recon_loss = half * F.mse_loss(
            x_hat.reshape(x.shape[0], -1), x.reshape(x.shape[0], -1), reduction="none"
        ).sum(dim=-1)
        KLD = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=-1)
        return (recon_loss + beta * KLD).mean(dim=0)
    if name == "pytorch-vae":
        recons_loss = F.mse_loss(x_hat, x)
        kld_loss = torch.mean(-0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp(), dim=1), dim=0)
        return recons_loss + beta * KLD_WEIGHT * kld_loss
    if name == "mse-sum":
        return F.mse_loss(x_hat, x, reduction="sum") + beta * kl_per_example(mu, log_var).sum()
    if name == "gaussian-nll":
        per_example = 0.5 * ((x - x_hat) ** 2).sum(-1) / SIGMA2
        return torch.mean(per_example + beta * kl_per_example(mu, log_var))
    raise AssertionError(name)


EXTRAS = {"pytorch-vae": {"kld_weight": KLD_WEIGHT}, "gaussian-nll": {"decoder_variance": SIGMA2}}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_is_its_library_loss_up_to_a_positive_factor(name):
    x, x_hat, mu, log_var = batch()
    options = preset_options(name, **EXTRAS.get(name, {}))
    ratios = []
    for beta in (0.3, 4.0):
        beta_eff = effective_beta(beta, **options, d=D_DATA, k=K)
        ours = unit_loss(x, x_hat, mu, log_var, beta_eff).item()
        ratios.append(library_loss(name, x, x_hat, mu, log_var, beta).item() / ours)
    assert ratios[0] > 0
    assert ratios[0] == pytest.approx(ratios[1], rel=1e-12)


@pytest.mark.parametrize(
    ("text", "beta", "expected"),
    [
        ("unit", 0.5, 0.5),
        ("pythae", 0.5, 0.5),
        ("pythae-0.1.1", 0.5, 0.25),  # no ½: the same beta is half the β
        ("mse-sum", 0.5, 0.25),
        ("gaussian-nll,decoder_variance=0.1", 2.0, 0.2),
        ("pytorch-vae,kld_weight=0.01", 4.0, 4.0 * 0.01 * 64 / 2),
        ("pytorch-vae,batch_size=144", 4.0, 4.0 * (144 / 1797) * 64 / 2),
    ],
)
def test_preset_arithmetic(text, beta, expected):
    # β_eff = β · w · σ² · n_rec / (2 h n_kl), d = 64 (digits), n = 1797
    assert effective_beta(beta, **parse_convention(text, n=1797), d=64) == pytest.approx(
        expected, rel=1e-15
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pytorch-vae", "needs kld_weight, or batch_size and n"),
        ("gaussian-nll", "needs decoder_variance"),
        ("unit,kld_weight=0.1", "belong to pytorch-vae"),
        ("keras", "must be key=value or a preset name"),
        ("mse-sum,half=true", "after a preset must be"),
    ],
)
def test_presets_refuse_what_they_cannot_mean(text, message):
    with pytest.raises(ValueError, match=message):
        parse_convention(text)


@pytest.mark.parametrize(
    ("version", "preset"),
    [("0.1.2", "pythae"), ("0.1.1", "pythae-0.1.1"), ("0.0.1", "pythae-0.1.1")],
)
def test_the_installed_pythae_release_chooses_its_convention(version, preset):
    assert pythae_convention(version) == preset


@pytest.mark.parametrize("version", ["0.1.3", "1.0.0", "0.2", "dev"])
def test_a_pythae_release_linvae_has_not_checked_is_refused(version):
    with pytest.raises(ValueError, match="linvae knows the loss of pythae up to 0.1.2"):
        pythae_convention(version)


def test_every_preset_documents_its_loss_line():
    for convention in PRESETS.values():
        assert convention.loss and convention.source
    assert np.all([name == c.name for name, c in PRESETS.items()])
