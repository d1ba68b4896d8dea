"""Data moments, streamed in chunks so that memory stays O(d² + chunk·d)."""

import numbers

import numpy as np

from ._types import Moments

DEFAULT_CHUNK_SIZE = 65_536


def moments(X, chunk_size=DEFAULT_CHUNK_SIZE):
    """Sample mean and maximum-likelihood covariance of a data set, in float64.

    The chunks are merged with the pairwise update of Chan, Golub and LeVeque (1979): each
    chunk's centred scatter is added together with the outer product of the difference of
    means, so no ``E[xxᵀ] - mmᵀ`` cancellation occurs however large the mean.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Examples in rows, any real dtype; a memory-mapped ``.npy`` (``np.load(path,
        mmap_mode="r")``) is read one chunk at a time.
    chunk_size : int, default 65536
        Rows converted to float64 at a time.

    Returns
    -------
    Moments
        ``mean`` of shape (d,), ``cov`` of shape (d, d) normalised by ``n``, and ``n``.

    Raises
    ------
    TypeError
        If ``X`` is not a numeric array or ``chunk_size`` is not an integer.
    ValueError
        If ``X`` is not 2-D, has fewer than two rows, or holds NaN/inf; or ``chunk_size < 1``.
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (numbers.Integral, np.integer)):
        raise TypeError(f"chunk_size must be an integer, got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise TypeError(f"X must be an array of real numbers, got dtype {X.dtype}")
    if np.iscomplexobj(X):
        raise TypeError(f"X must be real, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d), got shape {X.shape}")
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X must have at least two examples (rows), got {n}")
    if d < 1:
        raise ValueError(f"X must have at least one feature (column), got shape {X.shape}")

    count = 0
    mean = np.zeros(d)
    scatter = np.zeros((d, d))
    for start in range(0, n, chunk_size):
        chunk = np.asarray(X[start : start + chunk_size], dtype=np.float64)
        if not np.all(np.isfinite(chunk)):
            row, col = np.argwhere(~np.isfinite(chunk))[0]
            raise ValueError(
                f"X must be finite, got {chunk[row, col]} at row {start + row}, column {col}"
            )
        m = chunk.shape[0]
        chunk_mean = chunk.mean(axis=0)
        centred = chunk - chunk_mean
        delta = chunk_mean - mean
        total = count + m
        scatter += centred.T @ centred + np.outer(delta, delta) * (count * m / total)
        mean += delta * (m / total)
        count = total
    cov = scatter / count
    return Moments(mean, (cov + cov.T) / 2, count)
