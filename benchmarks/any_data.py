"""One MR-VAE on data as users bring them: every scale, units that differ, every rank.

``python -m benchmarks.any_data [--cases NAME,...] [--steps N] [--polish N] [--lr LR]
[--beta-weight flat|inverse|both] [--beta-power P] [--whiten-decoder] [--share-thresholds-from F|none]
[--plain-polish] [--polish-weight both|inverse|flat] [--polish-rounds N] [--polish-ridge R]
[--model-encoder-init] [--threads N] [--out DIR]``

Each case is a data set as it comes, trained by linvae's default recipe with no other
setting (``LatentMRVAE`` over the full grid's training range) and evaluated exactly on the
full grid: the max excess in nats and per β (excess/β, nats of rate: free of the data's
scale), the β where each lies, the latents alive at the grid's bottom against the optimum's,
the feature-scale warning (if any) and the wall time. The cases:

- ``digits-unit``: digits in [0, 1] (linvae's embedded set); ``digits-16`` as
  ``sklearn.datasets.load_digits().data`` gives them (0–16); ``digits-255`` at the 8-bit
  scale; ``digits-1e-3``, ``digits-1e3``, ``digits-0.01`` the [0, 1] set times that;
- ``wine-k6``, ``wine-k13``, ``cancer-k10``: scikit-learn's tabular sets as shipped
  (spectra over 7 and 11 decades);
- ``iris-k4``, ``diabetes-raw-k10`` (``load_diabetes(scaled=False)``: age, sex, body
  mass, blood pressure and six serum measures in their own units): more of scikit-learn's
  tabular sets, k = d;
- ``cancer-k30``: breast cancer with k = d = 30 (numerical rank 20, spectrum over 12
  decades: ten latents collapsed at the optimum);
- ``digits-k64``: every pixel a latent (constant pixels: a rank-deficient covariance);
- ``lowrank``: a rank-3 covariance in d = 10 with k = 5;
- ``decades12``: a Gaussian whose spectrum spans 12 decades (d = 16, k = 8);
- ``wide-rank4``: a Gaussian of spectrum 1e6, 1e3, 1, 1e-3, 0, 0 (d = 6, rank 4), k = 6;
- ``patches784``: 60000 28×28 patches, k = 32 (only when named).

``--lr``, ``--beta-weight``, ``--beta-power``, ``--whiten-decoder``, ``--share-thresholds-from``
``--plain-polish``, ``--polish-weight``, ``--polish-rounds``, ``--polish-ridge`` and
``--model-encoder-init`` change one setting
of the recipe (:class:`linvae.mrvae.recipe.RecipeConfig`), to measure what it buys.

Writes ``any_data.json`` and ``any_data.md`` into ``--out``; each case is printed as it ends.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from linvae._cli import positive_int
from linvae.analytic import collapsed_latents, full_grid, moments, rate_distortion, spectrum
from linvae.compare.comparison import feature_scale_warning
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.compare.report import versions
from linvae.data import load
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import BETA_WEIGHTS, RecipeConfig, train_recipe, training_range
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, measured_on, names_among, write_result


def _digits(scale):
    X, _ = load("digits")
    return X * scale


def _sklearn(name, **options):
    import sklearn.datasets

    return getattr(sklearn.datasets, f"load_{name}")(**options).data.astype(np.float64)


def _lowrank():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))


def _wide_rank4():
    X, _ = load("gaussian", n=400, eigvals=[1e6, 1e3, 1.0, 1e-3, 0.0, 0.0], seed=5)
    return X


def _decades12():
    X, _ = load("gaussian", n=2000, eigvals=np.logspace(0, -12, 16), seed=0)
    return X


#: name: (data, k, whether the data lie in [0, 1])
CASES = {
    "digits-unit": (lambda: _digits(1.0), 32, True),
    "digits-16": (lambda: _digits(16.0), 32, False),
    "digits-255": (lambda: _digits(255.0), 32, False),
    "digits-0.01": (lambda: _digits(0.01), 32, True),
    "digits-1e-3": (lambda: _digits(1e-3), 32, True),
    "digits-1e3": (lambda: _digits(1e3), 32, False),
    "wine-k6": (lambda: _sklearn("wine"), 6, False),
    "wine-k13": (lambda: _sklearn("wine"), 13, False),
    "cancer-k10": (lambda: _sklearn("breast_cancer"), 10, False),
    "iris-k4": (lambda: _sklearn("iris"), 4, False),
    "diabetes-raw-k10": (lambda: _sklearn("diabetes", scaled=False), 10, False),
    "cancer-k30": (lambda: _sklearn("breast_cancer"), 30, False),
    "digits-k64": (lambda: _digits(1.0), 64, True),
    "lowrank": (_lowrank, 5, False),
    "decades12": (_decades12, 8, False),
    "wide-rank4": (_wide_rank4, 6, False),
    "patches784": (lambda: load("patches", n=60000)[0], 32, True),
}

#: The cases run without --cases (patches784 takes a minute and a half more).
DEFAULT_CASES = [name for name in CASES if name != "patches784"]


def _live(model, beta):
    """Latents alive at β: columns of D(β) with ‖D_j‖² above β/100 (at the optimum a latent
    alive at the grid's bottom β = λ_m/2 has ‖D_j‖² = λ_j − β ≥ β): a scale-free test."""
    norms = np.linalg.norm(model.params_at(beta).D, axis=0) ** 2
    return int(np.count_nonzero(norms > 0.01 * beta))


def measure(name, config):
    """One case: the trained MR-VAE's exact excess on the full grid, in both units."""
    make, k, unit_interval = CASES[name]
    X = make()
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    grid = full_grid(eigvals, k)
    model = LatentMRVAE(X.shape[1], k, beta_range=training_range(grid), seed=config.seed)
    start = time.perf_counter()
    result = train_recipe(model, X, config)
    seconds = time.perf_counter() - start
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    excess = excess_loss(loss, rate_distortion(eigvals, k, grid).loss)
    per_beta = excess / grid
    optimum_live = int(np.count_nonzero(eigvals[:k] > grid[0]))
    return {
        "case": name,
        "n": int(X.shape[0]),
        "d": int(X.shape[1]),
        "k": k,
        "unit_interval": unit_interval,
        "grid": [float(grid[0]), float(grid[-1])],
        "collapsed": collapsed_latents(eigvals, k),
        "excess_max": float(excess.max()),
        "excess_argmax_beta": float(grid[np.argmax(excess)]),
        "excess_per_beta_max": float(per_beta.max()),
        "excess_per_beta_argmax_beta": float(grid[np.argmax(per_beta)]),
        "live_at_bottom": _live(model, float(grid[0])),
        "optimum_live_at_bottom": optimum_live,
        "warning": feature_scale_warning(stats.cov) is not None,
        "polish_iterations": result.polish_iterations,
        "polish_form": result.polish_form,
        "seconds": seconds,
    }


def markdown(rows, header):
    lines = [
        header,
        "",
        "| case | n × d, k | grid | max excess/β (at β) | max excess, nats (at β) | live at "
        "bottom (optimum) | warning | polish | time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']} × {r['d']}, {r['k']} | {r['grid'][0]:.3g} … "
            f"{r['grid'][1]:.3g} | {r['excess_per_beta_max']:.2g} "
            f"({r['excess_per_beta_argmax_beta']:.3g}) | {r['excess_max']:.2g} "
            f"({r['excess_argmax_beta']:.3g}) | {r['live_at_bottom']} "
            f"({r['optimum_live_at_bottom']}) | {'yes' if r['warning'] else ''} "
            f"| {r.get('polish_iterations', '')} {r.get('polish_form') or ''} "
            f"| {r['seconds']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def _fraction_or_none(text):
    """A share in [0, 1], or "none"."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or none, got {text!r}")
    return value


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.any_data", description=__doc__)
    p.add_argument(
        "--cases",
        type=names_among(CASES, "cases"),
        default=DEFAULT_CASES,
        help="[all but patches784]",
    )
    p.add_argument("--steps", type=positive_int, default=RecipeConfig().steps, help="Adam steps")
    p.add_argument("--polish", type=int, default=RecipeConfig().polish_iterations)
    p.add_argument("--lr", type=float, default=RecipeConfig().lr)
    p.add_argument("--beta-weight", choices=BETA_WEIGHTS, default=RecipeConfig().beta_weight)
    p.add_argument("--beta-power", type=float, default=RecipeConfig().beta_power)
    p.add_argument("--whiten-decoder", action="store_true", default=False)
    p.add_argument(
        "--share-thresholds-from",
        type=_fraction_or_none,
        default=RecipeConfig().share_thresholds_from,
        help="share of Adam's steps after which a latent's gates share one threshold (none: never)",
    )
    p.add_argument(
        "--plain-polish", action="store_true", help="the polish not preconditioned per latent"
    )
    p.add_argument("--polish-weight", choices=BETA_WEIGHTS, default=RecipeConfig().polish_weight)
    p.add_argument("--polish-rounds", type=positive_int, default=RecipeConfig().polish_rounds)
    p.add_argument(
        "--polish-ridge",
        type=float,
        default=RecipeConfig().polish_ridge,
        help="the polish's whitening ridge, a share of Adam's (1: Adam's own)",
    )
    p.add_argument(
        "--model-encoder-init",
        action="store_true",
        help="the encoder starts as the model has it, not filtered by the data",
    )
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/benchmarks/any_data")
    options = p.parse_args(argv)
    config = RecipeConfig(
        steps=options.steps,
        polish_iterations=options.polish,
        seed=options.seed,
        lr=options.lr,
        beta_weight=options.beta_weight,
        beta_power=options.beta_power,
        whiten_decoder=options.whiten_decoder,
        share_thresholds_from=options.share_thresholds_from,
        precondition_polish=not options.plain_polish,
        polish_weight=options.polish_weight,
        polish_rounds=options.polish_rounds,
        polish_ridge=options.polish_ridge,
        encoder_init="model" if options.model_encoder_init else "data",
    )
    set_cpu_threads(options.threads)
    start, rows = time.perf_counter(), []
    for name in options.cases:
        rows.append(measure(name, config))
        r = rows[-1]
        log(
            f"{name:12s} max excess/β {r['excess_per_beta_max']:.3g}  max excess "
            f"{r['excess_max']:.3g} nats  live {r['live_at_bottom']}/{r['optimum_live_at_bottom']}"
            f"  polish {r['polish_iterations']} {r['polish_form'] or ''}  {r['seconds']:.1f} s"
        )
    header = (
        f"`{command_line('benchmarks.any_data', argv)}`: linvae's recipe, seed "
        f"{options.seed}, full grid (31 β); {measured_on(torch.device('cpu'))}, "
        f"{options.threads} torch thread(s); total {time.perf_counter() - start:.0f} s."
    )
    record = {"header": header, "versions": versions(), "config": config.to_dict(), "rows": rows}
    write_result(options.out, "any_data", record, markdown(rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
