"""The MR-VAE's representation floor of four gate choices on digits (docs/audit.md).

    python examples/representation_floor.py docs/figures/audit-floor-digits.png

Latent size 32, the paper's grid of 31 β from 0.01 to 10, the model's defaults otherwise
(hidden = k, standardised gate input over (0.01, 10)); prints a table and writes the figure.
``--latent`` and ``--max-iterations`` make it smaller.
"""

import argparse
import sys
import time

import numpy as np
from matplotlib.figure import Figure

from linvae.analytic import moments, parse_betas
from linvae.data import load
from linvae.mrvae.floor import representation_floor

GATES = [
    ("sigmoid", "sqrt", "sigmoid"),  # the paper's
    ("sigmoid", "sqrt", "hinge"),
    ("sqrt", "sqrt", "sigmoid"),
    ("sqrt", "sqrt", "hinge"),  # exact (Theorem 1, joint reading)
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the figure (.png)")
    parser.add_argument("--latent", type=int, default=32, help="latent size k [32]")
    parser.add_argument("--max-iterations", type=int, default=1000, help="L-BFGS per phase")
    args = parser.parse_args(argv)
    X, _ = load("digits")
    cov = moments(X).cov
    betas = parse_betas("0.01:10:31")
    floors = []
    print("encoder decoder covariance | mean floor | max floor (at β) | iterations | seconds")
    for encoder, decoder, cov_gate in GATES:
        started = time.perf_counter()
        result = representation_floor(
            cov, args.latent, betas, encoder_gate=encoder, decoder_gate=decoder,
            covariance_gate=cov_gate, max_iterations=args.max_iterations,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        worst = int(np.argmax(result.floor))
        print(
            f"{encoder} {decoder} {cov_gate} | {result.mean_floor:.3e} | "
            f"{result.floor[worst]:.3e} ({betas[worst]:.3g}) | {result.iterations} | {seconds:.0f}"
        )
        floors.append(result.floor)
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.add_subplot()
    for (encoder, decoder, cov_gate), floor in zip(GATES, floors, strict=True):
        axis.plot(betas, np.maximum(floor, 1e-16), marker="o", markersize=3,
                  label=f"encoder {encoder}, decoder {decoder}, covariance {cov_gate}")  # fmt: skip
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("β")
    axis.set_ylabel("floor: excess of the best fit (nats, upper bound)")
    axis.set_title(f"MR-VAE representation floor, digits, k = {args.latent}")
    axis.legend(fontsize=7)
    figure.savefig(args.out, dpi=120, metadata={"Software": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
