"""Where linvae's recipe spends its budget: the MR-VAE's exact excess after Adam and after
each round of the L-BFGS polish, with the latents alive and the share the dead ones explain.

``python -m benchmarks.recipe_phases [--budgets 1000,3000] [--rounds 3] [--out DIR]
[--dataset, --n, --patch-size, --latent, --polish, --seed, --threads, --device of
linvae.compare]``

For each Adam budget, one fresh MR-VAE (``LatentMRVAE``, the recipe's training range) is
trained by Adam alone (``polish_iterations=0``), then polished ``--rounds`` times by
``--polish`` L-BFGS iterations each (``RecipeConfig(steps=0, resume=True)``: each round
restarts L-BFGS from the model as it is). After each phase: the exact excess on the full
grid (max, mean, the β of the max), the latents alive at the grid's smallest β (a singular
value of D(β) above 0.01; at the optimum all k are), and the **dead-latent gap**: the
optimum with only that many latents minus the k-latent optimum at that β
(``linvae.analytic.rate_distortion``), the part of the excess there that no optimisation
of the live latents can remove. Times are cumulative wall seconds of training.

Writes ``phases.json`` and ``phases.md`` into ``--out``; each phase is printed as it ends.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from linvae._checks import resolve_device
from linvae._cli import positive_int
from linvae.analytic import full_grid, moments, rate_distortion, spectrum
from linvae.compare.cli import add_config_flags, config_from_args
from linvae.compare.comparison import load_data
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.compare.report import versions
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import RecipeConfig, train_recipe, training_range
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, measured_on, write_result


def _counts(text):
    values = [int(v) for v in text.split(",") if v]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers a,b,..., got {text!r}")
    return values


def measure(X, config, budgets, rounds, log):
    """One dict per (budget, phase): excess, live latents, dead-latent gap, seconds."""
    k = config.latent
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    grid = full_grid(eigvals, k)
    optimum = rate_distortion(eigvals, k, grid).loss
    beta_range = training_range(grid)
    polish = config.resolved().polish
    rows = []
    for budget in budgets:
        set_cpu_threads(config.threads)
        model = LatentMRVAE(X.shape[1], k, beta_range=beta_range, seed=config.seed)
        phases = [("Adam", RecipeConfig(steps=budget, polish_iterations=0, seed=config.seed))]
        resume = RecipeConfig(steps=0, polish_iterations=polish, resume=True, seed=config.seed)
        phases += [(f"+ L-BFGS round {r + 1}", resume) for r in range(rounds)]
        seconds = 0.0
        for phase, settings in phases:
            result = train_recipe(model, X, settings, beta_range=beta_range, device=config.device)
            seconds += result.seconds
            excess = excess_loss(
                evaluate_model(model, stats.mean, stats.cov, grid)["loss"], optimum
            )
            singular = np.linalg.svd(model.params_at(float(grid[0])).D, compute_uv=False)
            live = int(np.sum(singular > 0.01))
            gap = rate_distortion(eigvals, live, grid[:1]).loss - optimum[:1]
            row = {
                "adam_steps": budget, "phase": phase, "polish_iterations": polish,
                "excess_max": float(excess.max()), "excess_mean": float(excess.mean()),
                "argmax_beta": float(grid[int(np.argmax(excess))]),
                "excess_at_bottom": float(excess[0]), "live": live,
                "dead_latent_gap": float(gap[0]), "seconds": seconds,
            }  # fmt: skip
            rows.append(row)
            log(
                f"{budget:>6} steps {phase:<18} max {row['excess_max']:.3g} at β "
                f"{row['argmax_beta']:.3g}  live {live}/{k}  dead gap {row['dead_latent_gap']:.3g}"
                f"  {seconds:.1f} s"
            )
    return rows, grid


def markdown(rows, header, k):
    """The table of :func:`measure`'s rows, under ``header``."""
    lines = [
        header,
        "",
        "| Adam steps | after | max excess | at β | excess at the grid's bottom "
        f"| live of {k} there | dead-latent gap there | training s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['adam_steps']} | {r['phase']} | {r['excess_max']:.3g} | {r['argmax_beta']:.3g} "
            f"| {r['excess_at_bottom']:.3g} | {r['live']} | {r['dead_latent_gap']:.3g} "
            f"| {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipe_phases", description=__doc__)
    p.add_argument("--budgets", type=_counts, default=[1000, 3000], help="Adam steps [1000,3000]")
    p.add_argument("--rounds", type=positive_int, default=3, help="L-BFGS rounds after Adam [3]")
    p.add_argument("--out", default="runs/benchmarks/recipe_phases")
    add_config_flags(
        p, only=("dataset", "n", "patch_size", "latent", "polish", "seed", "threads", "device")
    )
    options = p.parse_args(argv)
    config = config_from_args(options)
    if config.recipe != "linvae":
        p.error("the phases are those of linvae's recipe")
    device = resolve_device(config.device)
    X, info = load_data(config)
    start = time.perf_counter()
    rows, grid = measure(X, config, options.budgets, options.rounds, log)
    header = (
        f"`{command_line('benchmarks.recipe_phases', argv)}`: {info.name} (n = {info.n}, "
        f"d = {info.d}), k = {config.latent}, seed {config.seed}; full grid {grid[0]:.3g} … "
        f"{grid[-1]:.3g} ({grid.size} β); {measured_on(device)}, {config.threads} torch "
        f"thread(s); total {time.perf_counter() - start:.0f} s."
    )
    record = {"header": header, "versions": versions(), "rows": rows}
    write_result(options.out, "phases", record, markdown(rows, header, config.latent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
