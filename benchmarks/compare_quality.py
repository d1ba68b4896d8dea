"""Quality against training budget: one MR-VAE against β-VAEs, exact excess over the optimum.

``python -m benchmarks.compare_quality [--budgets 500,1000,2000,3000]
[--baseline-budgets 250,500,1000,3000] [any flag of python -m linvae.compare]``

For each budget S (optimiser steps per model: the recipe's Adam steps, the polish after
them included in the time), with the settings of ``linvae.compare`` (its defaults, changed
by the same flags, ``--recipe paper`` included):

1. one MR-VAE trained for S steps, its exact excess loss over the analytic optimum on the
   evaluation grid (max, mean), and its wall time;
2. the β-VAEs of the config, S steps each, their excess at their own β (max, mean) and
   their total wall time; and the MR-VAE's excess at those β.

Writes ``quality.json`` (strict serialiser), ``quality.md`` and ``quality.png`` into
``--out``. Wall times depend on the machine and its load: compare rows of one run only.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from linvae._checks import resolve_device
from linvae._io import write_figure
from linvae.analytic import beta_grid, moments, rate_distortion, spectrum
from linvae.compare.cli import add_config_flags, config_from_args
from linvae.compare.comparison import load_data
from linvae.compare.evaluate import evaluate_model, exact_terms, excess_loss
from linvae.compare.report import versions
from linvae.compare.training import baseline_betas, train_baselines, train_mrvae

from ._runs import command_line, log, measured_on, write_result


def parse_steps(text):
    return [int(v) for v in text.split(",") if v]


def measure(X, config, grid, budgets, baseline_budgets, log):
    """One row per budget: the MR-VAE's and the β-VAEs' exact excess and wall time.

    This is time to target: the smallest budget whose max excess is within the target,
    and its wall time. (The recipe's schedule depends on its budget, so a model checked in
    the middle of a longer run is not the model that budget trains.)
    """
    k = config.latent
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    optimum = rate_distortion(eigvals, k, grid).loss
    own = baseline_betas(config, grid)
    own_optimum = rate_distortion(eigvals, k, own).loss if own.size else own
    rows = []
    for steps in sorted(set(budgets) | set(baseline_budgets)):
        budget = dataclasses.replace(config, steps=steps, epochs=None)
        row = {"steps": steps}
        if steps in budgets:
            model, result = train_mrvae(X, budget, grid)
            excess = excess_loss(
                evaluate_model(model, stats.mean, stats.cov, grid)["loss"], optimum
            )
            row["mrvae"] = {
                "seconds": result.seconds,
                "excess": excess,
                "excess_max": float(excess.max()),
                "excess_mean": float(excess.mean()),
            }
            if own.size:
                at_own = excess_loss(
                    evaluate_model(model, stats.mean, stats.cov, own)["loss"], own_optimum
                )
                row["mrvae"]["excess_at_baseline_betas_max"] = float(at_own.max())
                row["mrvae"]["excess_at_baseline_betas_mean"] = float(at_own.mean())
            log(f"MR-VAE  {steps:>6} steps {result.seconds:7.1f} s  excess max "
                f"{excess.max():.3g} mean {excess.mean():.3g}")  # fmt: skip
        if steps in baseline_budgets and own.size:
            baselines, _, _ = train_baselines(X, budget, grid)
            excess = [
                float(
                    excess_loss([exact_terms(b.model, b.beta, stats.mean, stats.cov).loss], [o])[0]
                )
                for b, o in zip(baselines, own_optimum, strict=True)
            ]
            seconds = sum(b.result.seconds for b in baselines)
            row["beta_vaes"] = {
                "seconds": seconds,
                "seconds_each": [b.result.seconds for b in baselines],
                "betas": own,
                "excess": excess,
                "excess_max": float(np.max(excess)),
                "excess_mean": float(np.mean(excess)),
            }
            log(f"β-VAEs  {steps:>6} steps {seconds:7.1f} s  excess max "
                f"{np.max(excess):.3g} mean {np.mean(excess):.3g}")  # fmt: skip
        rows.append(row)
    return rows


def _pair(row, prefix):
    if f"{prefix}_max" not in row:
        return "—"
    return f"{row[f'{prefix}_max']:.3g} / {row[f'{prefix}_mean']:.3g}"


def time_to_target(rows, target):
    """Sentences: the smallest budget that brings each model within ``target`` everywhere.

    The MR-VAE: the first budget whose max excess over the grid is within ``target``, and
    its wall time. The β-VAEs: for each, the first budget within ``target`` at its own β;
    the sum of those runs' wall times (None when one never got there).
    """
    mr = [r for r in rows if "mrvae" in r]
    first = next((r for r in mr if r["mrvae"]["excess_max"] <= target), None)
    lines = [
        f"- one MR-VAE, max excess ≤ {target} at every β of the grid: "
        + (
            f"**{first['mrvae']['seconds']:.1f} s** ({first['steps']} steps)"
            if first
            else f"not within {target} at any budget measured"
        )
    ]
    bv = [r for r in rows if "beta_vaes" in r]
    if bv:
        count = len(bv[0]["beta_vaes"]["excess"])
        total, missed = 0.0, []
        for i in range(count):
            hit = next((r for r in bv if r["beta_vaes"]["excess"][i] <= target), None)
            if hit is None:
                missed.append(f"{bv[0]['beta_vaes']['betas'][i]:.3g}")
            else:
                total += hit["beta_vaes"]["seconds_each"][i]
        lines.append(
            f"- {count} β-VAEs, each ≤ {target} at its own β with the smallest budget that "
            + (
                f"gets it there: **{total:.1f} s** in all"
                if not missed
                else f"gets it there: not reached at β = {', '.join(missed)}"
            )
        )
    return "\n".join(lines) + "\n"


def markdown(rows, header, grid_size, baselines):
    lines = [
        header,
        "",
        f"| steps per model | MR-VAE time | MR-VAE max / mean excess ({grid_size} β) "
        f"| MR-VAE max / mean at the {baselines} β | {baselines} β-VAEs time "
        "| β-VAEs max / mean excess |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        mr, bv = row.get("mrvae"), row.get("beta_vaes")
        cells = [str(row["steps"])]
        cells += (
            [f"{mr['seconds']:.1f} s", _pair(mr, "excess"), _pair(mr, "excess_at_baseline_betas")]
            if mr
            else ["—"] * 3
        )
        cells += [f"{bv['seconds']:.1f} s", _pair(bv, "excess")] if bv else ["—"] * 2
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows, grid):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.0))
    left, right = fig.subplots(1, 2)
    for key, label, color in (("mrvae", "one MR-VAE", "C0"), ("beta_vaes", "β-VAEs", "C3")):
        points = [(r[key]["seconds"], r[key]["excess_max"], r[key]["excess_mean"])
                  for r in rows if key in r]  # fmt: skip
        if points:
            t, mx, mean = np.array(points).T
            left.plot(t, mx, "o-", color=color, label=f"{label}: max")
            left.plot(t, mean, "o--", color=color, mfc="none", label=f"{label}: mean")
    left.axhline(0.01, color="k", ls=":", lw=1)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("wall time of training (s)")
    left.set_ylabel("excess loss (nats / example)")
    left.legend(frameon=False, fontsize=8)
    for r in rows:
        if "mrvae" in r:
            right.plot(grid, np.maximum(r["mrvae"]["excess"], 1e-6), label=f"{r['steps']} steps")
    right.axhline(0.01, color="k", ls=":", lw=1)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("β")
    right.set_ylabel("MR-VAE excess (nats / example)")
    right.legend(frameon=False, fontsize=8)
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_quality")
    p.add_argument("--budgets", type=parse_steps, default=[500, 1000, 2000, 3000])
    p.add_argument("--baseline-budgets", type=parse_steps, default=[250, 500, 1000, 3000])
    p.add_argument("--target", type=float, default=0.01, help="nats per example [0.01]")
    p.add_argument("--out", default="runs/benchmarks/compare_quality")
    add_config_flags(p, skip=("steps", "epochs", "floor"))
    options = p.parse_args(argv)
    config = config_from_args(options)
    device = resolve_device(config.device)
    X, info = load_data(config)
    grid, note = beta_grid(config.betas, spectrum(moments(X).cov).eigvals, config.latent)
    Path(options.out).mkdir(parents=True, exist_ok=True)  # a bad --out fails before the work
    start = time.perf_counter()
    rows = measure(X, config, grid, options.budgets, options.baseline_budgets, log)
    where = measured_on(device)
    header = (
        f"`{command_line('benchmarks.compare_quality', argv)}`: {info.name} (n = {info.n}, "
        f"d = {info.d}), grid {note}; settings of `linvae.compare` (report.json's `config`): "
        f"{config.resolved().to_dict()}; device {device} ({where}); total "
        f"{time.perf_counter() - start:.0f} s."
    )
    record = {"config": config.resolved().to_dict(), "machine": where, "versions": versions(),
              "grid": grid, "rows": rows}  # fmt: skip
    table = markdown(rows, header, grid.size, config.baselines)
    table += "\n" + time_to_target(rows, options.target)
    out = write_result(options.out, "quality", record, table)
    write_figure(figure(rows, grid), out / "quality.png", dpi=90, bbox_inches="tight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
