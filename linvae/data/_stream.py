"""Moments of a data file streamed from disk, never loaded whole (``.npy``, IDX, gzipped IDX)."""

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .._checks import as_int
from .._progress import bar
from ..analytic import DEFAULT_CHUNK_SIZE, Moments, moments_of_chunks
from ._files import (
    PIXEL_SCALE,
    SUPPORTED_FILES,
    DataFileNotFoundError,
    _check_npy,
    _fail,
    file_format,
    idx_header,
)


def _gzip_rows(path, chunk_rows, row_bytes, dtype, row_shape, total_rows, header_end):
    """Row blocks of a gzipped IDX stream; raises on truncation or trailing bytes."""
    try:
        with gzip.open(path, "rb") as fh:
            fh.read(header_end)
            done = 0
            while done < total_rows:
                m = min(chunk_rows, total_rows - done)
                data = fh.read(m * row_bytes)
                if len(data) < m * row_bytes:
                    raise _fail(
                        path,
                        f"the data is truncated: the header promises {total_rows} rows, the "
                        f"stream ends in row {done + len(data) // row_bytes}",
                    )
                yield np.frombuffer(data, dtype=dtype).reshape((m, *row_shape))
                done += m
            if fh.read(1):
                raise _fail(path, "bytes follow the data that the header describes")
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _fail(path, f"it is not a valid gzip file; truncated or corrupt ({exc})") from None


def _open_rows(path, chunk_rows):
    """(total rows, row shape, dtype, iterator of row blocks) of a .npy or IDX file."""
    kind = file_format(path)
    if kind == "npy":
        with open(path, "rb") as fh:
            _check_npy(path, fh, os.fstat(fh.fileno()).st_size)
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    elif kind == "idx":
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4 + 4 * 255)
        shape, dtype, header_end = idx_header(head, path, size)
        array = np.memmap(path, dtype=dtype, mode="r", offset=header_end, shape=shape)
    elif kind == "idx.gz":
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(4 + 4 * 255)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise _fail(
                path, f"it is not a valid gzip file; truncated or corrupt ({exc})"
            ) from None
        shape, dtype, header_end = idx_header(head, path, None)
        row_bytes = math.prod(shape[1:]) * dtype.itemsize
        blocks = _gzip_rows(path, chunk_rows, row_bytes, dtype, shape[1:], shape[0], header_end)
        return shape[0], tuple(shape[1:]), dtype, blocks
    elif kind == "npz":
        raise _fail(
            path,
            "a .npz archive is compressed and cannot be streamed; use linvae.data.load, or "
            "save the array as .npy to stream it",
        )
    else:
        raise _fail(path, f"unknown file type; supported are {SUPPORTED_FILES}")
    blocks = (array[start : start + chunk_rows] for start in range(0, array.shape[0], chunk_rows))
    return array.shape[0], tuple(array.shape[1:]), array.dtype, blocks


def file_moments(path, *, chunk_size=DEFAULT_CHUNK_SIZE, device=None, progress=False):
    """Mean and ML covariance of a ``.npy`` or IDX file, streamed chunk by chunk.

    Memory is O(d² + chunk_size·d) whatever the number of rows: a ``.npy`` or plain IDX
    file is memory-mapped, a gzipped IDX file is decompressed as a stream. Values are
    those :func:`linvae.data.load` gives: images flattened, uint8 divided by 255.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, IDX (``*-ubyte``, ``*.idx``) or gzipped IDX.
    chunk_size : int, default 65536
        Rows per chunk.
    device : None, "auto", "cpu" or "cuda[:N]", optional
        Where to accumulate in float64 (see :func:`linvae.analytic.moments`).
    progress : bool or callable, default False
        True draws a tqdm bar of the rows read on stderr (on a terminal or in a notebook); a
        callable is called as ``progress(rows_done, total_rows)``.

    Returns
    -------
    Moments

    Raises
    ------
    ValueError
        For a bad or unsupported file (the message names it), NaN/inf in the data, fewer
        than two rows. A missing file raises ``DataFileNotFoundError``.
    """
    path = Path(os.fspath(path))
    chunk_size = as_int(chunk_size, "chunk_size", minimum=1)
    if not path.exists():
        raise DataFileNotFoundError(2, "no such data file", str(path))
    if path.is_dir():
        raise _fail(path, f"it is a directory, not a data file ({SUPPORTED_FILES})")
    total, row_shape, dtype, blocks = _open_rows(path, chunk_size)
    d = math.prod(row_shape)
    flat = (block.reshape(block.shape[0], d) for block in blocks)
    rows = None
    if progress is True:
        rows = bar(f"moments of {path.name}", total, unit="rows", unit_scale=True)

        def progress(done, _total):
            rows.update(done - rows.n)

    try:
        stats = moments_of_chunks(
            flat, d, device=device, progress=progress or None, total_rows=total
        )
    except ValueError as error:
        if str(error).startswith("cannot load"):
            raise
        raise _fail(path, str(error)) from None
    finally:
        if rows is not None:
            rows.close()
    if dtype == np.uint8:
        return Moments(stats.mean / PIXEL_SCALE, stats.cov / PIXEL_SCALE**2, stats.n)
    return stats
