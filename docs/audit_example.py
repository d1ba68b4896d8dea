"""The worked example of docs/audit.md: a linear VAE trained the way PyTorch users often
write it, then audited. Run from the repository root:

    python docs/audit_example.py OUT.npz

Trains on digits (d = 64) a linear VAE with k = 8: encoder ``nn.Linear(64, 16)`` giving the
mean and log-variance, decoder ``nn.Linear(8, 64)``, loss
``F.mse_loss(x̂, x, reduction="mean") + β · KL.sum(-1)``, batch mean, β = 0.008, one sample
of z per example, Adam (lr 1e-2, 3000 steps of 128), seed 0, float32, one thread; writes the model as
OUT.npz and prints its audit at the effective β.
"""

import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from linvae.audit import audit_model, effective_beta, from_torch, save_npz
from linvae.data import load

BETA, K, STEPS, BATCH, LR, SEED = 0.008, 8, 3000, 128, 1e-2, 0


def train(X):
    torch.manual_seed(SEED)
    d = X.shape[1]
    encoder, decoder = nn.Linear(d, 2 * K), nn.Linear(K, d)
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=LR)
    data = torch.as_tensor(X, dtype=torch.float32)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(STEPS):
        x = data[torch.randint(0, data.shape[0], (BATCH,), generator=generator)]
        mean, log_var = encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=generator)
        kl = 0.5 * torch.sum(-log_var + mean**2 + torch.exp(log_var) - 1.0, dim=-1)
        loss = F.mse_loss(decoder(z), x, reduction="mean") + BETA * kl.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return encoder, decoder


def main(path):
    torch.set_num_threads(1)
    X, _ = load("digits")
    encoder, decoder = train(X)
    model = from_torch(encoder, decoder, "split")
    save_npz(path, model)
    # the MSE is averaged over d pixels and has no ½: β_eff = β · d / 2
    beta = effective_beta(BETA, reconstruction="mean", half=False, d=X.shape[1])
    print(f"effective beta {beta:.6g}")
    print(audit_model(model, X, beta).summary())
    naive = audit_model(model, X, BETA)
    print(f"audited at the naive beta {BETA}: excess {naive.excess:.6f} nats")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/audit_example.py OUT.npz")
    np.seterr(all="raise")
    sys.exit(main(sys.argv[1]))
