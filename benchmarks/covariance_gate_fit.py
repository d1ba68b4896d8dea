"""How closely a sigmoid covariance gate can follow the joint optimum C*(β) = min(1, β/λ).

``python -m benchmarks.covariance_gate_fit``

For one latent component of variance λ whose decoder and encoder are at their optimum, a
posterior variance c instead of C* costs ½β(r − 1 − log r), r = c / C* (eq. 14 and 17–18
at the optimum). The script fits c(η) = e^ρ σ(tη + p) (one gate, eq. 30) and
e^ρ σ(t₁η + p₁) σ(t₂η + p₂) (two gates, the appendix's C⁽²⁾C⁽¹⁾) by minimising the mean of
that cost over 400 points of η ∈ [log 0.01, log 10] (Nelder–Mead, several starts) and
prints the mean and the max of the cost at the fit. The hinge gate min(1, eˣ) has cost 0.
"""

import numpy as np
from scipy.optimize import minimize

ETA = np.linspace(np.log(0.01), np.log(10.0), 400)
BETA = np.exp(ETA)


def cost(log_c, lam):
    """½β(r − 1 − log r) with log r = log c − log C*, C* = min(1, β/λ)."""
    log_ratio = log_c - np.minimum(0.0, ETA - np.log(lam))
    return 0.5 * BETA * (np.exp(log_ratio) - 1.0 - log_ratio)


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def fit(lam, gates):
    def log_c(p):
        out = p[-1] + log_sigmoid(p[0] * ETA + p[1])
        return out + (log_sigmoid(p[2] * ETA + p[3]) if gates == 2 else 0.0)

    best = None
    for slope in (0.5, 1.0, 2.0, 4.0):
        start = [slope, -slope * np.log(lam)] * gates + [0.0]
        if gates == 2:
            start[1] += 1.0
            start[3] += 1.0
        result = minimize(
            lambda p: cost(log_c(p), lam).mean(),
            start,
            method="Nelder-Mead",
            options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-14},
        )
        if best is None or result.fun < best.fun:
            best = result
    values = cost(log_c(best.x), lam)
    return values.mean(), values.max()


def main():
    print("λ      gates  mean cost   max cost  (nats / example, one component)")
    for lam in (0.7, 0.3, 0.1, 0.03):
        for gates in (1, 2):
            mean, peak = fit(lam, gates)
            print(f"{lam:<6} {gates:>5}  {mean:.2e}   {peak:.2e}")


if __name__ == "__main__":
    main()
