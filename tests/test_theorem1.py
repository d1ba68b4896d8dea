"""Property tests of Theorem 1's constructions (appendix A.2) against linvae.analytic.

Each construction of linvae.construction.layers is instantiated in float64 and compared
with the analytic response it claims to represent, to 1e-9 of the response's natural
scale, over spectra with zeros, ties and a 1e12 dynamic range, random rotations and η in
the MR-VAE range [log 0.01, log 10]. Where the proof report says a claim fails, the
witness is recomputed here in float64 and shown to differ far beyond round-off.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    decoders_with_zero_singular_values,
    etas,
    orthogonal_matrices,
    spd_covariances,
)

from linvae import analytic
from linvae.construction.fit import best_gate_product_fit
from linvae.construction.gates import hinge, sigmoid, sqrt_gate
from linvae.construction.layers import (
    GatedLayer,
    constant_layer,
    covariance_response_layers,
    decoder_response_layers,
    encoder_response_layers,
    gated_weight,
    joint_covariance_layers,
    joint_encoder_layers,
    two_layer,
)
from linvae.mrvae.gates import hinge_gate, sigmoid_gate
from linvae.mrvae.gates import sqrt_gate as torch_sqrt_gate
from linvae.mrvae.model import LinearMRVAE

RTOL = 1e-9


def assert_matches(actual, expected, scale, context):
    """max |actual − expected| <= RTOL·scale, with a readable failure message."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{context}: shapes {actual.shape} vs {expected.shape}"
    error = np.max(np.abs(actual - expected), initial=0.0)
    assert error <= RTOL * scale, (
        f"{context}: max |construction − analytic| = {error:.3e} > {RTOL:g} × {scale:.3e}\n"
        f"construction =\n{np.array2string(actual, precision=6)}\n"
        f"analytic =\n{np.array2string(expected, precision=6)}"
    )


def covariance_problems():
    """(spectrum, k, R): a covariance with zeros and ties, a latent size and a rotation."""

    @st.composite
    def build(draw):
        cov, _ = draw(spd_covariances(max_dim=6))
        spec = analytic.spectrum(cov)
        k = draw(st.integers(1, spec.eigvals.shape[0]))
        return spec, k, draw(orthogonal_matrices(k))

    return build()


# --- reading (a): best responses to a fixed decoder, sigmoid gates ---------------------


@given(decoders_with_zero_singular_values(), etas())
def test_sigmoid_encoder_is_the_best_response_to_a_fixed_decoder(problem, eta):
    D, s = problem
    beta = np.exp(eta)
    E = two_layer(encoder_response_layers(D), eta)  # eqs. 25-28, zero rows where s = 0
    context = f"singular values s = {s}, η = {eta:.6g}"
    # E* entries are at most max s/(s² + β) <= 1/(2√β)
    assert_matches(E, analytic.encoder_optimum(D, beta), 1 / (2 * np.sqrt(beta)), context)


@given(decoders_with_zero_singular_values(), etas(), st.data())
def test_sigmoid_covariance_is_the_best_response_to_a_fixed_decoder(problem, eta, data):
    D, s = problem
    zero_columns = data.draw(st.lists(st.booleans(), min_size=D.shape[1], max_size=D.shape[1]))
    D = np.where(np.asarray(zero_columns)[None, :], 0.0, D)  # diag(DᵀD)ᵢ = 0 cases of eq. 30
    c = np.diag(two_layer(covariance_response_layers(D), eta))
    context = f"s = {s}, zeroed columns {zero_columns}, η = {eta:.6g}"
    assert_matches(c, analytic.covariance_optimum(D, np.exp(eta)), 1.0, context)


# --- the decoder (eqs. 37-39) and reading (b): the joint optimum -------------------------


@given(covariance_problems(), etas())
def test_sqrt_decoder_is_the_global_optimum(problem, eta):
    spec, k, R = problem
    D = two_layer(decoder_response_layers(spec.eigvals, spec.eigvecs, k, R), eta)
    expected = analytic.decoder_optimum(spec, k, np.exp(eta), rotation=R)
    scale = np.sqrt(max(spec.eigvals[0], 1e-300))
    assert_matches(D, expected, scale, f"λ = {spec.eigvals}, k = {k}, η = {eta:.6g}")


@given(covariance_problems(), etas())
def test_sqrt_encoder_is_the_joint_optimum(problem, eta):
    spec, k, R = problem
    beta = np.exp(eta)
    E = two_layer(joint_encoder_layers(spec.eigvals, spec.eigvecs, k, R), eta)
    expected = analytic.optimum(spec, k, beta, rotation=R).E
    context = f"λ = {spec.eigvals}, k = {k}, η = {eta:.6g}, R = {R.tolist()}"
    assert_matches(E, expected, 1 / (2 * np.sqrt(beta)), context)


@given(covariance_problems(), etas())
def test_hinge_covariance_is_the_joint_optimum(problem, eta):
    spec, k, _ = problem
    c = np.diag(two_layer(joint_covariance_layers(spec.eigvals, k), eta))
    expected = analytic.optimum(spec, k, np.exp(eta)).c
    assert_matches(c, expected, 1.0, f"λ = {spec.eigvals}, k = {k}, η = {eta:.6g}")


@given(st.sampled_from(["sigmoid", "sqrt", "hinge"]), etas(), st.data())
def test_constant_layers_do_not_move_with_eta(gate, eta, data):
    X = np.reshape(data.draw(st.lists(st.floats(-10, 10), min_size=6, max_size=6)), (2, 3))
    assert_matches(gated_weight(constant_layer(X, gate), eta), X, 10.0, f"gate {gate}, η = {eta}")


# --- through the torch gates of linvae.mrvae ---------------------------------------------


def _load_layer(base_param, gate_module, layer):
    with torch.no_grad():
        base_param.copy_(torch.as_tensor(layer.base))
        gate_module.weight.copy_(torch.as_tensor(layer.slope))
        gate_module.bias.copy_(torch.as_tensor(layer.offset))


@settings(max_examples=25)
@given(covariance_problems(), etas())
def test_torch_mrvae_holds_the_joint_optimum_exactly(problem, eta):
    """LinearMRVAE with σ_D encoder, σ_D decoder and hinge covariance, set by the construction."""
    spec, k, _ = problem
    d = spec.eigvals.shape[0]
    model = LinearMRVAE(d, k, "sqrt", "sqrt", "hinge", gate_input="log_beta")
    enc1, enc2 = joint_encoder_layers(spec.eigvals, spec.eigvecs, k)
    dec1, dec2 = decoder_response_layers(spec.eigvals, spec.eigvecs, k)
    cov1, _ = joint_covariance_layers(spec.eigvals, k)  # its layer 2 is the constant 1
    _load_layer(model.encoder1, model.encoder1_gate, enc1)
    _load_layer(model.encoder2, model.encoder2_gate, enc2)
    _load_layer(model.decoder1, model.decoder1_gate, dec1)
    _load_layer(model.decoder2, model.decoder2_gate, dec2)
    with torch.no_grad():  # the model's c = e^ρ·min(1, e^{wη + b}): ρ = 0
        model.log_variance.zero_()
        model.covariance_gate_module.weight.copy_(torch.as_tensor(cov1.slope))
        model.covariance_gate_module.bias.copy_(torch.as_tensor(cov1.offset))
    beta = np.exp(eta)
    got, want = model.params_at(beta), analytic.optimum(spec, k, beta)
    context = f"torch LinearMRVAE, λ = {spec.eigvals}, k = {k}, η = {eta:.6g}"
    assert_matches(got.E, want.E, 1 / (2 * np.sqrt(beta)), context + " (E)")
    assert_matches(got.c, want.c, 1.0, context + " (c)")
    assert_matches(got.D, want.D, np.sqrt(max(spec.eigvals[0], 1e-300)), context + " (D)")


@settings(max_examples=25)
@given(decoders_with_zero_singular_values(), etas())
def test_torch_mrvae_holds_the_best_response_to_a_fixed_decoder(problem, eta):
    """LinearMRVAE with sigmoid encoder and covariance gates set by eqs. 25-32."""
    D, s = problem
    d, k = D.shape
    model = LinearMRVAE(d, k, "sigmoid", "sqrt", "sigmoid", gate_input="log_beta")
    enc1, enc2 = encoder_response_layers(D)
    _load_layer(model.encoder1, model.encoder1_gate, enc1)
    _load_layer(model.encoder2, model.encoder2_gate, enc2)
    cov1, _ = covariance_response_layers(D)  # layer 2 is the constant I
    with torch.no_grad():  # c = e^ρ σ(wη + b): ρ = log of cov1's base (1 or 2), cov2 dropped
        model.log_variance.copy_(torch.as_tensor(np.log(np.diag(cov1.base))))
        model.covariance_gate_module.weight.copy_(torch.as_tensor(cov1.slope))
        model.covariance_gate_module.bias.copy_(torch.as_tensor(cov1.offset))
    beta = np.exp(eta)
    got = model.params_at(beta)
    context = f"torch LinearMRVAE, s = {s}, η = {eta:.6g}"
    assert_matches(
        got.E, analytic.encoder_optimum(D, beta), 1 / (2 * np.sqrt(beta)), context + " (E)"
    )
    # with C⁽²⁾ = I absorbed, c = σ_E(η − log g) (g > 0) or 2σ_E(0) = 1 (g = 0)
    assert_matches(got.c, analytic.covariance_optimum(D, beta), 1.0, context + " (c)")


@given(st.floats(-50, 50))
def test_numpy_gates_equal_the_torch_gates(x):
    t = torch.tensor([x], dtype=torch.float64)
    assert sigmoid(x) == pytest.approx(sigmoid_gate(t).item(), rel=1e-15, abs=1e-300)
    assert sqrt_gate(x) == pytest.approx(torch_sqrt_gate(t).item(), rel=1e-15, abs=0)
    assert hinge(x) == pytest.approx(hinge_gate(t).item(), rel=1e-15, abs=0)


# --- witnesses of the claims that fail -----------------------------------------------------


def test_encoder_built_for_a_fixed_decoder_is_not_the_joint_optimum():
    """T1.composition: λ = 4, built at η₀ = 0, evaluated at β = 2 (exact: √3/5 and √2/4)."""
    eigvals, eigvecs = np.array([4.0]), np.eye(1)
    D0 = analytic.decoder_optimum(analytic.Spectrum(eigvals, eigvecs), 1, 1.0)
    reading_a = two_layer(encoder_response_layers(D0), np.log(2.0))[0, 0]
    joint = two_layer(joint_encoder_layers(eigvals, eigvecs, 1), np.log(2.0))[0, 0]
    assert reading_a == pytest.approx(np.sqrt(3) / 5, rel=1e-14)  # s/(s² + β), s² = 3
    assert joint == pytest.approx(np.sqrt(2) / 4, rel=1e-14)  # √(λ − β)/λ
    assert abs(reading_a - joint) > 1e-3


def test_a_generic_rotation_raises_the_loss_by_the_exact_amount():
    """A1.eq23: λ = (4, 2, 1), β = 1, R = [[3/5, −4/5], [4/5, 3/5]]; excess = ½ log(697/625)."""
    cov, mean = np.diag([4.0, 2.0, 1.0]), np.zeros(3)
    R = np.array([[3.0, -4.0], [4.0, 3.0]]) / 5.0
    rotated = analytic.objective(analytic.optimum(cov, 2, 1.0, rotation=R), mean, cov, 1.0)
    aligned = analytic.objective(analytic.optimum(cov, 2, 1.0), mean, cov, 1.0)
    assert rotated.loss - aligned.loss == pytest.approx(0.5 * np.log(697 / 625), rel=1e-12)


@given(covariance_problems(), etas())
def test_no_rotation_beats_the_aligned_optimum(problem, eta):
    spec, k, R = problem
    beta, mean = np.exp(eta), np.zeros(spec.eigvals.shape[0])
    cov = (spec.eigvecs * spec.eigvals) @ spec.eigvecs.T
    rotated = analytic.objective(analytic.optimum(spec, k, beta, rotation=R), mean, cov, beta)
    aligned = analytic.objective(analytic.optimum(spec, k, beta), mean, cov, beta)
    # the loss is formed from terms of size tr S that cancel: its round-off is ε·tr S
    roundoff = 64 * np.finfo(float).eps * (spec.eigvals.sum() + abs(aligned.loss) + 1.0)
    assert rotated.loss >= aligned.loss - roundoff, (
        f"λ = {spec.eigvals}, η = {eta}, R = {R.tolist()}"
    )


def test_rotated_joint_covariance_is_not_a_hinge_product():
    """T1.b.covariance.rotation: c*₁ = 25β/(36 + 16β) on 2 < β < 4; log c*₁ is curved in η."""
    R = np.array([[3.0, -4.0], [4.0, 3.0]]) / 5.0
    cov = np.diag([4.0, 2.0])
    etas_ = np.log([2.5, 3.0, 3.5])
    c1 = np.array([analytic.optimum(cov, 2, np.exp(e), rotation=R).c[0] for e in etas_])
    beta = np.exp(etas_)
    np.testing.assert_allclose(c1, 25 * beta / (36 + 16 * beta), rtol=1e-13)
    # a hinge product has log c piecewise linear in η: its second difference would vanish
    second_difference = np.log(c1[0]) - 2 * np.log(c1[1]) + np.log(c1[2])
    assert abs(second_difference) > 1e-3


def test_gate_fit_finds_exact_products_where_they_exist():
    """The witness search is not too weak: it recovers representable responses exactly."""
    assert best_gate_product_fit(lambda e: np.minimum(1.0, np.exp(e)), "hinge").max_error < 1e-9
    assert best_gate_product_fit(lambda e: 1.0 / (1.0 + np.exp(e)), "sigmoid").max_error < 1e-9


@given(st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5))
def test_sigmoid_products_have_bounded_slope(K, h1, q1, h2, q2):
    """The lemma behind T1.b.encoder.sigmoid: |d/dη Kσσ| <= |K|(|h₁| + |h₂|)/4."""
    eta = np.linspace(np.log(0.01), np.log(10.0), 2001)
    f = K * sigmoid(h1 * eta + q1) * sigmoid(h2 * eta + q2)
    slope = np.abs(np.diff(f) / np.diff(eta))
    assert slope.max(initial=0.0) <= abs(K) * (abs(h1) + abs(h2)) / 4 + 1e-9


@given(st.floats(-700, 700))
def test_sqrt_gate_never_reaches_one(x):
    value = sqrt_gate(x)
    assert 0.0 <= value < 1.0 or (x < -36 and value == 1.0)  # 1 − eˣ rounds to 1 below −36
    assert (value == 0.0) == (x >= 0)


def test_gated_weight_rejects_bad_arguments():
    layer = GatedLayer(np.eye(2), np.zeros(2), np.zeros(2), "sigmoid")
    with pytest.raises(TypeError, match="eta must be a real number"):
        gated_weight(layer, "0")
    with pytest.raises(ValueError, match="eta must be finite"):
        gated_weight(layer, float("nan"))
    with pytest.raises(TypeError, match="layer must be a GatedLayer"):
        gated_weight((np.eye(2),), 0.0)
    with pytest.raises(ValueError, match="gate must be one of"):
        constant_layer(np.eye(2), "relu")
    with pytest.raises(ValueError, match="eigvals must be >= 0"):
        decoder_response_layers(np.array([1.0, -1.0]), np.eye(2), 1)
    with pytest.raises(ValueError, match=r"rotation must have shape \(1, 1\)"):
        joint_encoder_layers(np.array([1.0, 0.5]), np.eye(2), 1, rotation=np.eye(2))


def test_fixed_decoder_covariance_is_not_a_hinge_product():
    """T1.a.covariance.hinge: log C*(η) = η − log(g + e^η) is curved; a hinge product's is not."""
    D = np.array([[1.0], [0.0]])  # g = diag(DᵀD) = 1
    etas_ = np.array([-0.1, 0.0, 0.1])
    log_c = np.log([analytic.covariance_optimum(D, np.exp(e))[0] for e in etas_])
    np.testing.assert_allclose(log_c, etas_ - np.log1p(np.exp(etas_)), rtol=1e-14)
    second_difference = log_c[0] - 2 * log_c[1] + log_c[2]  # ≈ −(0.1)²/4
    assert second_difference == pytest.approx(-0.0025, rel=1e-2)
