"""The representation floor of four gate choices on digits, as in docs/audit.md.

    python docs/audit_floor.py docs/figures/audit-floor-digits.png

Latent size 32, the compare grid of 31 β from 0.01 to 10, the model's defaults otherwise
(hidden = k, standardised gate input over (0.01, 10)); prints a table and writes the figure.
"""

import sys
import time

import numpy as np
from linvae.audit.floor import representation_floor

from linvae._io import write_figure
from linvae.analytic import moments, parse_betas
from linvae.data import load

GATES = [
    ("sigmoid", "sqrt", "sigmoid"),  # the paper's
    ("sigmoid", "sqrt", "hinge"),
    ("sqrt", "sqrt", "sigmoid"),
    ("sqrt", "sqrt", "hinge"),  # exact (Theorem 1, joint reading)
]


def main(path):
    X, _ = load("digits")
    cov = moments(X).cov
    betas = parse_betas("0.01:10:31")
    floors = []
    print("encoder decoder covariance | mean floor | max floor (at β) | iterations | seconds")
    for encoder, decoder, cov_gate in GATES:
        started = time.perf_counter()
        result = representation_floor(
            cov, 32, betas, encoder_gate=encoder, decoder_gate=decoder, covariance_gate=cov_gate
        )
        seconds = time.perf_counter() - started
        worst = int(np.argmax(result.floor))
        print(
            f"{encoder} {decoder} {cov_gate} | {result.mean_floor:.3e} | "
            f"{result.floor[worst]:.3e} ({betas[worst]:.3g}) | {result.iterations} | {seconds:.0f}"
        )
        floors.append(result.floor)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), layout="constrained")
    for (encoder, decoder, cov_gate), floor in zip(GATES, floors, strict=True):
        axis.plot(betas, np.maximum(floor, 1e-16), marker="o", markersize=3,
                  label=f"encoder {encoder}, decoder {decoder}, covariance {cov_gate}")  # fmt: skip
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("β")
    axis.set_ylabel("floor: excess of the best fit (nats, upper bound)")
    axis.set_title("MR-VAE representation floor, digits, k = 32")
    axis.legend(fontsize=7)
    write_figure(figure, path, "png", dpi=120)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/audit_floor.py OUT.png")
    sys.exit(main(sys.argv[1]))
