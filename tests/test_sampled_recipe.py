"""linvae's recipe on the sampled ELBO: its estimator, its units and the optimum it reaches."""

import json
import math

import numpy as np
import pytest
import torch

from linvae.analytic import full_grid, moments, optimum, rate_distortion, spectrum
from linvae.compare.evaluate import evaluate_model, excess_loss, loss_above_constant
from linvae.mrvae.model import LatentMRVAE, one_layer_vae
from linvae.mrvae.recipe import training_range
from linvae.mrvae.sampled import (
    DataUnits,
    SampledConfig,
    antithetic_terms,
    capped_ridge,
    covariance_product,
    kth_eigenvalue,
    revive_sampled,
    sampled_learning_rate,
    sampled_terms,
    train_sampled_recipe,
)


def _gaussian(n, eigvals, seed):
    rng = np.random.default_rng(seed)
    d = len(eigvals)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return rng.standard_normal((n, d)) * np.sqrt(eigvals) @ basis.T + rng.standard_normal(d)


def _at_optimum(X, k, beta):
    """A one-layer VAE set to the optimum at β of the data X (eqs. 21–23)."""
    stats = moments(X)
    E, c, D = optimum(stats.cov, k, beta)
    model = one_layer_vae(X.shape[1], k)
    model.set_input_mean(stats.mean)
    with torch.no_grad():
        model.encoder1.copy_(torch.as_tensor(E))
        model.decoder2.copy_(torch.as_tensor(D))
        model.log_variance.copy_(torch.as_tensor(np.log(c)))
        model.bias.copy_(torch.as_tensor(stats.mean))
    return model


def _encoder_gradient(model, x, beta, noise, estimator):
    log_beta = torch.full((x.shape[0],), math.log(beta), dtype=torch.float64)
    rate, squared_error = sampled_terms(
        model, x, log_beta, noise, model.encoder1, model.decoder2, model.bias, estimator
    )
    loss = torch.mean(0.5 * squared_error + beta * rate)
    return torch.autograd.grad(loss, [model.encoder1, model.log_variance])


def test_sticking_the_landing_has_no_encoder_gradient_at_the_exact_tempered_posterior():
    # q = N(E*(x − m), diag(c*)) is p(x|z)^{1/β} p(z) normalised: the path derivative of
    # ½‖x − Dz − b‖² + β (log q(z|x) − log p(z)) in q's parameters is 0 for every x and ε
    X = _gaussian(400, [3.0, 1.5, 0.7, 0.2, 0.05], seed=1)
    model = _at_optimum(X, 3, 0.4)
    generator = torch.Generator().manual_seed(2)
    x = torch.as_tensor(X[:8])
    noise = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    stl = _encoder_gradient(model, x, 0.4, noise, "stl")
    plain = _encoder_gradient(model, x, 0.4, noise, "reparameterised")
    assert all(float(g.abs().max()) < 1e-12 for g in stl)
    assert float(plain[0].abs().max()) > 1e-3  # the closed-form KL's gradient is noisy there


def test_the_sampled_rate_is_the_kl_on_average_for_both_estimators():
    X = _gaussian(50, [2.0, 1.0, 0.3], seed=3)
    model = _at_optimum(X, 2, 0.2)
    x = torch.as_tensor(X[:1]).expand(20000, 3)
    log_beta = torch.full((20000,), math.log(0.2), dtype=torch.float64)
    noise = torch.randn(20000, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    args = (model, x, log_beta, noise, model.encoder1, model.decoder2, model.bias)
    with torch.no_grad():
        closed, _ = sampled_terms(*args, "reparameterised")
        stl, _ = sampled_terms(*args, "stl")
    assert torch.allclose(closed, closed[0])  # closed form: the same for every draw
    spread = float(stl.std()) / math.sqrt(stl.numel())
    assert abs(float(stl.mean()) - float(closed[0])) < 4 * spread


@pytest.mark.parametrize("estimator", ["stl", "reparameterised"])
@pytest.mark.parametrize("latent", [True, False])
def test_the_antithetic_pair_in_closed_form_is_the_mean_of_its_two_draws(estimator, latent):
    # the same function of every weight: values and gradients agree to round-off
    generator = torch.Generator().manual_seed(11)
    d, k, n = 7, 3, 6
    model = LatentMRVAE(d, k, beta_range=(0.01, 10.0)) if latent else one_layer_vae(d, k)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    log_beta = torch.log(torch.tensor([0.01, 0.05, 0.3, 1.0, 4.0, 9.0], dtype=torch.float64))
    noise = torch.randn(n, k, generator=generator, dtype=torch.float64)
    weights = [
        torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()
        for shape in ((k, d), (d, k), (d,))
    ]
    replaced = ("encoder1", "decoder2", "bias")  # by the weights passed in
    trained = weights + [
        p for name, p in model.named_parameters() if p.requires_grad and name not in replaced
    ]

    def loss(rate, squared_error, betas):
        return torch.mean(0.5 * squared_error + torch.exp(betas) * rate)

    both = sampled_terms(
        model, x.repeat(2, 1), log_beta.repeat(2), torch.cat([noise, -noise]), *weights,
        estimator,
    )  # fmt: skip
    pair = antithetic_terms(model, x, log_beta, noise, *weights, estimator)
    expected = loss(*both, log_beta.repeat(2))
    got = loss(*pair, log_beta)
    assert torch.allclose(got, expected, rtol=1e-13, atol=0)
    for a, b in zip(
        torch.autograd.grad(expected, trained), torch.autograd.grad(got, trained), strict=True
    ):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12 * float(a.abs().max()))


@pytest.mark.parametrize("antithetic", [True, False])
def test_float32_terms_on_centred_unitless_data_are_the_float64_terms_over_scale_squared(
    antithetic,
):
    # data at 1e25 around 1e27: its squares overflow float32, (x − m)/scale does not
    generator = torch.Generator().manual_seed(12)
    d, k, n, scale, offset = 9, 3, 8, 1e25, 1e27
    model = LatentMRVAE(d, k, beta_range=(0.01, 10.0))
    mean = offset + scale * torch.randn(d, generator=generator, dtype=torch.float64)
    model.set_input_mean(mean.numpy())
    x = mean + scale * torch.randn(n, d, generator=generator, dtype=torch.float64)
    log_beta = torch.linspace(math.log(0.01), math.log(10.0), n, dtype=torch.float64)
    noise = torch.randn(n, k, generator=generator, dtype=torch.float64)
    W = torch.randn(k, d, generator=generator, dtype=torch.float64).requires_grad_()
    V = torch.randn(d, k, generator=generator, dtype=torch.float64).requires_grad_()
    b = torch.randn(d, generator=generator, dtype=torch.float64).requires_grad_()
    terms = antithetic_terms if antithetic else sampled_terms
    exact = terms(model, x, log_beta, noise, W / scale, V * scale, mean + scale * b)
    low = ((x - mean) / scale).float()
    rate, unitless_error = terms(
        model, low, log_beta, noise, W.float(), V.float(), b.float(), centred=True
    )
    assert rate.dtype == unitless_error.dtype == torch.float64  # the sums in η's dtype
    got = (rate, unitless_error * scale**2)
    for a, b_ in zip(exact, got, strict=True):
        assert torch.isfinite(b_).all()
        assert torch.allclose(a, b_, rtol=1e-5, atol=0)
    loss = [torch.mean(0.5 * e / scale**2 + torch.exp(log_beta) * r) for r, e in (exact, got)]
    for a, b_ in zip(
        torch.autograd.grad(loss[0], [W, V, b]),
        torch.autograd.grad(loss[1], [W, V, b]),
        strict=True,
    ):
        assert torch.allclose(a, b_, rtol=1e-4, atol=1e-5 * float(a.abs().max()))


def test_the_learning_rate_holds_adam_s_noise_step_to_the_smallest_column():
    # 2.5·√(λ_k/(k·tr S)), worked by hand: 2.5·√(1/(64·3162)) = 2.5/449.86…
    assert sampled_learning_rate(3162.0, 1.0, 64, 0.25) == pytest.approx(0.0055573, rel=1e-4)
    assert sampled_learning_rate(10.0, 1.0, 2, 0.1) == 0.03  # capped
    # λ_k below the range's bottom: the smallest latent that opens has variance lo
    assert sampled_learning_rate(3162.0, 0.0, 64, 0.25) == sampled_learning_rate(
        3162.0, 0.25, 64, 0.01
    )
    for a in (1e-12, 1e15):  # free of the data's scale
        assert sampled_learning_rate(3162.0 * a, a, 64, 0.25 * a) == pytest.approx(
            sampled_learning_rate(3162.0, 1.0, 64, 0.25), rel=1e-12
        )
    for args, message in [
        ((0.0, 1.0, 4, 0.1), "trace"),
        ((1.0, -1.0, 4, 0.1), "smallest"),
        ((1.0, math.nan, 4, 0.1), "smallest"),
        ((1.0, 1.0, 0, 0.1), "k"),
        ((1.0, 1.0, 4, 0.0), "lo"),
    ]:
        with pytest.raises(ValueError, match=message):
            sampled_learning_rate(*args)


@pytest.mark.parametrize("precondition", ["capped", "scale"])
def test_a_run_resolves_its_learning_rate_from_the_data_and_records_it(
    one_torch_thread, precondition
):
    eigvals = [900.0, 400.0, 100.0, 25.0, 0.25, 0.1, 0.05, 0.02]
    X = _gaussian(3000, eigvals, seed=9)
    k, lo = 5, 0.05
    exact = spectrum(moments(X).cov).eigvals
    data = torch.as_tensor(X)
    units = DataUnits(data, lo, precondition, rank=8, passes=4, latents=k)
    smallest = kth_eigenvalue(units, data, k, passes=30)
    assert smallest == pytest.approx(exact[k - 1], rel=1e-6)  # ("scale": passes of its own)
    assert kth_eigenvalue(units, data, 9, passes=4) == 0.0  # beyond d
    model = LatentMRVAE(8, k, beta_range=(lo, 1000.0))
    settings = SampledConfig(steps=2, precondition=precondition, precondition_passes=30)
    result = train_sampled_recipe(model, X, None, settings)
    expected = sampled_learning_rate(units.trace, smallest, k, lo)
    assert result.learning_rate == pytest.approx(expected, rel=1e-6) and expected < 0.03
    given = train_sampled_recipe(model, X, None, SampledConfig(steps=2, lr=0.002))
    assert given.learning_rate == 0.002


def test_the_covariance_product_from_batches_is_s_times_y():
    X = torch.as_tensor(_gaussian(300, [3.0, 1.0, 0.5, 0.1], seed=12))
    Y = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    S = torch.as_tensor(moments(X.numpy()).cov)
    got = covariance_product(X, X.mean(0), Y, batch=7)
    assert torch.allclose(got, S @ Y, rtol=1e-12, atol=1e-14)


def test_revival_re_points_pinned_latents_at_the_residual_and_leaves_the_rest(one_torch_thread):
    # two latents live along the two leading directions, the third held open only by the
    # projection: it is re-pointed along the third direction (the residual's leading one)
    # as one latent's optimum there, its thresholds at log λ₃
    eigvals = [5.0, 3.0, 1.0, 0.01]
    X = _gaussian(4000, eigvals, seed=13)
    data = torch.as_tensor(X)
    stats = moments(X)
    lam, U = np.linalg.eigh(stats.cov)
    lam, U = lam[::-1], U[:, ::-1]
    lo, floor = 0.1, math.log(0.2)
    model = LatentMRVAE(4, 3, beta_range=(lo, 10.0))
    units = DataUnits(data, lo, "capped", rank=4, latents=3, spread=2.0)
    model.set_input_mean(stats.mean)
    thresholds = torch.tensor([math.log(lam[0]), math.log(lam[1]), floor], dtype=torch.float64)
    with torch.no_grad():
        for gate in model.gate_modules():
            gate.bias.copy_(gate.input_center - thresholds)
        gates = model.gates(torch.tensor([math.log(lo)], dtype=torch.float64))
    E1, D2 = np.zeros((3, 4)), np.zeros((4, 3))
    for j in range(2):  # the optimum of the two leading latents at lo (eqs. 21–23)
        E1[j] = U[:, j] / math.sqrt(lam[j])
        D2[:, j] = U[:, j] * math.sqrt(lam[j])
    E1[2], D2[:, 2] = 0.3 * U[:, 3], 0.01 * U[:, 0]  # pinned: a weak direction
    W = units.unencoder(torch.as_tensor(E1)).clone()
    V = torch.as_tensor(D2 / units.scale).clone()
    with torch.no_grad():
        model.encoder1.copy_(units.encoder(W))
        model.decoder2.copy_(units.scale * V)
    assert float(gates.encoder2[0, 2]) > 0  # open at lo: only the projection holds it
    back = revive_sampled(
        model, W, V, units, data, math.log(lo), floor, torch.Generator().manual_seed(0)
    )
    assert back.tolist() == [2]
    # the residual without latent 2 at lo is λ₃ along u₃ and what the gates leave of u₁, u₂
    # (lo/λ ≤ 0.033 of them): u₃ leads
    column = (units.scale * V[:, 2]).numpy()
    assert abs(abs(column @ U[:, 2]) - math.sqrt(lam[2])) < 0.02 * math.sqrt(lam[2])
    assert np.linalg.norm(column) < 1.01 * math.sqrt(lam[2])
    for gate in model.gate_modules():
        eta0 = (gate.input_center - gate.bias).detach()
        assert abs(float(eta0[2]) - math.log(lam[2])) < 0.02
        assert torch.allclose(eta0[:2], thresholds[:2])
    assert np.allclose(V[:, :2].numpy(), D2[:, :2] / units.scale)  # the live ones untouched
    # nothing pinned any more: nothing revived
    back = revive_sampled(model, W, V, units, data, math.log(lo), floor, torch.Generator())
    assert back.numel() == 0


def test_a_pinned_latent_beyond_the_data_s_rank_stays_as_it_is(one_torch_thread):
    # rank 1 data, k = 2: the residual has no direction of variance above the floor
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 1)) * np.array([[2.0, 1.0, 0.0]])
    data = torch.as_tensor(X)
    model = LatentMRVAE(3, 2, beta_range=(0.01, 10.0))
    units = DataUnits(data, 0.01, "scale")
    model.set_input_mean(X.mean(0))
    floor = math.log(0.02)
    with torch.no_grad():
        for gate in model.gate_modules():
            gate.bias.copy_(gate.input_center - torch.tensor([math.log(5.0), floor]))
        W = units.unencoder(torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) / 5.0).clone()
        V = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 0.1]], dtype=torch.float64) / units.scale
        model.encoder1.copy_(units.encoder(W))
        model.decoder2.copy_(units.scale * V)
    before = (W.clone(), V.clone())
    back = revive_sampled(model, W, V, units, data, math.log(0.01), floor, torch.Generator())
    assert back.numel() == 0
    assert torch.equal(W, before[0]) and torch.equal(V, before[1])


def test_the_lowrank_unit_is_the_inverse_root_of_the_covariance_at_full_rank(one_torch_thread):
    X = _gaussian(300, [4.0, 1.0, 0.5, 0.1], seed=5)
    data = torch.as_tensor(X)
    units = DataUnits(data, 0.01, "lowrank", rank=4, passes=30, batch=64)
    P = units.encoder(torch.eye(4, dtype=torch.float64))
    cov = moments(X).cov
    # PᵀP = (S + ridge·I)⁻¹: K-FAC's input factor, the exact recipe's whitening up to a rotation
    np.testing.assert_allclose(P.T @ P, np.linalg.inv(cov + 0.01 * np.eye(4)), rtol=1e-8)
    assert units.scale == pytest.approx(math.sqrt(np.trace(cov) / 4))


@pytest.mark.parametrize(
    ("largest", "smallest", "spread"), [(65.7, 0.04, 30.0), (179.0, 4.2, 10.0), (1e6, 1e-6, 2.0)]
)
def test_the_capped_ridge_leaves_exactly_the_spread_asked(largest, smallest, spread):
    ridge = capped_ridge(largest, smallest, spread)
    assert 0 < ridge < math.inf
    after = (largest / (largest + ridge)) / (smallest / (smallest + ridge))
    assert after == pytest.approx(spread, rel=1e-10)


def test_the_capped_ridge_is_infinite_within_the_spread_and_zero_without_a_smallest():
    assert capped_ridge(10.0, 1.0, 10.0) == math.inf  # within the cap: no whitening needed
    assert capped_ridge(10.0, 0.0, 10.0) == 0.0  # nothing caps a direction of no variance


def test_the_capped_unit_whitens_a_wide_spectrum_down_to_the_spread(one_torch_thread):
    eigvals = [400.0, 4.0, 1.0, 0.1]
    X = _gaussian(400, eigvals, seed=9)
    cov = moments(X).cov
    units = DataUnits(torch.as_tensor(X), 1e-6, "capped", rank=4, passes=40, batch=64,
                      latents=4, spread=20.0)  # fmt: skip
    P = units.encoder(torch.eye(4, dtype=torch.float64)).numpy()
    values = np.linalg.eigvalsh(P @ cov @ P.T)
    assert values.max() / values.min() == pytest.approx(20.0, rel=1e-6)
    # the gain √(1 + ρ/scale²) keeps P = I/scale in the limit of no whitening
    gain = math.sqrt(1 + units.ridge / units.scale**2)
    np.testing.assert_allclose(P.T @ P, gain**2 * np.linalg.inv(cov + units.ridge * np.eye(4)),
                               rtol=1e-8)  # fmt: skip


def test_the_capped_unit_is_the_global_scale_within_the_spread(one_torch_thread):
    X = _gaussian(400, [2.0, 1.0, 0.5], seed=10)
    units = DataUnits(torch.as_tensor(X), 1e-6, "capped", rank=3, latents=3, spread=30.0)
    P = units.encoder(torch.eye(3, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(P, np.eye(3) / units.scale, rtol=1e-12)


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"batch_size": 2.0}, TypeError, "batch_size must be an integer"),
        ({"estimator": "score"}, ValueError, "estimator must be one of"),
        ({"precondition": "full"}, ValueError, "precondition must be one of"),
        ({"average_from": 1.5}, ValueError, "average_from"),
        ({"beta_weight": "log"}, ValueError, "beta_weight must be one of"),
        ({"precondition_spread": 0.0}, ValueError, "precondition_spread"),
        ({"precondition_spread": 0.5}, ValueError, "precondition_spread must be >= 1"),
        ({"revive_at": (0.2, 1.5)}, ValueError, "revive_at"),
        ({"decoder_unit": "row"}, ValueError, "decoder_unit must be one of"),
        ({"revive_at": 0.5}, TypeError, "revive_at must be a tuple"),
        ({"precision": "float16"}, ValueError, "precision must be one of"),
    ],
)
def test_bad_settings_are_refused_by_name(settings, error, message):
    with pytest.raises(error, match=message):
        SampledConfig(**settings)


def test_bad_arguments_are_refused_by_name():
    model = LatentMRVAE(3, 2, beta_range=(0.1, 1.0))
    X = np.ones((5, 3))
    with pytest.raises(ValueError, match="no variance"):
        train_sampled_recipe(model, X, None, SampledConfig(steps=1))
    with pytest.raises(ValueError, match=r"X must have shape \(n >= 2, 3\)"):
        train_sampled_recipe(model, np.ones((5, 4)), None, SampledConfig(steps=1))
    with pytest.raises(TypeError, match="config must be a SampledConfig"):
        train_sampled_recipe(model, X, None, {"steps": 1})


def _excess(model, X, k, betas):
    stats = moments(X)
    optimum_loss = loss_above_constant(
        rate_distortion(spectrum(stats.cov).eigvals, k, betas)._asdict(), betas
    )
    terms = evaluate_model(model, stats.mean, stats.cov, betas)
    return excess_loss(loss_above_constant(terms, betas), optimum_loss, betas=betas)


@pytest.mark.parametrize(("precision", "scale"), [("float64", 1.0), ("float32", 1e30)])
def test_the_sampled_recipe_reaches_the_optimum_on_the_whole_curve(
    one_torch_thread, precision, scale
):
    # a small problem: mini-batches and one noise draw per example, judged exactly; in
    # float32 at a scale whose squares float32 cannot hold (the scale multiplies β and the
    # excess by scale², not excess/β)
    X = _gaussian(2000, [4.0, 2.0, 1.0, 0.5, 0.25, 0.1], seed=7) * scale
    k = 3
    grid = full_grid(spectrum(moments(X).cov).eigvals, k)
    model = LatentMRVAE(6, k, beta_range=training_range(grid))
    settings = SampledConfig(steps=400, batch_size=256, precision=precision)
    result = train_sampled_recipe(model, X, training_range(grid), settings)
    assert result.steps == 400 and result.diverged_at is None
    excess = _excess(model, X, k, grid)
    assert excess.max() / scale**2 <= 0.01 and (excess / grid).max() <= 0.01


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_the_sampled_recipe_reaches_the_optimum_on_cuda(precision):
    X = _gaussian(2000, [4.0, 2.0, 1.0, 0.5, 0.25, 0.1], seed=7)
    k = 3
    grid = full_grid(spectrum(moments(X).cov).eigvals, k)
    model = LatentMRVAE(6, k, beta_range=training_range(grid))
    settings = SampledConfig(steps=400, batch_size=256, precision=precision)
    result = train_sampled_recipe(model, X, training_range(grid), settings, device="cuda")
    assert result.diverged_at is None and model.device.type == "cuda"
    excess = _excess(model.cpu(), X, k, grid)
    assert excess.max() <= 0.01 and (excess / grid).max() <= 0.01


def test_a_beta_vae_trained_the_same_way_reaches_its_optimum(one_torch_thread):
    X = _gaussian(2000, [4.0, 2.0, 1.0, 0.5], seed=8)
    model = one_layer_vae(4, 2)
    train_sampled_recipe(model, X, None, SampledConfig(steps=600, batch_size=256), beta=0.7)
    assert _excess(model, X, 2, np.array([0.7]))[0] <= 0.01


def test_the_benchmark_writes_one_row_per_change_and_one_for_the_beta_vaes(tmp_path, capsys):
    from benchmarks import sampled_recipe

    rows = ["default", "paper-like"]
    argv = ["--dataset", "gaussian", "--n", "300", "--latent", "2", "--steps", "20",
            "--rows", ",".join(rows), "--baselines", "2", "--out", str(tmp_path)]  # fmt: skip
    assert sampled_recipe.main(argv) == 0
    written = json.loads((tmp_path / "sampled.json").read_text())
    assert [r["row"] for r in written["rows"]] == [*rows, "2 β-VAEs"]
    for row in written["rows"]:
        assert row["steps"] == 20 and 0 <= row["mean"] <= row["max"]
    default, paper_like, _ = written["rows"]
    assert 0 < default["learning_rate"] <= 0.03 and paper_like["learning_rate"] == 0.01
    table = (tmp_path / "sampled.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    assert sum(line.startswith("| `") for line in table.splitlines()) == len(rows) + 1


def test_revived_latents_restart_adam_s_moments_from_the_others():
    from linvae.mrvae.sampled import _restart_moments

    generator = torch.Generator().manual_seed(5)
    model = LatentMRVAE(4, 3, beta_range=(0.1, 10.0))
    W = torch.nn.Parameter(torch.randn(3, 4, generator=generator, dtype=torch.float64))
    V = torch.nn.Parameter(torch.randn(4, 3, generator=generator, dtype=torch.float64))
    biases = [g.bias for g in model.gate_modules()]
    optimizer = torch.optim.Adam([W, V, *biases])
    loss = (W**2).sum() + (V**3).sum() + sum((b**2).sum() for b in biases)
    loss.backward()
    optimizer.step()
    before = {id(p): {k: v.clone() for k, v in optimizer.state[p].items()} for p in (W, V)}
    _restart_moments(optimizer, W, V, model, torch.tensor([1]))
    for p, rows in ((W, lambda t: t), (V, lambda t: t.T)):
        first, second = (rows(optimizer.state[p][k]) for k in ("exp_avg", "exp_avg_sq"))
        old = rows(before[id(p)]["exp_avg_sq"])
        assert torch.all(first[1] == 0) and torch.equal(first[0], rows(before[id(p)]["exp_avg"])[0])
        assert torch.all(second[1] == old[[0, 2]].median())
        assert torch.equal(second[[0, 2]], old[[0, 2]])
    for bias in biases:
        assert float(optimizer.state[bias]["exp_avg"][1]) == 0.0


def test_following_the_columns_keeps_the_decoder_and_moves_adam_s_step_with_it():
    # D₂ = V diag(u): the unit changes, D₂ does not, and Adam's next step in D₂ is the one
    # it would take with V's moments in the new unit: each column's step scales with u_j
    from linvae.mrvae.sampled import _follow_columns

    generator = torch.Generator().manual_seed(6)
    V = torch.nn.Parameter(torch.randn(5, 3, generator=generator, dtype=torch.float64))
    unit = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64)
    with torch.no_grad():
        V[:, 0] *= 40.0  # a long column
    optimizer = torch.optim.Adam([V], lr=0.01)
    target = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    ((V * unit - target) ** 2).sum().backward()
    optimizer.step()
    before = (V * unit).detach().clone()
    floor = 0.5
    _follow_columns(V, unit, optimizer, floor)
    assert torch.allclose(V * unit, before, rtol=1e-15, atol=0)
    assert torch.allclose(unit, torch.sqrt(before.square().sum(0) + floor**2), rtol=1e-15)
    assert torch.allclose(V.detach().square().sum(0), before.square().sum(0) / unit**2)
    # the same gradient in D₂ now moves the long column ~40× farther than the others
    optimizer.zero_grad()
    ((V * unit - target) ** 2).sum().backward()
    optimizer.step()
    moved = ((V * unit).detach() - before).abs().mean(0)
    assert moved[0] > 10 * moved[1:].max()
