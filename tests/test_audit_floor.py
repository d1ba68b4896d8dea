"""The MR-VAE representation floor: 0 where Theorem 1 is exact, an upper bound elsewhere."""

import numpy as np
import pytest
import torch

from linvae._io import dumps
from linvae.analytic import optimum
from linvae.audit import audit
from linvae.mrvae.floor import representation_floor

BETAS = np.geomspace(0.01, 10.0, 9)


def covariance(eigvals, seed=0):
    eigvals = np.asarray(eigvals, dtype=np.float64)
    rng = np.random.default_rng(seed)
    V, _ = np.linalg.qr(rng.standard_normal((eigvals.size, eigvals.size)))
    cov = (V * eigvals) @ V.T
    return (cov + cov.T) / 2


# spectra with a tie, a zero and eigenvalues on both sides of the β range
SPECTRA = [[4.0, 2.0, 2.0, 0.5, 0.0], [20.0, 0.3, 0.05, 0.02, 0.001]]


@pytest.mark.parametrize("eigvals", SPECTRA)
@pytest.mark.parametrize("gate_input", ["log_beta", "standardized"])
def test_the_exact_gates_have_no_floor(eigvals, gate_input):
    # σ_D encoder, σ_D decoder, hinge covariance: Theorem 1's joint reading is exact, so
    # the construction alone reaches the optimum at every β (no iteration is run).
    result = representation_floor(
        covariance(eigvals), 3, BETAS, encoder_gate="sqrt", decoder_gate="sqrt",
        covariance_gate="hinge", gate_input=gate_input,
    )  # fmt: skip
    assert result.exact and result.iterations == 0
    scale = np.abs(result.optimum) + sum(eigvals)
    assert np.all(np.abs(result.floor) <= 1e-12 * scale)


def test_a_wider_hidden_layer_keeps_the_construction_exact():
    # hidden = 2k (linvae.compare's default): the construction is zero-padded, still exact
    result = representation_floor(
        covariance(SPECTRA[0]), 3, BETAS, encoder_gate="sqrt", decoder_gate="sqrt",
        covariance_gate="hinge", hidden=6,
    )  # fmt: skip
    assert result.exact and result.gates["hidden"] == 6
    assert np.all(np.abs(result.floor) <= 1e-12 * (np.abs(result.optimum) + 8.5))


def test_the_fitted_model_is_what_the_audit_sees():
    cov = covariance(SPECTRA[0])
    result = representation_floor(cov, 3, BETAS, max_iterations=50)
    model = result.model
    for beta, floor in zip(BETAS, result.floor, strict=True):
        params = model.params_at(beta)
        audited = audit(params, (np.zeros(5), cov), beta, decoder_bias=model.decoder_bias(beta))
        assert abs(audited.excess - floor) <= 1e-12 * audited.roundoff_scale


@pytest.mark.slow
def test_the_paper_gates_have_a_floor_that_the_fit_lowers():
    # sigmoid encoder and covariance: min(1, β/λ) has a corner no sigmoid follows
    # (docs/theorem1.md), so the floor is positive; the fit only lowers the mean excess.
    cov = covariance(SPECTRA[0])
    result = representation_floor(cov, 3, BETAS, max_iterations=300)
    assert not result.exact
    scale = np.abs(result.optimum) + 8.5
    assert np.all(result.floor >= -1e-12 * scale)  # never below the analytic optimum
    assert result.mean_floor <= result.start_mean_excess
    assert result.mean_floor > 1e-3  # measured 1.03e-2 nats (from 0.163 at the start)
    assert "not exact" in result.start["covariance"]
    assert result.start["decoder"].endswith("(exact)")


def test_report_fields_are_strict_json():
    result = representation_floor(
        covariance(SPECTRA[1]), 2, BETAS, encoder_gate="sqrt", max_iterations=5
    )
    record = result.to_dict()
    assert "model" not in record
    assert len(record["floor"]) == len(BETAS)
    dumps(record)


def test_torch_threads_are_restored():
    before = torch.get_num_threads()
    representation_floor(covariance(SPECTRA[1]), 2, BETAS, encoder_gate="sqrt", max_iterations=2)
    assert torch.get_num_threads() == before


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="encoder_gate must be one of"):
        representation_floor(np.eye(3), 2, BETAS, encoder_gate="relu")
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        representation_floor(np.eye(3), 0, BETAS)
    with pytest.raises(ValueError, match="max_iterations must be"):
        representation_floor(np.eye(3), 2, BETAS, max_iterations=-1)


def test_optimum_is_unchanged_by_the_floor_module():
    # the floor's optimum column is linvae.analytic's, β by β
    cov = covariance(SPECTRA[0])
    result = representation_floor(cov, 3, BETAS, encoder_gate="sqrt", max_iterations=0)
    for beta, value in zip(BETAS, result.optimum, strict=True):
        expected = audit(optimum(cov, 3, beta), (np.zeros(5), cov), beta).optimum.loss
        assert value == pytest.approx(expected, rel=1e-14)


def test_the_fit_draws_its_iterations_on_a_terminal(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    representation_floor(np.diag([3.0, 1.0, 0.2]), 2, BETAS, max_iterations=3, progress=True)
    assert "floor sigmoid/sqrt/sigmoid" in capsys.readouterr().err
