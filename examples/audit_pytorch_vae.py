"""Audit a linear VAE trained the way PyTorch users often write one (docs/audit.md).

    python examples/audit_pytorch_vae.py OUT.npz [--steps 3000]

Trains on digits (d = 64) a linear VAE with k = 8: encoder ``nn.Linear(64, 16)`` giving the
mean and log-variance, decoder ``nn.Linear(8, 64)``, loss
``F.mse_loss(x̂, x, reduction="mean") + β · KL.sum(-1)``, batch mean, β = 0.008, one sample
of z per example, Adam (lr 1e-2, batches of 128), seed 0, float32, one thread; writes the
model as OUT.npz and prints its audit at the effective β and at the naive one.
"""

import argparse
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from linvae.audit import audit_model, effective_beta, from_torch, save_npz
from linvae.data import load

BETA, K, BATCH, LR, SEED = 0.008, 8, 128, 1e-2, 0


def train(X, steps):
    """The user's training loop: a linear encoder and decoder, MSE (mean) + β · KL."""
    torch.manual_seed(SEED)
    d = X.shape[1]
    encoder, decoder = nn.Linear(d, 2 * K), nn.Linear(K, d)
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=LR)
    data = torch.as_tensor(X, dtype=torch.float32)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(steps):
        x = data[torch.randint(0, data.shape[0], (BATCH,), generator=generator)]
        mean, log_var = encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=generator)
        kl = 0.5 * torch.sum(-log_var + mean**2 + torch.exp(log_var) - 1.0, dim=-1)
        loss = F.mse_loss(decoder(z), x, reduction="mean") + BETA * kl.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return encoder, decoder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where to write the trained model (.npz)")
    parser.add_argument("--steps", type=int, default=3000, help="Adam steps [3000]")
    args = parser.parse_args(argv)
    np.seterr(all="raise")
    torch.set_num_threads(1)
    X, _ = load("digits")
    encoder, decoder = train(X, args.steps)
    model = from_torch(encoder, decoder, "split")
    save_npz(args.out, model)
    # the MSE is averaged over d pixels and has no ½: β_eff = β · d / 2
    beta = effective_beta(BETA, reconstruction="mean", half=False, d=X.shape[1])
    print(f"effective beta {beta:.6g}")
    print(audit_model(model, X, beta).summary())
    naive = audit_model(model, X, BETA)
    print(f"audited at the naive beta {BETA}: excess {naive.excess:.6f} nats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
