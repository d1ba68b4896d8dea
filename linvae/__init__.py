"""linvae: exact verification of linear VAEs and of the Multi-Rate VAE.

Subpackages
-----------
analytic
    Closed forms in float64: data moments, the optimal linear β-VAE, the exact
    objective of any linear VAE, gradients and the rate-distortion curve.
data
    Data sets that need no download (digits, photograph patches, Gaussian) and
    user files (.npy, .npz, MNIST IDX), and moments streamed from files.
symbolic
    sympy re-derivation of appendix A and Theorem 1, claim by claim, with computed
    verdicts (``python -m linvae.proofs``).
mrvae
    The gated linear MR-VAE and its β-VAE baseline in torch, and their training.
compare
    ``python -m linvae.compare``: train, evaluate exactly, report against the optimum.
audit
    Where a trained linear VAE's excess loss over the optimum comes from, and what a loss
    convention means in β (``python -m linvae.audit``).
"""

__version__ = "0.1.0"
