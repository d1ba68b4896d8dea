"""The least-squares gate product behind Theorem 1's witnesses (linvae.construction.fit) is
a global optimum in its box: the same from any search grid and below any point of the box,
so the max errors that proofs/theorem1.md prints do not move with the machine (issue 21).
"""

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linvae.construction.fit import (
    ETA_RANGE,
    K_BOUND,
    OFFSET_BOUND,
    SLOPE_BOUND,
    best_gate_product_fit,
)
from linvae.construction.gates import sqrt_gate

ETA = np.linspace(*ETA_RANGE, 161)


def covariance(eta):
    """c*(D*(η)) = min(1, e^η) at λ = 1: T1.b.covariance.sqrt's target (the one that moved)."""
    return np.minimum(1.0, np.exp(eta))


def sum_of_squares(h1, q1, h2, q2):
    """Of the σ_D product with the best K in [-K_BOUND, K_BOUND] (max f = 1 here)."""
    g = sqrt_gate(h1 * ETA + q1) * sqrt_gate(h2 * ETA + q2)
    f = covariance(ETA)
    K = np.clip(g @ f / (g @ g), -K_BOUND, K_BOUND) if g @ g > 0 else 0.0
    return float(np.sum((K * g - f) ** 2))


@cache
def fit():
    return best_gate_product_fit(covariance, "sqrt")


@pytest.mark.slow
@pytest.mark.parametrize(
    "grid",
    [
        {"slopes": np.geomspace(0.1, 20, 9), "crossing_step": 0.4},
        {"slopes": np.geomspace(0.03, 30, 20), "crossing_step": 0.17},
    ],
)
def test_another_search_grid_reaches_the_same_optimum(grid):
    # Measured (issue 21): over these grids, OpenBLAS Sandybridge/Haswell and numpy's
    # baseline SIMD path the max error moved < 1e-8; 1e-7 leaves room, and is 1e-5 of the
    # 0.01 the two local minima of this problem are apart (0.180 and 0.173).
    other = best_gate_product_fit(covariance, "sqrt", **grid)
    assert abs(other.max_error - fit().max_error) < 1e-7
    assert other.worst_eta == fit().worst_eta
    np.testing.assert_allclose(other.params, fit().params, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_the_optimum_is_below_the_local_minimum_a_multi_start_search_reported():
    # (K, h₁, q₁, h₂, q₂) of the local search before issue 21 (max error 0.177 on AVX2):
    # its sum of squares is above the global one, though its max error is lower
    local = (-0.7882, -1.3881, -0.6774, -1.1931)
    assert sum_of_squares(*fit().params[1:]) < sum_of_squares(*local)
    assert fit().max_error == pytest.approx(0.1804, abs=5e-5)  # what proofs/theorem1.md rounds


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    st.floats(-SLOPE_BOUND, SLOPE_BOUND),
    st.floats(-OFFSET_BOUND / 30, OFFSET_BOUND / 30),
    st.floats(-SLOPE_BOUND, SLOPE_BOUND),
    st.floats(-OFFSET_BOUND / 30, OFFSET_BOUND / 30),
)
def test_no_point_of_the_box_fits_better(h1, q1, h2, q2):
    # q within ±5: where σ_D is neither 0 nor 1 on the whole η range for moderate h
    assert sum_of_squares(h1, q1, h2, q2) >= sum_of_squares(*fit().params[1:]) - 1e-12
