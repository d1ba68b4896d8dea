"""The quality benchmarks run end to end at a tiny size and write what their docs quote."""

import json

from benchmarks import compare_quality, recipe_changes

TINY = ["--dataset", "gaussian", "--n", "500", "--latent", "2"]


def test_recipe_changes_writes_one_row_per_change(tmp_path, capsys):
    rows = ["recipe", "paper", "no-polish"]
    argv = [*TINY, "--steps", "20", "--rows", ",".join(rows), "--out", str(tmp_path)]
    assert recipe_changes.main(argv) == 0
    written = json.loads((tmp_path / "changes.json").read_text())
    assert [r["row"] for r in written["rows"]] == rows
    recipe = written["rows"][0]
    # the exact objective and the polish take a d = 8, k = 2 problem to the optimum
    assert recipe["full_max"] <= 1e-6 and recipe["live"] == 2
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
