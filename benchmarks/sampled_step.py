"""The sampled recipe's step: each antithetic pair in closed form against its two draws.

``python -m benchmarks.sampled_step [--sizes 784,3025] [--latent 64] [--batch 512]
[--repeats 7] [--device cpu] [--out DIR]``

For each d, one :class:`~linvae.mrvae.model.LatentMRVAE` and one batch of ``--batch``
draws (``batch / 2`` examples, each with ε and −ε, one β a pair): the median wall time of
the scale-free loss and its backward, with the pair's two draws formed one by one
(:func:`linvae.mrvae.sampled.sampled_terms` on the batch doubled, what the recipe did
before) and with each pair in closed form (:func:`~linvae.mrvae.sampled.antithetic_terms`,
what it does now), and the largest difference of their gradients relative to its
tensor's largest entry (the same function: round-off). Then the pair with its (B, d)
products in float32 (``SampledConfig.precision``, the default from d = 1024: the data
centred and in the scale's unit, here already), and its gradients' largest difference from
float64's. One torch thread on the CPU; the ratios compare timings of the same run.

Writes ``sampled_step.json`` and ``sampled_step.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys

import torch

from linvae._checks import resolve_device
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.sampled import antithetic_terms, sampled_terms
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, measured_on, positive_ints, write_result
from ._timing import median_seconds


def measure(d: int, k: int, batch: int, repeats: int, device) -> dict:
    """One row: ms a step for the two forms, their ratio and the gradients' agreement."""
    generator = torch.Generator().manual_seed(0)
    pairs = max(batch // 2, 1)
    model = LatentMRVAE(d, k, beta_range=(0.01, 10.0)).to(device)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device)

    x, noise = draw(pairs, d), draw(pairs, k)
    log_beta = torch.log(torch.tensor(0.01, dtype=torch.float64)) + 7.0 * torch.rand(
        pairs, generator=generator, dtype=torch.float64
    ).to(device)
    weights = [draw(k, d).requires_grad_(), draw(d, k).requires_grad_(), draw(d).requires_grad_()]

    def loss(rate, squared_error, betas):
        return torch.mean(0.5 * squared_error + torch.exp(betas) * rate)

    def two_draws():
        terms = sampled_terms(
            model, x.repeat(2, 1), log_beta.repeat(2), torch.cat([noise, -noise]), *weights
        )
        return torch.autograd.grad(loss(*terms, log_beta.repeat(2)), weights)

    def pair():
        terms = antithetic_terms(model, x, log_beta, noise, *weights)
        return torch.autograd.grad(loss(*terms, log_beta), weights)

    low = x.float()  # x has mean 0 and the model's centring is 0: x is centred already

    def pair_float32():
        cast = [w.float() for w in weights]
        terms = antithetic_terms(model, low, log_beta, noise, *cast, centred=True)
        return torch.autograd.grad(loss(*terms, log_beta), weights)

    def timed(function):
        def run():
            function()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        return median_seconds(run, repeats=repeats)

    def differ(first, second):
        pairs = zip(first, second, strict=True)
        return max(float((a - b).abs().max() / a.abs().max()) for a, b in pairs)

    difference = differ(two_draws(), pair())
    difference32 = differ(pair(), pair_float32())
    before, after, after32 = timed(two_draws), timed(pair), timed(pair_float32)
    return {
        "d": d,
        "k": k,
        "batch": batch,
        "two_draws_ms": 1e3 * before,
        "pair_ms": 1e3 * after,
        "speedup": before / after,
        "gradient_difference": difference,
        "pair_float32_ms": 1e3 * after32,
        "float32_speedup": after / after32,
        "float32_gradient_difference": difference32,
    }


def render(rows, command, where) -> str:
    lines = [
        f"`{command}`: {where}, one torch thread on the CPU.",
        "",
        "| d | k | draws | two draws, ms | pair in closed form, ms | speed-up | gradients differ by "
        "| pair in float32, ms | speed-up over float64 | gradients differ by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['k']} | {r['batch']} | {r['two_draws_ms']:.2f} | "
            f"{r['pair_ms']:.2f} | {r['speedup']:.2f}× | {r['gradient_difference']:.1e} | "
            f"{r['pair_float32_ms']:.2f} | {r['float32_speedup']:.2f}× | "
            f"{r['float32_gradient_difference']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sampled_step", description=__doc__)
    parser.add_argument("--sizes", type=positive_ints, default=[784, 3025])
    parser.add_argument("--latent", type=int, default=64)
    parser.add_argument("--batch", type=int, default=512, help="draws a step [512]")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/benchmarks/sampled_step")
    args = parser.parse_args(argv)
    if args.latent < 1 or args.batch < 2 or args.repeats < 1:
        parser.error("--latent and --repeats must be >= 1, --batch >= 2")
    device = resolve_device(args.device)
    set_cpu_threads(1)
    rows = [measure(d, args.latent, args.batch, args.repeats, device) for d in args.sizes]
    command = command_line("benchmarks.sampled_step", argv)
    record = {"command": command, "machine": measured_on(device), "rows": rows}
    write_result(args.out, "sampled_step", record, render(rows, command, measured_on(device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
