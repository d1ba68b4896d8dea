"""CompareConfig is the one copy of the defaults: the CLI, the library and report.json agree."""

import dataclasses
import json

import numpy as np
import pytest

from linvae.analytic import beta_grid, full_grid
from linvae.compare import CompareConfig, load_run, run_comparison
from linvae.compare.cli import build_parser, config_from_args
from linvae.compare.config import RECIPE_DEFAULTS, SAMPLED_DEFAULTS
from linvae.compare.run_folder import save_run
from linvae.compare.training import train_config
from linvae.mrvae.sampled import SampledConfig


def test_the_parser_with_no_flags_gives_the_default_config():
    assert config_from_args(build_parser().parse_args([])) == CompareConfig()


def _text(value):
    return ":".join(map(str, value)) if isinstance(value, tuple) else str(value)


def test_every_setting_has_a_flag_whose_help_shows_the_config_default():
    parser = build_parser()
    helps = {action.dest: action.help for action in parser._actions}
    for field in dataclasses.fields(CompareConfig):
        assert field.name in helps, field.name
        default = getattr(CompareConfig(), field.name)
        if default is None and field.name in RECIPE_DEFAULTS["linvae"]:  # each recipe's own
            shown = "; ".join(f"{r}: {_text(v[field.name])}" for r, v in RECIPE_DEFAULTS.items())
        else:
            shown = _text(default)
        assert helps[field.name].endswith(f"[{shown}]"), (field.name, helps[field.name])


def test_a_setting_left_at_none_takes_its_recipes_value():
    linvae, paper = CompareConfig().resolved(), CompareConfig(recipe="paper").resolved()
    for name, value in RECIPE_DEFAULTS["paper"].items():
        expected = paper.latent if value == "k" else value
        assert getattr(paper, name) == expected, name
    assert (linvae.steps, linvae.train_range, linvae.hidden) == (3000, "auto", linvae.latent)
    assert linvae.resolved() == linvae  # resolving twice changes nothing


def test_the_linvae_recipe_on_the_sampled_objective_takes_the_sampled_recipes_defaults():
    config = CompareConfig(objective="sampled").resolved()
    for name, value in SAMPLED_DEFAULTS.items():
        assert getattr(config, name) == value, name
    settings = train_config(config, 100, np.array([0.1, 1.0]))
    assert isinstance(settings, SampledConfig)
    assert (settings.steps, settings.batch_size, settings.lr) == (
        config.steps, config.batch_size, config.lr
    )  # fmt: skip
    assert CompareConfig(objective="sampled", steps=7).resolved().steps == 7


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"encoder_gate": "sigmoid"}, "encoder_gate='sigmoid' is fixed by the linvae recipe"),
        ({"objective": "sampled", "polish": 5}, "polish applies to the linvae recipe's exact"),
        ({"epochs": 2}, "epochs applies to the paper recipe"),
        ({"recipe": "paper", "polish": 5}, "polish applies to the linvae recipe"),
        ({"recipe": "paper", "gate_thresholds": "square"}, "belongs to the linvae recipe"),
        ({"recipe": "keras"}, "recipe must be one of"),
    ],
)
def test_settings_a_recipe_fixes_are_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        CompareConfig(**settings)


def test_each_flag_sets_its_setting():
    args = build_parser().parse_args(
        ["--steps", "7", "--train-range", "0.001:5", "--compile", "compile", "--threads", "2"]
    )
    config = config_from_args(args)
    assert (config.steps, config.train_range, config.compile, config.threads) == (
        7, (0.001, 5.0), "compile", 2
    )  # fmt: skip
    assert dataclasses.replace(config, steps=None, train_range=None, compile="none",
                               threads=1) == CompareConfig()  # fmt: skip


def test_the_config_round_trips_through_its_dict():
    config = CompareConfig(
        betas=(0.1, 1.0), train_range=(0.001, 10.0), hidden=7, epochs=3, recipe="paper"
    )
    record = json.loads(json.dumps(config.to_dict()))
    assert CompareConfig.from_dict(record) == config
    with pytest.raises(ValueError, match=r"unknown settings \['colour'\]"):
        CompareConfig.from_dict({**record, "colour": "red"})


def test_full_grid_spans_every_switch_of_the_optimum_with_a_margin():
    eigvals = np.array([4.0, 1.0, 0.25, 0.0])
    grid = full_grid(eigvals, 3)
    assert grid[0] == pytest.approx(0.125) and grid[-1] == pytest.approx(8.0)
    assert np.allclose(np.diff(np.log(grid)), np.log(64.0) / (grid.size - 1))
    # k beyond the rank: the smallest positive eigenvalue among the top k
    assert full_grid(eigvals, 4)[0] == pytest.approx(0.125)
    betas, note = beta_grid("paper", eigvals, 3)
    assert betas[0] == pytest.approx(0.01) and betas[-1] == pytest.approx(10.0) and "paper" in note


def test_report_records_the_whole_config_and_load_run_reads_it_back(tmp_path):
    config = CompareConfig(
        latent=2, steps=6, baselines=1, betas="0.1:1:3", threads=1, compile="none", floor="none",
        polish=3,
    )  # fmt: skip
    comparison = run_comparison(config)
    save_run(tmp_path, comparison.report, comparison.models)
    recorded = json.loads((tmp_path / "report.json").read_text())["config"]
    assert recorded == json.loads(json.dumps(config.resolved().to_dict()))
    assert {"threads", "compile", "recipe"} <= set(recorded)
    run = load_run(tmp_path)
    assert run.config == config.resolved()
    assert run.models.mrvae_result.steps == 6
    np.testing.assert_array_equal(comparison.excess, run.report["mrvae"]["excess"])


def test_a_run_written_before_the_config_was_recorded_is_still_read(tmp_path):
    config = CompareConfig(
        latent=2, steps=4, baselines=1, betas="0.1:1:3", floor="none", recipe="paper"
    )
    comparison = run_comparison(config)
    save_run(tmp_path, comparison.report, comparison.models)
    report = json.loads((tmp_path / "report.json").read_text())
    # the report of earlier versions: no "config", the requested latent size, the baselines
    del report["config"]
    report["latent_requested"] = 2
    report["training"]["baselines"] = 1
    (tmp_path / "report.json").write_text(json.dumps(report))
    run = load_run(tmp_path)
    assert run.config == dataclasses.replace(config.resolved(), betas=tuple(comparison.betas))
    assert len(run.models.baselines) == 1


def test_config_flags_can_be_a_chosen_subset():
    import argparse

    from linvae.compare.cli import add_config_flags

    parser = argparse.ArgumentParser()
    add_config_flags(parser, only=("latent", "steps"))
    flags = {a.dest for a in parser._actions} - {"help"}
    assert flags == {"latent", "steps"}
    with pytest.raises(ValueError, match="only names no CompareConfig field"):
        add_config_flags(argparse.ArgumentParser(), only=("latnet",))
