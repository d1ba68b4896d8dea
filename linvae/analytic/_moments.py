"""Data moments, streamed in chunks so that memory stays O(d² + chunk·d).

Chunks are merged with the pairwise update of Chan, Golub and LeVeque (1979): each
chunk's centred scatter is added together with the outer product of the difference of
means, so no ``E[xxᵀ] - mmᵀ`` cancellation occurs however large the mean. Accumulation
is in float64 throughout, on the CPU (numpy) or on a torch device.
"""

import os

import numpy as np

from .._checks import as_int, resolve_device
from ._types import Moments

DEFAULT_CHUNK_SIZE = 65_536


def _resolve_device(device):  # shared by spectrum()
    """None for numpy on the CPU, else a torch.device; "auto" is CUDA when present, else numpy."""
    if device is None or device == "cpu-numpy":
        return None
    if device == "auto":
        try:
            resolved = resolve_device("auto")
        except ImportError:  # no torch: numpy is the only device
            return None
        return resolved if resolved.type == "cuda" else None
    return resolve_device(device)


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_covariance_fits(d: int, memory: int | None = None) -> None:
    """Refuse, before allocating, a d × d float64 covariance larger than the machine's memory.

    Raises
    ------
    MemoryError
        Saying how much the covariance needs and how much there is.
    """
    memory = memory_bytes() if memory is None else memory
    needed = 8 * d * d
    if memory is not None and needed > memory:
        raise MemoryError(
            f"X has d = {d} columns: its d × d covariance needs {needed / 2**30:.0f} GiB, more "
            f"than this machine's {memory / 2**30:.0f} GiB of memory. linvae works from the full "
            "covariance: reduce d, or compute it where it fits (linvae.data.file_moments streams "
            "the rows of a file, a dask array spreads them over workers)"
        )


def _chunk_statistics(chunk):
    """(count, mean (d,), centred scatter (d, d)) of one float64 block, numpy or torch."""
    mean = chunk.mean(0)
    centred = chunk - mean
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _as_moments
        return chunk.shape[0], mean, centred.T @ centred


def _merge_statistics(a, b):
    """Chan's pairwise update of two (count, mean, scatter) triples, numpy or torch."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if nb == 0:
        return a
    total = na + nb
    delta = mb - ma
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _as_moments
        outer = delta[:, None] * delta[None, :]
        return total, ma + delta * (nb / total), sa + sb + outer * (na * nb / total)


def _as_moments(statistics):
    """Moments from (count, mean, scatter): ML covariance, symmetrised, on the CPU."""
    count, mean, scatter = statistics
    if count < 2:
        raise ValueError(f"X must have at least two examples (rows), got {count}")
    cov = scatter / count
    if not isinstance(cov, np.ndarray):  # a torch tensor, possibly on a GPU
        mean, cov = mean.cpu().numpy(), cov.cpu().numpy()
    if not (np.all(np.isfinite(cov)) and np.all(np.isfinite(mean))):
        largest = float(np.max(np.abs(mean))) if np.all(np.isfinite(mean)) else float("inf")
        raise ValueError(
            "the covariance of X overflows float64 (values of size up to about "
            f"{largest:.3g}; their squares exceed 1.8e308): rescale X"
        )
    with np.errstate(over="ignore"):
        return Moments(mean, (cov + cov.T) / 2, int(count))


class _Accumulator:
    """Running (count, mean (d,), centred scatter (d, d)), merged chunk by chunk (Chan)."""

    def __init__(self, d, device):
        if device is None:
            check_covariance_fits(d)
        self.device = device
        self.rows_seen = 0
        if device is None:
            self.statistics = (0, np.zeros(d), np.zeros((d, d)))
        else:
            import torch

            zeros = torch.zeros((d + 1, d), dtype=torch.float64, device=device)
            self.statistics = (0, zeros[0], zeros[1:])

    def add(self, chunk):
        """Merge a chunk of shape (m, d), any real dtype; raises on NaN/inf naming the row."""
        if self.device is None:
            chunk = np.asarray(chunk, dtype=np.float64)
            finite = np.isfinite(chunk)
            if not finite.all():
                row, col = np.argwhere(~finite)[0]
                raise ValueError(
                    f"X must be finite, got {chunk[row, col]} at row {self.rows_seen + row}, "
                    f"column {col}"
                )
        else:
            import torch

            chunk = torch.as_tensor(np.asarray(chunk)).to(self.device, dtype=torch.float64)
            finite = torch.isfinite(chunk)
            if not bool(finite.all()):
                row, col = (int(i) for i in torch.nonzero(~finite)[0])
                raise ValueError(
                    f"X must be finite, got {float(chunk[row, col])} at row {self.rows_seen + row}, "
                    f"column {col}"
                )
        self.statistics = _merge_statistics(self.statistics, _chunk_statistics(chunk))
        self.rows_seen += chunk.shape[0]

    def result(self):
        return _as_moments(self.statistics)


def moments_of_chunks(chunks, d, *, device=None, progress=None, total_rows=None):
    """Moments of data given as an iterable of row blocks, each of shape (m, d).

    Parameters
    ----------
    chunks : iterable of array_like of shape (m, d)
        Row blocks in any real dtype, read once, in order.
    d : int
        Number of columns.
    device : None, "auto", "cpu" or "cuda[:N]"
        None accumulates in numpy; otherwise torch float64 on that device ("auto": CUDA
        when present, else numpy).
    progress : callable, optional
        Called as ``progress(rows_done, total_rows)`` after each block.
    total_rows : int, optional
        Passed to ``progress``.

    Returns
    -------
    Moments
    """
    accumulator = _Accumulator(d, _resolve_device(device))
    for chunk in chunks:
        if chunk.ndim != 2 or chunk.shape[1] != d:
            raise ValueError(f"every chunk must have shape (m, {d}), got {tuple(chunk.shape)}")
        accumulator.add(chunk)
        if progress is not None:
            progress(accumulator.rows_seen, total_rows)
    return accumulator.result()


def _is_dask_array(X):
    return type(X).__module__.startswith("dask.") and hasattr(X, "to_delayed")


def _block_statistics(block):
    """(count, mean, centred scatter) of one dask block in float64; raises on NaN/inf."""
    block = np.asarray(block, dtype=np.float64)
    if not np.all(np.isfinite(block)):
        row, col = np.argwhere(~np.isfinite(block))[0]
        raise ValueError(
            f"X must be finite, got {block[row, col]} in a block, at its row {row}, column {col}"
        )
    return _chunk_statistics(block)


def _dask_moments(X):
    """Moments of a dask array, out of core, on whatever scheduler the user has set."""
    import dask

    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d), got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_) or np.iscomplexobj(
        np.empty(0, X.dtype)
    ):
        raise TypeError(f"X must be an array of real numbers, got dtype {X.dtype}")
    blocks = X.rechunk({1: -1}).to_delayed().ravel()
    stats = [dask.delayed(_block_statistics)(block) for block in blocks]
    while len(stats) > 1:  # a balanced tree of merges: depth log2(number of blocks)
        stats = [
            dask.delayed(_merge_statistics)(stats[i], stats[i + 1])
            if i + 1 < len(stats)
            else stats[i]
            for i in range(0, len(stats), 2)
        ]
    return _as_moments(dask.compute(stats[0])[0])


def moments(X, chunk_size=DEFAULT_CHUNK_SIZE, *, device=None, progress=None):
    """Sample mean and maximum-likelihood covariance of a data set, in float64.

    Parameters
    ----------
    X : array_like of shape (n, d)
        Examples in rows, any real dtype. A memory-mapped array (``np.load(path,
        mmap_mode="r")``) is read one chunk at a time, never whole; a dask array is
        reduced out of core on the dask scheduler in use (``pip install linvae[dask]``).
        :func:`linvae.data.file_moments` streams ``.npy`` and IDX files by path.
    chunk_size : int, default 65536
        Rows converted to float64 at a time.
    device : None, "auto", "cpu" or "cuda[:N]", optional
        Where to accumulate: None (default) in numpy; otherwise in torch float64 on that
        device, "auto" meaning CUDA when present. Ignored for dask arrays.
    progress : callable, optional
        Called as ``progress(rows_done, n)`` after each chunk.

    Returns
    -------
    Moments
        ``mean`` of shape (d,), ``cov`` of shape (d, d) normalised by ``n``, and ``n``.

    Raises
    ------
    TypeError
        If ``X`` is not a numeric array or ``chunk_size`` is not an integer.
    ValueError
        If ``X`` is not 2-D, has fewer than two rows, or holds NaN/inf; or ``chunk_size < 1``;
        or ``device`` names a device torch does not see.
    """
    chunk_size = as_int(chunk_size, "chunk_size", minimum=1)
    if _is_dask_array(X):
        return _dask_moments(X)
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
    chunks = (X[start : start + chunk_size] for start in range(0, n, chunk_size))
    return moments_of_chunks(chunks, d, device=device, progress=progress, total_rows=n)
