"""The quality benchmarks run end to end at a tiny size and write what their docs quote."""

import json

from benchmarks import (
    any_data,
    compare_quality,
    products,
    recipe_changes,
    recipe_phases,
    sampled_step,
    step_ops,
    time_to_excess,
)

TINY = ["--dataset", "gaussian", "--n", "500", "--latent", "2"]


def test_recipe_changes_writes_one_row_per_change(tmp_path, capsys):
    rows = ["recipe", "paper", "no-polish"]
    argv = [*TINY, "--steps", "20", "--rows", ",".join(rows), "--out", str(tmp_path)]
    assert recipe_changes.main(argv) == 0
    written = json.loads((tmp_path / "changes.json").read_text())
    assert [r["row"] for r in written["rows"]] == rows
    recipe, _, unpolished = written["rows"]
    # At 20 Adam steps (a smoke run; the recipe's own is 3000) the polish's outcome on this
    # d = 16, k = 2 problem is on a knife edge: over seeds 0-9 its full-grid max excess was
    # 1e-13, 1e-4 or 0.2-0.3, and seed 3 flips between 3e-13 (OpenBLAS Haswell) and 1.6e-4
    # (Sandybridge, ATen default) (issue 21). Reaching the optimum is the recipe's claim at
    # its own steps (test_mrvae_recipe). What the polish promises from any Adam start: it is
    # L-BFGS on the mean excess, so it lowers it; measured over seeds 0-9 under both kernels,
    # the polished / unpolished ratio was <= 0.31 (mean) and <= 0.23 (max), and both latents
    # were alive in every polished row. Half leaves a margin of 1.6 and 2.2.
    assert recipe["full_mean"] <= 0.5 * unpolished["full_mean"]
    assert recipe["full_max"] <= 0.5 * unpolished["full_max"]
    assert recipe["live"] == 2
    table = (tmp_path / "changes.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    assert sum(line.startswith("| `") for line in table.splitlines()) == len(rows)


def test_compare_quality_reports_the_time_to_target(tmp_path, capsys):
    argv = [*TINY, "--budgets", "20", "--baseline-budgets", "20", "--baselines", "2",
            "--out", str(tmp_path)]  # fmt: skip
    assert compare_quality.main(argv) == 0
    written = json.loads((tmp_path / "quality.json").read_text())
    (row,) = written["rows"]
    assert row["steps"] == 20 and row["mrvae"]["excess_max"] <= 0.01
    assert written["config"]["latent"] == 2
    table = (tmp_path / "quality.md").read_text()
    assert "one MR-VAE, max excess ≤ 0.01 at every β of the grid" in table
    assert (tmp_path / "quality.png").stat().st_size > 0
    capsys.readouterr()


def test_recipe_phases_follows_one_model_through_adam_and_the_polish(tmp_path, capsys):
    argv = [*TINY, "--budgets", "20", "--rounds", "2", "--polish", "50", "--out", str(tmp_path)]
    assert recipe_phases.main(argv) == 0
    rows = json.loads((tmp_path / "phases.json").read_text())["rows"]
    assert [r["phase"] for r in rows] == ["Adam", "+ L-BFGS round 1", "+ L-BFGS round 2"]
    # on this problem each round lowers the excess, and the time adds up
    assert rows[2]["excess_mean"] <= rows[1]["excess_mean"] <= rows[0]["excess_mean"]
    assert rows[0]["seconds"] <= rows[1]["seconds"] <= rows[2]["seconds"]
    # the dead-latent gap is the optimum's own: zero when every latent is alive, and a
    # lower bound of the excess there (up to latents just below the 0.01 cutoff)
    for r in rows:
        assert (r["dead_latent_gap"] == 0) == (r["live"] == 2)
        assert r["dead_latent_gap"] <= r["excess_at_bottom"] + 1e-9
    capsys.readouterr()


def test_any_data_reports_both_units_and_the_collapsed_latents(tmp_path, capsys):
    argv = ["--cases", "lowrank,wine-k6", "--steps", "50", "--polish", "20", "--lr", "0.05",
            "--beta-weight", "inverse", "--whiten-decoder", "--share-thresholds-from", "none", "--plain-polish",
            "--polish-weight", "flat", "--polish-rounds", "2",
            "--out", str(tmp_path)]  # fmt: skip
    assert any_data.main(argv) == 0
    written = json.loads((tmp_path / "any_data.json").read_text())
    # each one-setting flag reaches the recipe
    assert written["config"]["lr"] == 0.05 and written["config"]["beta_weight"] == "inverse"
    assert written["config"]["whiten_decoder"] and written["config"]["polish_iterations"] == 20
    assert written["config"]["share_thresholds_from"] is None
    assert not written["config"]["precondition_polish"]
    assert written["config"]["polish_weight"] == "flat" and written["config"]["polish_rounds"] == 2
    lowrank, wine = written["rows"]
    # rank 3 in d = 10 with k = 5: two latents collapsed, the grid above round-off
    assert lowrank["collapsed"] == 2 and lowrank["optimum_live_at_bottom"] == 3
    assert lowrank["excess_per_beta_max"] >= 0 and lowrank["excess_max"] >= 0
    assert wine["warning"] and not lowrank["warning"]  # wine's features span 6.8 decades
    table = (tmp_path / "any_data.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    assert "| lowrank |" in table and "| wine-k6 |" in table


def test_step_ops_counts_the_operations_of_each_step_and_times_it(tmp_path, capsys):
    argv = ["--sizes", "16", "--latent", "2", "--steps", "5", "--count-steps", "4",
            "--modes", "autograd,fused", "--out", str(tmp_path)]  # fmt: skip
    assert step_ops.main(argv) == 0
    rows = json.loads((tmp_path / "step_ops.json").read_text())["rows"]
    assert [(r["d"], r["mode"]) for r in rows] == [(16, "autograd"), (16, "fused")]
    autograd, fused = rows
    assert 0 < fused["ops_per_step"] < autograd["ops_per_step"]
    assert all(r["seconds"] > 0 for r in rows)
    table = (tmp_path / "step_ops.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    assert "| 16 | 2 | fused |" in table


def test_products_times_each_way_of_forming_the_steps_products(tmp_path, capsys):
    argv = ["--sizes", "12", "--latent", "3", "--repeats", "2", "--out", str(tmp_path)]
    assert products.main(argv) == 0
    rows = json.loads((tmp_path / "products.json").read_text())["rows"]
    assert [(r["blas"], r["dtype"]) for r in rows] == [
        ("torch", "float64"),
        ("torch", "float32"),
        ("numpy", "float64"),
        ("numpy", "float32"),
    ]
    assert rows[0]["speed-up"] == 1.0
    assert all(r["step"] == r["encoder"] + r["covariance"] + r["back"] for r in rows)
    table = (tmp_path / "products.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
    assert "| 12 | 3 | numpy | float32 |" in table


def test_sampled_step_times_the_pair_in_closed_form_against_its_two_draws(tmp_path, capsys):
    argv = ["--sizes", "5,9", "--latent", "3", "--batch", "8", "--repeats", "1",
            "--out", str(tmp_path)]  # fmt: skip
    assert sampled_step.main(argv) == 0
    rows = json.loads((tmp_path / "sampled_step.json").read_text())["rows"]
    assert [r["d"] for r in rows] == [5, 9]
    for row in rows:  # the same function: the gradients agree to round-off (float32's)
        assert row["gradient_difference"] < 1e-12
        assert 1e-10 < row["float32_gradient_difference"] < 1e-4
        assert row["two_draws_ms"] > 0 and row["pair_ms"] > 0 and row["pair_float32_ms"] > 0
    table = (tmp_path / "sampled_step.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"


def test_time_to_excess_races_each_sampled_row_against_the_fastest_exact_row_as_close():
    rows = [
        {"route": "exact", "setting": "adam", "seconds": 10.0, "max": 1.0},
        {"route": "exact", "setting": "polish 500", "seconds": 30.0, "max": 0.01},
        {"route": "exact", "setting": "polish 250", "seconds": 20.0, "max": 0.1},
        {"route": "sampled", "setting": "4000", "seconds": 15.0, "max": 0.05},
        {"route": "sampled", "setting": "8000", "seconds": 25.0, "max": 0.001},
    ]
    first, second = time_to_excess.race(rows)
    assert first["exact"] == "polish 500" and first["exact_over_sampled"] == 2.0
    assert first["exact_above"] == "polish 250" and first["exact_above_seconds"] == 20.0
    assert second["exact"] is None and second["exact_over_sampled"] is None
    assert second["exact_above"] == "polish 500" and second["exact_above_over_sampled"] == 1.2


def test_time_to_excess_writes_both_routes_and_a_verdict_per_sampled_row(tmp_path, capsys):
    argv = [*TINY, "--sampled-steps", "20,40", "--polish-budgets", "0,10", "--exact-steps",
            "20", "--out", str(tmp_path)]  # fmt: skip
    assert time_to_excess.main(argv) == 0
    written = json.loads((tmp_path / "time_to_excess.json").read_text())
    assert [(r["route"], r["setting"]) for r in written["rows"]] == [
        ("exact", "Adam 20 steps"),
        ("exact", "Adam 20 steps + polish 10"),
        ("sampled", "20 steps"),
        ("sampled", "40 steps"),
    ]
    for row in written["rows"]:
        assert row["seconds"] > 0 and row["max"] >= 0 and row["max_over_beta"] >= 0
    assert [v["sampled"] for v in written["race"]] == ["20 steps", "40 steps"]
    assert written["race"] == time_to_excess.race(written["rows"])
    table = (tmp_path / "time_to_excess.md").read_text()
    assert table == capsys.readouterr().out.rstrip("\n") + "\n"
