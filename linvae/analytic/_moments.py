"""Data moments, streamed in chunks so that memory stays O(d² + chunk·d).

Chunks are merged with the pairwise update of Chan, Golub and LeVeque (1979): each
chunk's centred scatter is added together with the outer product of the difference of
means, so no ``E[xxᵀ] - mmᵀ`` cancellation occurs however large the mean. Accumulation
is in float64 throughout, on the CPU (numpy) or on a torch device. Integer data are first
centred on their first row in exact integer arithmetic, so that integers beyond 2⁵³ (which
float64 does not hold) keep their variance; a covariance that overflows or underflows
float64 is refused.
"""

import os

import numpy as np

from .._checks import UNDERFLOW_SCALE, as_int, resolve_device
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


def _ordered_uint64(values):
    """Integers as uint64 in the same order, with differences kept (int64: sign bit flipped)."""
    if values.dtype.kind == "u":
        return values.astype(np.uint64)
    return values.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)


def integer_offsets(values, reference):
    """``values − reference`` of integer arrays (any widths, broadcast) in float64.

    The difference is formed in exact integer arithmetic and only then rounded: int64 or
    uint64 values near 2⁶³, whose float64 casts have lost their low bits (their variance),
    keep their differences.
    """
    a, r = _ordered_uint64(np.asarray(values)), _ordered_uint64(np.asarray(reference))
    up, down = (a - r).astype(np.float64), (r - a).astype(np.float64)  # uint64: wraps, unused
    return np.where(a >= r, up, -down)


def _chunk_statistics(chunk):
    """(count, mean (d,), centred scatter (d, d), spread) of one float64 block, numpy or
    torch; spread is the largest ``|x − mean|``, which tells data that vary from constant
    data when their scatter underflows to 0."""
    mean = chunk.mean(0)
    centred = chunk - mean
    if isinstance(centred, np.ndarray):
        spread = float(np.max(np.abs(centred), initial=0.0))
    else:
        spread = float(centred.abs().max()) if centred.numel() else 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _as_moments
        return chunk.shape[0], mean, centred.T @ centred, spread


def _merge_statistics(a, b):
    """Chan's pairwise update of two (count, mean, scatter, spread), numpy or torch."""
    (na, ma, sa, ra), (nb, mb, sb, rb) = a, b
    if nb == 0:
        return a
    total = na + nb
    delta = mb - ma
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by _as_moments
        outer = delta[:, None] * delta[None, :]
        gap = float(abs(delta).max()) if na else 0.0
        spread = max(ra, rb, gap)
        return total, ma + delta * (nb / total), sa + sb + outer * (na * nb / total), spread


def _as_moments(statistics, shift=None):
    """Moments from (count, mean, scatter, spread): ML covariance, symmetrised, on the CPU.

    ``shift`` (d,) is the integer reference the data were centred on (added to the mean).
    """
    count, mean, scatter, spread = statistics
    if count < 2:
        raise ValueError(f"X must have at least two examples (rows), got {count}")
    cov = scatter / count
    if not isinstance(cov, np.ndarray):  # a torch tensor, possibly on a GPU
        mean, cov = mean.cpu().numpy(), cov.cpu().numpy()
    if shift is not None:
        mean = mean + shift.astype(np.float64)
    if not (np.all(np.isfinite(cov)) and np.all(np.isfinite(mean))):
        largest = float(np.max(np.abs(mean))) if np.all(np.isfinite(mean)) else float("inf")
        raise ValueError(
            "the covariance of X overflows float64 (values of size up to about "
            f"{largest:.3g}; their squares exceed 1.8e308): rescale X"
        )
    top = float(np.max(np.diag(cov)))
    if (top == 0.0 and spread > 0.0) or 0.0 < top < UNDERFLOW_SCALE:
        raise ValueError(
            f"the covariance of X underflows float64 (values spread by about {spread:.3g}, "
            f"variances up to {top:.3g}; below {UNDERFLOW_SCALE:.3g} float64 loses the digits "
            "that tell the rank): rescale X"
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
        self.shift = None  # the first row of integer data, which every row is centred on
        if device is None:
            self.statistics = (0, np.zeros(d), np.zeros((d, d)), 0.0)
        else:
            import torch

            zeros = torch.zeros((d + 1, d), dtype=torch.float64, device=device)
            self.statistics = (0, zeros[0], zeros[1:], 0.0)

    def _centred_integers(self, chunk):
        """An integer chunk as float64 offsets from the first integer row (exactly formed)."""
        if self.shift is None and self.rows_seen == 0 and chunk.shape[0]:
            self.shift = chunk[0].copy()
        if self.shift is None:  # integers after float rows: no reference was taken
            return chunk.astype(np.float64)
        return integer_offsets(chunk, self.shift)

    def add(self, chunk):
        """Merge a chunk of shape (m, d), any real dtype; raises on NaN/inf naming the row."""
        if isinstance(chunk, np.ndarray) and chunk.dtype.kind in "iu":
            chunk = self._centred_integers(chunk)
        elif self.shift is not None:
            chunk = np.asarray(chunk, dtype=np.float64) - self.shift.astype(np.float64)
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
        return _as_moments(self.statistics, self.shift)


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


def _block_statistics(block, shift=None):
    """(count, mean, centred scatter, spread) of one dask block in float64, integers as
    offsets from ``shift``; raises on NaN/inf."""
    block = np.asarray(block)
    block = integer_offsets(block, shift) if shift is not None else block.astype(np.float64)
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
    shift = np.asarray(X[0].compute()) if X.dtype.kind in "iu" and X.shape[0] else None
    blocks = X.rechunk({1: -1}).to_delayed().ravel()
    stats = [dask.delayed(_block_statistics)(block, shift) for block in blocks]
    while len(stats) > 1:  # a balanced tree of merges: depth log2(number of blocks)
        stats = [
            dask.delayed(_merge_statistics)(stats[i], stats[i + 1])
            if i + 1 < len(stats)
            else stats[i]
            for i in range(0, len(stats), 2)
        ]
    return _as_moments(dask.compute(stats[0])[0], shift)


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
