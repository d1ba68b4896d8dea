"""Gates of linvae.mrvae: values, gradients (float64 autograd), initialisation, validation."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import etas

from linvae.mrvae.gates import (
    ACTIVATIONS,
    TRENDS,
    Gate,
    gate_input_affine,
    hinge_gate,
    sigmoid_gate,
    sqrt_gate,
)

finite_reals = st.floats(-30.0, 30.0, allow_nan=False, allow_subnormal=False)


@given(finite_reals)
def test_sqrt_gate_is_the_appendix_formula(x):
    # σ_D(x) = max(0, 1 − eˣ)^{1/2} (eq. 37–38), written out with math.
    expected = math.sqrt(max(0.0, -math.expm1(x)))
    value = sqrt_gate(torch.tensor(x, dtype=torch.float64)).item()
    assert value == pytest.approx(expected, rel=1e-14, abs=0.0)


@given(finite_reals)
def test_hinge_gate_is_one_minus_the_squared_sqrt_gate(x):
    t = torch.tensor(x, dtype=torch.float64)
    assert hinge_gate(t).item() == pytest.approx(
        1.0 - sqrt_gate(t).item() ** 2, rel=1e-12, abs=1e-15
    )
    assert hinge_gate(t).item() == pytest.approx(min(1.0, math.exp(x)), rel=1e-14)


@given(finite_reals)
def test_sigmoid_gate_is_the_logistic_function(x):
    expected = 1.0 / (1.0 + math.exp(-x))
    assert sigmoid_gate(torch.tensor(x, dtype=torch.float64)).item() == pytest.approx(
        expected, rel=1e-14
    )


def test_sqrt_gate_is_zero_with_zero_gradient_when_closed():
    x = torch.tensor([0.0, 1e-300, 0.5, 20.0], dtype=torch.float64, requires_grad=True)
    y = sqrt_gate(x)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(4, dtype=torch.float64))
    assert torch.equal(x.grad, torch.zeros(4, dtype=torch.float64))


@given(st.floats(-20.0, -1e-6))
def test_sqrt_gate_gradient_is_the_exact_derivative_on_the_open_side(x):
    # d/dx (1 − eˣ)^{1/2} = −eˣ / (2 (1 − eˣ)^{1/2}), exact where σ_D(x) >= √ε (x <= −1e-6 here)
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    sqrt_gate(t).backward()
    expected = -math.exp(x) / (2.0 * math.sqrt(-math.expm1(x)))
    assert t.grad.item() == pytest.approx(expected, rel=1e-12)


def test_sqrt_gate_gradient_is_finite_and_capped_next_to_zero():
    x = torch.tensor([-1e-300, -1e-20, -1e-17], dtype=torch.float64, requires_grad=True)
    sqrt_gate(x).sum().backward()
    cap = 1.0 / (2.0 * math.sqrt(np.finfo(np.float64).eps))
    assert torch.all(torch.isfinite(x.grad))
    assert torch.all(x.grad < 0)
    assert torch.all(-x.grad <= cap * (1 + 1e-12))


@pytest.mark.parametrize("function", [sigmoid_gate, hinge_gate, sqrt_gate])
def test_gate_functions_pass_gradcheck_away_from_the_kink(function):
    x = torch.tensor([-6.0, -2.5, -0.7, -0.05, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(function, (x,), eps=1e-7, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("activation", [a for a in ACTIVATIONS if a != "none"])
@pytest.mark.parametrize("gate_input", ["standardized", "log_beta"])
def test_gate_module_passes_gradcheck(activation, gate_input):
    torch.manual_seed(0)
    gate = Gate(5, activation, gate_input=gate_input, trend="decreasing")
    pre = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    # 6 points: none at the middle of the range, where a new hinge gate has its kink
    log_beta = torch.linspace(math.log(0.01), math.log(10.0), 6, dtype=torch.float64)

    def gated(pre, *params):
        return torch.func.functional_call(
            gate, dict(zip([n for n, _ in gate.named_parameters()], params, strict=True)),
            (pre, log_beta),
        )  # fmt: skip

    params = tuple(p.detach().clone().requires_grad_(True) for p in gate.parameters())
    assert torch.autograd.gradcheck(gated, (pre, *params), eps=1e-7, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "sqrt", "hinge"])
@given(log_beta=etas())
def test_gate_multiplies_pre_activations_per_unit(activation, log_beta):
    # Listing 1, corrected: scale = act(w g(η) + b) per output unit, times the pre-activations.
    gate = Gate(3, activation, trend="decreasing")
    with torch.no_grad():
        gate.weight.copy_(torch.tensor([0.3, -1.2, 0.0], dtype=torch.float64))
        gate.bias.copy_(torch.tensor([-0.4, 0.1, -2.0], dtype=torch.float64))
    pre = torch.tensor([[1.5, -2.0, 0.25]], dtype=torch.float64)
    eta = torch.tensor([log_beta], dtype=torch.float64)
    center, scale = gate_input_affine("standardized")
    x = np.array([0.3, -1.2, 0.0]) * (log_beta - center) / scale + np.array([-0.4, 0.1, -2.0])
    act = {
        "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "sqrt": lambda v: np.sqrt(np.maximum(0.0, -np.expm1(v))),
        "hinge": lambda v: np.exp(np.minimum(v, 0.0)),
    }[activation]
    expected = act(x) * np.array([1.5, -2.0, 0.25])
    np.testing.assert_allclose(gate(pre, eta).detach().numpy()[0], expected, rtol=1e-13, atol=1e-15)


def test_film_gate_scales_and_shifts():
    gate = Gate(2, "film", gate_input="log_beta")
    with torch.no_grad():
        gate.weight.copy_(torch.tensor([2.0, 0.5], dtype=torch.float64))
        gate.bias.copy_(torch.tensor([1.0, -1.0], dtype=torch.float64))
        gate.shift_weight.copy_(torch.tensor([0.1, 0.0], dtype=torch.float64))
        gate.shift_bias.copy_(torch.tensor([0.0, 3.0], dtype=torch.float64))
    eta = torch.tensor([0.5], dtype=torch.float64)
    pre = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    # (2·0.5 + 1)·1 + 0.1·0.5 = 2.05 and (0.5·0.5 − 1)·2 + 3 = 1.5
    np.testing.assert_allclose(gate(pre, eta).detach().numpy(), [[2.05, 1.5]], rtol=1e-15)


def test_none_gate_is_the_identity_without_parameters():
    gate = Gate(4, "none")
    pre = torch.randn(3, 4, dtype=torch.float64)
    assert list(gate.parameters()) == []
    assert torch.equal(gate(pre, torch.zeros(3, dtype=torch.float64)), pre)


@pytest.mark.parametrize("activation", ["sigmoid", "sqrt", "hinge", "film"])
@pytest.mark.parametrize("trend", TRENDS)
def test_new_gates_are_open_and_trainable_on_the_whole_range(activation, trend):
    gate = Gate(3, activation, trend=trend)
    log_beta = torch.linspace(math.log(0.01), math.log(10.0), 50, dtype=torch.float64)
    scale = gate.scale(log_beta)
    assert torch.all(scale > 0.0)
    scale.sum().backward()
    assert torch.all(gate.bias.grad != 0.0)  # every unit receives a gradient


@pytest.mark.parametrize("activation", ["sigmoid", "sqrt", "hinge"])
def test_initial_gate_is_the_same_function_for_both_gate_inputs(activation):
    log_beta = torch.linspace(math.log(0.01), math.log(10.0), 9, dtype=torch.float64)
    a = Gate(2, activation, gate_input="standardized", trend="decreasing").scale(log_beta)
    b = Gate(2, activation, gate_input="log_beta", trend="decreasing").scale(log_beta)
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_decreasing_gates_decrease_in_beta():
    log_beta = torch.linspace(math.log(0.01), math.log(10.0), 20, dtype=torch.float64)
    for activation in ("sigmoid", "sqrt", "hinge"):
        scale = Gate(1, activation, trend="decreasing").scale(log_beta)[:, 0]
        assert torch.all(torch.diff(scale) <= 0), activation


def test_standardized_input_has_zero_mean_and_unit_variance_over_the_range():
    # numerically integrated over η ~ Uniform(log 0.01, log 10), independent of the formula
    center, scale = gate_input_affine("standardized", (0.01, 10.0))
    eta = np.linspace(math.log(0.01), math.log(10.0), 200_001)
    g = (eta - center) / scale
    assert abs(np.trapezoid(g, eta) / (eta[-1] - eta[0])) < 1e-12
    assert np.trapezoid(g**2, eta) / (eta[-1] - eta[0]) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"features": 3, "activation": "relu"}, ValueError, "activation must be one of"),
        ({"features": 0, "activation": "sigmoid"}, ValueError, "features must be >= 1, got 0"),
        ({"features": 2, "activation": "sigmoid", "trend": "up"}, ValueError, "trend must be"),
        ({"features": 2, "gate_input": "raw"}, ValueError, "gate_input must be one of"),
        ({"features": 2, "beta_range": (10.0, 0.01)}, ValueError, "0 < lo < hi"),
        ({"features": 2, "beta_range": "wide"}, TypeError, "pair of floats"),
    ],
)
def test_gate_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Gate(**kwargs)


@pytest.mark.parametrize("activation", ["sigmoid", "sqrt", "hinge"])
@pytest.mark.parametrize("trend", ["decreasing", "increasing"])
def test_staggered_gates_spread_their_thresholds_and_stay_trainable(activation, trend):
    gate = Gate(8, activation, trend=trend, stagger=True)
    log_beta = torch.linspace(math.log(0.01), math.log(10.0), 200, dtype=torch.float64)
    scale = gate.scale(log_beta)
    # every unit is open (> 0) somewhere on the range and has a gradient there
    assert torch.all((scale > 0).any(dim=0))
    scale.sum().backward()
    assert torch.all(gate.bias.grad != 0.0)
    # the units' anchors differ: no two units share their initial function
    assert torch.unique(gate.bias.detach()).numel() == 8
    assert torch.unique(gate.weight.detach()).numel() == 1


def test_staggered_sqrt_gates_are_open_at_the_bottom_of_the_range():
    gate = Gate(16, "sqrt", trend="decreasing", stagger=True)
    bottom = torch.tensor([math.log(0.01)], dtype=torch.float64)
    assert torch.all(gate.scale(bottom) > 0.5)
