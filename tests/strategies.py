"""hypothesis strategies named by the mathematics, shared by every test module.

They are built to reach the edges a real covariance has: exact zeros (rank deficiency),
ties, eigenvalues spread over many orders of magnitude, and β beyond every eigenvalue.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Eigenvalues are kept in [1e-6, 1e6] when positive: a dynamic range of 1e12, the widest on
# which float64 closed forms can still be compared to 1e-9 relative.
positive_eigenvalues = st.floats(
    min_value=1e-6, max_value=1e6, allow_nan=False, allow_subnormal=False
)


@st.composite
def spectra_with_ties(draw, min_dim=1, max_dim=8, allow_zeros=True):
    """A descending spectrum of shape (d,), with zeros and ties drawn often."""
    d = draw(st.integers(min_dim, max_dim))
    pool = draw(st.lists(positive_eigenvalues, min_size=1, max_size=max(1, d)))
    if allow_zeros:
        pool = [*pool, 0.0]
    values = draw(st.lists(st.sampled_from(pool), min_size=d, max_size=d))
    return np.sort(np.asarray(values, dtype=np.float64))[::-1].copy()


@st.composite
def orthogonal_matrices(draw, n):
    """A Haar-random orthogonal matrix of shape (n, n), seeded by hypothesis."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@st.composite
def spd_covariances(draw, min_dim=1, max_dim=8, allow_zeros=True):
    """A symmetric positive semidefinite covariance V diag(λ) Vᵀ with its spectrum.

    Returns ``(cov (d, d), eigvals (d,) descending)``.
    """
    eigvals = draw(spectra_with_ties(min_dim=min_dim, max_dim=max_dim, allow_zeros=allow_zeros))
    V = draw(orthogonal_matrices(eigvals.shape[0]))
    cov = (V * eigvals) @ V.T
    return (cov + cov.T) / 2, eigvals


def betas(min_value=1e-4, max_value=1e7):
    """β on a log scale, reaching past every eigenvalue that spectra_with_ties draws."""
    return st.floats(min_value=np.log(min_value), max_value=np.log(max_value)).map(np.exp)


def etas():
    """η = log β over the MR-VAE training range [log 0.01, log 10]."""
    return st.floats(min_value=np.log(0.01), max_value=np.log(10.0))


@st.composite
def latent_sizes(draw, d):
    """A latent size k in 1..d."""
    return draw(st.integers(1, d))


def finite_matrices(shape, bound=10.0):
    """A float64 array of the given shape with bounded finite entries (zeros included)."""
    return hnp.arrays(
        np.float64,
        shape,
        elements=st.floats(-bound, bound, allow_nan=False, allow_subnormal=False),
    )


# The element types that MNIST's IDX format can store (type codes 0x08, 0x09, 0x0B-0x0E).
idx_dtypes = st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"])


@st.composite
def idx_arrays(draw, max_examples=6, max_side=4):
    """An array storable as IDX: n >= 2 examples of shape (d,), (h, w) or (h, w, c).

    Its elements span the dtype's whole range (floats finite, subnormals and ±0 included),
    so a round trip through a file checks every bit of the byte-order conversion.
    """
    dtype = np.dtype(draw(idx_dtypes))
    n = draw(st.integers(2, max_examples))
    example_shape = draw(st.lists(st.integers(1, max_side), min_size=1, max_size=3))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=False, allow_infinity=False, width=8 * dtype.itemsize)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(int(info.min), int(info.max))
    return draw(hnp.arrays(dtype, (n, *example_shape), elements=elements))


@st.composite
def audit_problems(draw, max_dim=6):
    """A linear VAE off its optimum on a random covariance, for linvae.audit.

    Returns ``(cov (d, d), mean (d,), LinearVAEParams(E (k, d), c (k,), D (d, k)),
    decoder bias (d,), encoder offset (k,), β)``; entries bounded by 10, ``c`` in
    [1e-3, 1e3] on a log scale, any k in 1..d+1 (one latent more than the data allows).
    """
    from linvae.analytic import LinearVAEParams

    cov, eigvals = draw(spd_covariances(max_dim=max_dim))
    d = eigvals.shape[0]
    k = draw(st.integers(1, d + 1))
    log_c = draw(hnp.arrays(np.float64, (k,), elements=st.floats(-3 * np.log(10), 3 * np.log(10))))
    params = LinearVAEParams(
        draw(finite_matrices((k, d))), np.exp(log_c), draw(finite_matrices((d, k)))
    )
    mean = draw(finite_matrices((d,)))
    bias = draw(finite_matrices((d,)))
    offset = draw(finite_matrices((k,)))
    return cov, mean, params, bias, offset, draw(betas())


@st.composite
def singular_values_with_zeros(draw, k):
    """Descending singular values of shape (k,), with exact zeros and ties drawn often.

    Positive values lie in [1e-3, 1e3] (squared: the same 1e12 range as the eigenvalues).
    """
    pool = draw(
        st.lists(
            st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_subnormal=False),
            min_size=1,
            max_size=k,
        )
    )
    values = draw(st.lists(st.sampled_from([*pool, 0.0]), min_size=k, max_size=k))
    return np.sort(np.asarray(values, dtype=np.float64))[::-1].copy()


@st.composite
def decoders_with_zero_singular_values(draw, max_dim=6):
    """A decoder D = A diag(s) Bᵀ of shape (d, k) with known singular values s (k,).

    A (d, k) has orthonormal columns, B (k, k) is orthogonal; s may contain exact zeros
    (a rank-deficient decoder) and ties. Returns ``(D, s)``.
    """
    d = draw(st.integers(1, max_dim))
    k = draw(st.integers(1, d))
    s = draw(singular_values_with_zeros(k))
    A = draw(orthogonal_matrices(d))[:, :k]
    B = draw(orthogonal_matrices(k))
    return (A * s) @ B.T, s
