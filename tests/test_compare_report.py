"""The strict JSON serialiser, atomic writes, the excess check and the Markdown rendering."""

import json
import math

import numpy as np
import pytest

from linvae._io import atomic_write_text, dumps, to_json_builtin
from linvae.compare.evaluate import BelowOptimumError, excess_loss
from linvae.compare.report import read_json


def test_serialiser_converts_numpy_and_keeps_builtins():
    value = {
        "a": np.float64(1.5),
        "b": np.arange(3),
        "c": (1, True, None, "x"),
        "d": np.bool_(True),
    }
    assert to_json_builtin(value) == {
        "a": 1.5,
        "b": [0, 1, 2],
        "c": [1, True, None, "x"],
        "d": True,
    }
    assert json.loads(dumps({"m": np.eye(2)})) == {"m": [[1.0, 0.0], [0.0, 1.0]]}


@pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", np.datetime64("2020-01-01")])
def test_serialiser_refuses_unknown_types(bad):
    with pytest.raises(TypeError, match=r"report\.inner\[0\] has type"):
        dumps({"inner": [bad]})


@pytest.mark.parametrize("bad", [math.nan, math.inf, np.float64(-np.inf)])
def test_serialiser_refuses_non_finite_numbers(bad):
    with pytest.raises(ValueError, match="JSON has no NaN or infinity"):
        dumps({"x": bad})


def test_serialiser_refuses_non_string_keys():
    with pytest.raises(TypeError, match="key 1"):
        dumps({1: "one"})


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_read_json_names_what_is_missing(tmp_path):
    path = tmp_path / "report.json"
    path.write_text('{"betas": []}')
    with pytest.raises(ValueError, match="lacks the report keys"):
        read_json(path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_json(path)


def test_excess_accepts_round_off_and_rejects_a_loss_below_the_optimum():
    optimum = np.array([60.0, 61.0])
    # round-off is kept, not hidden
    excess = excess_loss(optimum + np.array([0.5, -1e-12]), optimum)
    assert excess[0] == 0.5
    assert -2e-12 < excess[1] < 0
    with pytest.raises(BelowOptimumError, match="below the analytic optimum"):
        excess_loss(optimum - np.array([0.0, 1e-6]), optimum)


def test_the_training_line_says_when_adams_products_are_float32():
    """``adam_precision`` "auto" takes float32 from d = 1024 on (RecipeConfig): the
    report's sentence on training says so there, and only there."""
    from linvae.compare.report import _training_line
    from linvae.mrvae.recipe import FLOAT32_FROM_D, RecipeConfig

    train = {**RecipeConfig().to_dict(), "recipe": "linvae", "objective": "exact",
             "beta_range": [0.01, 10.0]}  # fmt: skip
    for d, precision, expected in (
        (FLOAT32_FROM_D, "auto", True),
        (FLOAT32_FROM_D - 1, "auto", False),
        (8, "float32", True),
        (5000, "float64", False),
    ):
        report = {"training": {**train, "adam_precision": precision},
                  "mrvae": {"config": {"d": d}}}  # fmt: skip
        assert ("products in float32" in _training_line(report)) is expected, (d, precision)
