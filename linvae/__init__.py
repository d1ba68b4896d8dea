"""linvae: exact verification of linear VAEs and of the Multi-Rate VAE.

Subpackages
-----------
analytic
    Closed forms in float64: data moments, the optimal linear β-VAE, the exact
    objective of any linear VAE, gradients and the rate-distortion curve.
data
    Data sets that need no download (digits, photograph patches, Gaussian) and
    user files (.npy, .npz, MNIST IDX).
"""

__version__ = "0.1.0"
