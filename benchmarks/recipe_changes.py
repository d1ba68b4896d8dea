"""What each part of linvae's recipe buys: the recipe, the paper's, and the recipe with one
part taken out at a time, each judged by its exact excess on the whole curve.

``python -m benchmarks.recipe_changes [--rows recipe,paper,...] [--out DIR]
[--dataset, --n, --patch-size, --latent, --steps, --seed, --threads, --device of
linvae.compare]`` (``--steps``: every row's, for a smoke run; else each recipe's own)

Every row trains one MR-VAE on the same data and reports its exact excess over the
analytic optimum (max and mean, nats per example) on the full grid (λ_k/2 … 2λ₁, the
default of ``linvae.compare``) and on the paper's grid (0.01 … 10), the latent units alive
at the smallest full-grid β (a singular value of D(β) above 0.01; at the optimum all k
are), and the training wall time. The rows (:data:`ROWS`):

- ``recipe``: ``linvae.compare``'s default MR-VAE (:mod:`linvae.mrvae.recipe`);
- ``paper``: ``--recipe paper``, as the paper trains it (log β uniform over 0.01–10);
- ``paper-auto``: the same, trained over the grid's range (the recipe's range);
- ``paper-model``: the paper's model (gates on the hidden units) trained by the recipe;
- ``no-whitening``, ``uniform-beta`` (β drawn uniform in log β), ``uniform-thresholds``
  (the latents' thresholds started uniform in log β), ``model-decoder-scale`` (the
  decoder's initial scale kept), ``gates-free`` (σ_D gates not kept open at the bottom),
  ``grid-range`` (trained on the grid's range, its bottom not halved), ``no-polish``,
  ``plain-polish`` (the polish not preconditioned per latent), ``own-thresholds`` (a
  threshold per gate throughout), ``adam-ridge-polish`` (the polish whitened with Adam's
  ridge), ``model-encoder-init`` (the encoder's start not filtered by the data): the
  recipe with that one part taken out; ``strong-wolfe-polish``, ``device-polish``: the
  recipe with ``polisher`` set (``RecipeConfig.polisher``);
  ``shared-from-start``: one threshold per latent from the first Adam step.

Writes ``changes.json`` and ``changes.md`` into ``--out``; each row is printed as it ends.
Single runs (one seed): wall times carry the machine's load.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

from linvae._checks import resolve_device
from linvae.analytic import beta_grid, full_grid, moments, rate_distortion, spectrum
from linvae.compare.cli import add_config_flags, config_from_args
from linvae.compare.comparison import load_data
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.compare.report import versions
from linvae.compare.training import new_mrvae, train_mrvae
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import RecipeConfig, train_recipe, training_range
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, measured_on, names_among, write_result

#: Each row: (what it is, how it trains). Recipe rows replace RecipeConfig settings.
ROWS = {
    "recipe": "linvae's recipe (the default of `linvae.compare`)",
    "paper": "the paper's recipe (`--recipe paper`)",
    "paper-auto": "the paper's recipe trained over the grid's range (`--train-range auto`)",
    "paper-model": "the paper's model (gates on the hidden units) trained by linvae's recipe",
    "no-whitening": "the recipe without whitening the encoder's input",
    "uniform-beta": "the recipe, β drawn uniform in log β (not ∝ u²)",
    "uniform-thresholds": "the recipe, the latents' thresholds started uniform in log β",
    "model-decoder-scale": "the recipe, decoder columns left at their initial scale",
    "gates-free": "the recipe, σ_D gates not kept open at the bottom of the range",
    "grid-range": "the recipe trained on the grid's range (its bottom not halved)",
    "no-polish": "the recipe without the L-BFGS polish",
    "own-thresholds": "the recipe, a threshold per gate throughout (never one per latent)",
    "shared-from-start": "the recipe, one threshold per latent from the first step",
    "plain-polish": "the recipe, the L-BFGS polish not preconditioned per latent",
    "adam-ridge-polish": "the recipe, the polish whitened with Adam's ridge (not round-off's)",
    "model-encoder-init": "the recipe, the encoder started as the model has it (unfiltered)",
    "strong-wolfe-polish": "the recipe, the polish by torch's L-BFGS (strong Wolfe)",
    "device-polish": "the recipe, the polish by the batched L-BFGS (no host read a run)",
}

_RECIPE_CHANGES = {
    "no-whitening": {"whiten": False},
    "uniform-beta": {"beta_power": 1.0},
    "model-decoder-scale": {"decoder_init": "model"},
    "gates-free": {"min_open": 0.0},
    "no-polish": {"polish_iterations": 0},
    "own-thresholds": {"share_thresholds_from": None},
    "shared-from-start": {"share_thresholds_from": 0.0},
    "plain-polish": {"precondition_polish": False},
    "adam-ridge-polish": {"polish_ridge": 1.0},
    "model-encoder-init": {"encoder_init": "model"},
    "strong-wolfe-polish": {"polisher": "strong-wolfe"},
    "device-polish": {"polisher": "device"},
}


def train_row(name, X, config, grid):
    """The MR-VAE of row ``name`` trained on ``X`` (n, d): ``(model, TrainResult)``."""
    d, k = X.shape[1], config.latent
    if name in ("recipe", "paper"):
        recipe = "linvae" if name == "recipe" else "paper"
        return train_mrvae(X, dataclasses.replace(config, recipe=recipe), grid)
    if name == "paper-auto":
        return train_mrvae(X, dataclasses.replace(config, recipe="paper", train_range="auto"), grid)
    steps = config.resolved().steps  # the recipe's, or --steps
    settings = RecipeConfig(steps=steps, seed=config.seed, **_RECIPE_CHANGES.get(name, {}))
    beta_range = training_range(grid)
    if name == "grid-range":
        beta_range = (float(np.min(grid)), float(np.max(grid)))
    if name == "paper-model":
        paper = dataclasses.replace(config, recipe="paper", train_range="auto")
        model = new_mrvae(paper, d, grid)
    else:
        power = 1.0 if name == "uniform-thresholds" else 2.0
        model = LatentMRVAE(d, k, beta_range=beta_range, seed=config.seed, threshold_power=power)
    result = train_recipe(model, X, settings, beta_range=beta_range, device=config.device)
    return model, result


def measure(X, config, names, log):
    """One dict per row: excess on the full and the paper grid, live units, wall time."""
    k = config.latent
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    grids = {"full": full_grid(eigvals, k), "paper": beta_grid("paper", eigvals, k)[0]}
    optima = {key: rate_distortion(eigvals, k, grid).loss for key, grid in grids.items()}
    rows = []
    for name in names:
        set_cpu_threads(config.threads)
        model, result = train_row(name, X, config, grids["full"])
        row = {"row": name, "what": ROWS[name], "seconds": result.seconds, "steps": result.steps}
        for key, grid in grids.items():
            loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
            excess = excess_loss(loss, optima[key])
            row[f"{key}_max"], row[f"{key}_mean"] = float(excess.max()), float(excess.mean())
            row[f"{key}_argmax_beta"] = float(grid[int(np.argmax(excess))])
            row[f"{key}_max_per_beta"] = float((excess / grid).max())
        singular = np.linalg.svd(model.params_at(float(grids["full"][0])).D, compute_uv=False)
        row["live"] = int(np.sum(singular > 0.01))
        row["diverged_at"] = result.diverged_at
        rows.append(row)
        log(
            f"{name:<20} full max {row['full_max']:.2e} mean {row['full_mean']:.2e} "
            f"per β {row['full_max_per_beta']:.2e}  paper max {row['paper_max']:.2e}  "
            f"live {row['live']}/{k}  {result.seconds:.1f} s (polish "
            f"{result.polish_seconds:.1f} s, {result.polish_evaluations} evaluations)"
        )
    return rows, grids


def markdown(rows, header, k):
    lines = [
        header,
        "",
        "| row | what | full grid max / mean | at β | paper grid max / mean | at β "
        f"| live of {k} at λ_k/2 | steps | training s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['row']}` | {r['what']} | {r['full_max']:.2g} / {r['full_mean']:.2g} "
            f"| {r['full_argmax_beta']:.3g} | {r['paper_max']:.2g} / {r['paper_mean']:.2g} "
            f"| {r['paper_argmax_beta']:.3g} | {r['live']} | {r['steps']} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipe_changes", description=__doc__)
    p.add_argument("--rows", type=names_among(ROWS, "rows"), default=list(ROWS), help="[all]")
    p.add_argument("--out", default="runs/benchmarks/recipe_changes")
    add_config_flags(
        p, only=("dataset", "n", "patch_size", "latent", "steps", "seed", "threads", "device")
    )
    options = p.parse_args(argv)
    config = dataclasses.replace(config_from_args(options), baselines=0)
    device = resolve_device(config.device)
    X, info = load_data(config)
    start = time.perf_counter()
    rows, grids = measure(X, config, options.rows, log)
    header = (
        f"`{command_line('benchmarks.recipe_changes', argv)}`: {info.name} (n = {info.n}, "
        f"d = {info.d}), k = {config.latent}, seed {config.seed}; full grid "
        f"{grids['full'][0]:.3g} … {grids['full'][-1]:.3g} ({grids['full'].size} β), paper grid "
        f"0.01 … 10; {measured_on(device)}, {config.threads} torch thread(s); total "
        f"{time.perf_counter() - start:.0f} s."
    )
    record = {"header": header, "versions": versions(), "rows": rows}
    write_result(options.out, "changes", record, markdown(rows, header, config.latent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
