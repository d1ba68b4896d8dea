"""The cost of one Adam step of linvae's recipe: aten operations per step and wall time.

``python -m benchmarks.step_ops [--sizes 64,784] [--steps 3000] [--count-steps 100]
[--latent 32] [--modes autograd,fused,compiled] [--device cpu] [--out DIR]``

Operations per step are the CPU proxy of a GPU step's kernel launches: the top-level aten
operations (:func:`linvae.mrvae._step.top_level_ops`) of ``train_recipe`` with
2 × ``--count-steps`` Adam steps, less those of the same call with ``--count-steps`` (the
set-up and the last step's loss read cancel), over ``--count-steps``. The loss is read on
the last step only: read every 0.2 s, as in training (with a snapshot of the weights,
about 200 operations), it would make the count depend on the step's wall time. They do
not depend on d. Wall time: ``--steps`` Adam steps of
``train_recipe`` (no polish, one thread), set-up excluded, compilation included (timed
before the count; ``TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)`` for a cold compiler cache). d = 64 is
the digits, any other d the (√d)² patches of ``linvae.data.load("patches")`` (6000 of them);
k = ``--latent``, β over the recipe's training range of the full grid.

Modes: ``autograd`` (``RecipeConfig(step="autograd")``, the step before issue 20),
``fused`` (the default: closed-form gradient, fused Adam), ``compiled`` (``fused`` with
``compile="compile"``), ``graph`` (``compile="graph"``: CUDA graphs, with ``--device cuda``).
``--device cuda`` trains there (the operations are still counted on the host: each is a
launch). Writes ``step_ops.json`` and ``step_ops.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

import torch

from linvae.analytic import full_grid, moments, spectrum
from linvae.data import load
from linvae.mrvae import train as train_module
from linvae.mrvae._step import top_level_ops
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import RecipeConfig, train_recipe, training_range
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, positive_ints, write_result
from ._timing import machine

MODES = {
    "autograd": {"step": "autograd"},
    # torch's products, as a GPU issues them (the CPU's default, blas="auto", forms the
    # three (k, d) × (d, d) products through numpy's BLAS, outside aten)
    "fused": {"step": "fused", "blas": "torch"},
    "compiled": {"step": "fused", "compile": "compile"},
    "graph": {"step": "fused", "compile": "graph"},  # CUDA graphs; eager off CUDA
}


def data(d: int, n: int = 6000):
    """The digits (d = 64) or n patches of side √d, and the recipe's β range for k."""
    if d == 64:
        X, _ = load("digits")
    else:
        side = math.isqrt(d)
        if side * side != d:
            raise ValueError(f"d must be 64 or a square, got {d}")
        X, _ = load("patches", n=n, patch_size=side)
    return X


def recipe_ops_per_step(X, k: int, settings: dict, steps: int, beta_range, device="cpu"):
    """Top-level aten operations per Adam step of ``train_recipe`` (set-up excluded)."""

    def run(count):
        model = LatentMRVAE(X.shape[1], k, beta_range=beta_range)
        config = RecipeConfig(steps=count, polish_iterations=0, **settings)
        return lambda: train_recipe(model, X, config, beta_range=beta_range, device=device)

    run(3)()  # compiles, where asked, before counting
    with _loss_read_at_the_end():
        return (top_level_ops(run(2 * steps)) - top_level_ops(run(steps))) / steps


@contextlib.contextmanager
def _loss_read_at_the_end():
    """The recipe's Adam reads the loss every ``READ_INTERVAL`` s and on its last step:
    here on its last step only."""
    interval = train_module.READ_INTERVAL
    train_module.READ_INTERVAL = math.inf
    try:
        yield
    finally:
        train_module.READ_INTERVAL = interval


def recipe_seconds(X, k: int, settings: dict, steps: int, beta_range, device="cpu") -> float:
    """Wall seconds of ``steps`` Adam steps of ``train_recipe`` (compilation included)."""
    model = LatentMRVAE(X.shape[1], k, beta_range=beta_range)
    config = RecipeConfig(steps=steps, polish_iterations=0, **settings)
    return train_recipe(model, X, config, beta_range=beta_range, device=device).seconds


def run(sizes, modes, k, steps, count_steps, device="cpu"):
    """One row per (d, mode): operations per step and seconds for ``steps`` steps."""
    rows = []
    for d in sizes:
        X = data(d)
        eigvals = spectrum(moments(X).cov).eigvals
        beta_range = training_range(full_grid(eigvals, k))
        for mode in modes:
            torch._dynamo.reset()  # each compiled row pays its own compilation, timed first
            seconds = (
                recipe_seconds(X, k, MODES[mode], steps, beta_range, device) if steps else None
            )
            ops = recipe_ops_per_step(X, k, MODES[mode], count_steps, beta_range, device)
            rows.append({"d": d, "k": k, "mode": mode, "ops_per_step": ops, "seconds": seconds})
            log(f"d = {d} {mode}: {ops:.1f} ops/step, {seconds} s for {steps} steps")
    return rows


def render(rows, command, steps, device="cpu"):
    where = machine() if device == "cpu" else f"{machine()}, training on {device}"
    lines = [
        f"`{command}`, one thread, on {where}.",
        "",
        f"| d | k | step | aten ops per step | Adam, {steps} steps (s) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        seconds = "—" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['d']} | {r['k']} | {r['mode']} | {r['ops_per_step']:.1f} | {seconds} |")
    return "\n".join(lines) + "\n"


def _modes(text):
    names = [v for v in text.split(",") if v]
    if not names or any(v not in MODES for v in names):
        raise argparse.ArgumentTypeError(f"modes must be among {', '.join(MODES)}; got {text!r}")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_ops", description=__doc__)
    parser.add_argument("--sizes", type=positive_ints, default=[64, 784])
    parser.add_argument("--modes", type=_modes, default=["autograd", "fused", "compiled"])
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000, help="timed Adam steps (0: none)")
    parser.add_argument("--count-steps", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="step_ops")
    args = parser.parse_args(argv)
    set_cpu_threads(1)
    rows = run(args.sizes, args.modes, args.latent, args.steps, args.count_steps, args.device)
    command = command_line("benchmarks.step_ops", argv)
    record = {"command": command, "device": args.device, "rows": rows}
    write_result(args.out, "step_ops", record, render(rows, command, args.steps, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
