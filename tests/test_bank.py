"""The batched β-VAE bank: each member's exact loss is the closed form's, batched training is
N separate trainings, alignment keeps every loss, and the readings between members."""

import numpy as np
import pytest
import torch

from linvae.analytic import LinearVAEParams, objective, optimum
from linvae.data import load
from linvae.mrvae.bank import BetaVAEBank, train_bank
from linvae.mrvae.maps import exact_maps_loss

EIGVALS = [4.0, 2.0, 1.0, 0.3, 0.05]
MEAN = [1.0, -2.0, 0.5, 0.0, 3.0]


@pytest.fixture(scope="module")
def data():
    X, _ = load("gaussian", n=60, eigvals=EIGVALS, mean=MEAN, seed=3)
    return X


def _moments(X):
    mean = X.mean(0)
    centred = X - mean
    return mean, centred.T @ centred / X.shape[0]


def _member_params(bank, i):
    E, c, D, offset, bias = (t[i].detach().numpy() for t in bank.member_maps())
    return LinearVAEParams(E, c, D), offset, bias


@pytest.mark.usefixtures("one_torch_thread")
def test_each_members_batched_exact_loss_is_the_closed_form(data):
    mean, cov = _moments(data)
    bank = BetaVAEBank(5, 3, 4, (0.05, 5.0), seed=2)
    bank.prepare(torch.as_tensor(mean), torch.as_tensor(cov), 0.05)
    with torch.no_grad():
        bank.free_bias.normal_(generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        terms = exact_maps_loss(
            bank.member_maps(), bank.log_betas, torch.as_tensor(mean), torch.as_tensor(cov)
        )
        summed = bank.exact_loss(torch.as_tensor(mean), torch.as_tensor(cov))
    for i, beta in enumerate(bank.betas):
        params, offset, bias = _member_params(bank, i)
        t = params.E @ mean + offset  # the posterior mean at x = m
        expected = objective(params, mean, cov, beta, decoder_bias=bias, encoder_offset=t)
        assert float(terms.rate[i]) == pytest.approx(expected.rate, rel=1e-12, abs=1e-12)
        assert float(terms.distortion[i]) == pytest.approx(expected.distortion, rel=1e-12)
    expected_sum = sum(float(terms.distortion[i] + bank.betas[i] * terms.rate[i]) for i in range(4))
    assert float(summed) == pytest.approx(expected_sum, rel=1e-12)


@pytest.mark.usefixtures("one_torch_thread")
def test_batched_training_is_each_member_trained_alone(data):
    """Each member's loss and Adam are its own: training N at once is N separate runs."""
    bank = BetaVAEBank(5, 3, 3, (0.05, 5.0), seed=7)
    train_bank(bank, data, steps=25, seed=1)
    for i, beta in enumerate(bank.betas):
        single = BetaVAEBank(5, 3, 1, (0.05, 5.0), seed=7 + i, member_betas=[beta])
        train_bank(single, data, steps=25, seed=1)
        # the bank is aligned after training: compare up to its signed permutation via
        # the signed-permutation-invariant products E D (k-free) and the variances' multiset
        E_bank = bank.W[i] @ bank.factor
        E_single = single.W[0] @ single.factor
        D_bank, D_single = bank.V[i], single.V[0]
        assert torch.allclose(D_bank @ E_bank, D_single @ E_single, atol=1e-10)
        assert torch.allclose(
            torch.sort(bank.log_variance[i]).values,
            torch.sort(single.log_variance[0]).values,
            atol=1e-10,
        )
        assert torch.allclose(bank.free_bias[i], single.free_bias[0], atol=1e-10)


@pytest.mark.usefixtures("one_torch_thread")
def test_alignment_undoes_a_signed_permutation_and_keeps_every_loss(data):
    mean, cov = _moments(data)
    mean_t, cov_t = torch.as_tensor(mean), torch.as_tensor(cov)
    bank = BetaVAEBank(5, 3, 3, (0.1, 2.0))
    bank.prepare(mean_t, cov_t, 0.1)
    unwhiten = torch.linalg.inv(bank.factor)
    with torch.no_grad():
        for i, beta in enumerate(bank.betas):
            best = optimum(cov, 3, float(beta))
            bank.W[i] = torch.as_tensor(best.E) @ unwhiten
            bank.V[i] = torch.as_tensor(best.D) / bank.scale
            bank.log_variance[i] = torch.as_tensor(np.log(best.c))
    original = [t.detach().clone() for t in (bank.W, bank.V, bank.log_variance)]
    with torch.no_grad():
        before = exact_maps_loss(bank.member_maps(), bank.log_betas, mean_t, cov_t).loss
    perm, sign = torch.tensor([2, 0, 1]), torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64)
    with torch.no_grad():
        bank.W[2] = sign.unsqueeze(-1) * bank.W[2][perm]
        bank.V[2] = bank.V[2][:, perm] * sign
        bank.log_variance[2] = bank.log_variance[2][perm]
        scrambled = exact_maps_loss(bank.member_maps(), bank.log_betas, mean_t, cov_t).loss
    assert float(scrambled) == pytest.approx(float(before), rel=1e-12)
    assert not torch.allclose(bank.V[2], original[1][2])
    bank.align()
    for now, then in zip((bank.W, bank.V, bank.log_variance), original, strict=True):
        assert torch.allclose(now, then, atol=1e-12)


def test_the_readings_between_members():
    bank = BetaVAEBank(4, 2, 3, (0.1, 10.0), seed=1)
    at_members = bank.maps(bank.log_betas)
    for got, member in zip(at_members, bank.member_maps(), strict=True):
        assert torch.allclose(got, member)
    middle = 0.5 * (bank.log_betas[0] + bank.log_betas[1])
    E_mid = bank.maps(middle.reshape(1)).E[0]
    expected = 0.5 * (bank.W[0] + bank.W[1]) @ bank.factor  # linear in log β
    assert torch.allclose(E_mid, expected)
    bank.interpolation = "nearest"
    near_first = bank.log_betas[0] + 0.4 * (bank.log_betas[1] - bank.log_betas[0])
    assert torch.equal(bank.maps(near_first.reshape(1)).E[0], bank.member_maps().E[0])
    beyond = torch.tensor([bank.log_betas[-1] + 5.0], dtype=torch.float64)
    assert torch.equal(bank.maps(beyond).E[0], bank.member_maps().E[-1])


def test_the_bank_refuses_bad_arguments():
    with pytest.raises(ValueError, match="members"):
        BetaVAEBank(4, 2, 0, (0.1, 1.0))
    with pytest.raises(ValueError, match="interpolation"):
        BetaVAEBank(4, 2, 2, (0.1, 1.0), interpolation="cubic")
    with pytest.raises(ValueError, match="member_betas"):
        BetaVAEBank(4, 2, 2, (0.1, 1.0), member_betas=[0.5, 0.2])
    with pytest.raises(ValueError, match="beta_range"):
        BetaVAEBank(4, 2, 2, (1.0, 0.1))
    bank = BetaVAEBank(4, 2, 2, (0.1, 1.0))
    with pytest.raises(ValueError, match="objective"):
        train_bank(bank, np.zeros((5, 4)) + np.arange(4), objective="elbo")
    with pytest.raises(ValueError, match="shape"):
        train_bank(bank, np.random.default_rng(0).normal(size=(10, 3)))
