"""User data files: NumPy ``.npy`` and ``.npz``, MNIST IDX (plain or gzipped).

Every fault of a file raises ``ValueError`` with one sentence that starts with
``cannot load '<path>':`` and names the fault; a missing file raises
:class:`DataFileNotFoundError`, which is both a ``FileNotFoundError`` and a ``ValueError``.
"""

import errno
import gzip
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from ._info import DatasetInfo
from ._subset import subset_rows

SUPPORTED_FILES = ".npy, .npz, IDX (*-ubyte, *.idx) and gzipped IDX (*-ubyte.gz, *.idx.gz)"
PIXEL_SCALE = 255.0

# IDX type codes (third byte of the magic number) and their big-endian element types,
# from the format description on Yann LeCun's MNIST page.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_CODES = {(dtype.kind, dtype.itemsize): code for code, dtype in IDX_DTYPES.items()}
IDX_MAX_DIM = 2**31 - 1  # dimensions are stored as big-endian int32
FINITE_CHECK_BYTES = 1 << 24  # rows checked for NaN/inf at a time: about 16 MiB of float64


class DataFileNotFoundError(FileNotFoundError, ValueError):
    """A data file that does not exist; catchable as FileNotFoundError or ValueError."""


def file_format(path):
    """The format a file name announces: ``"npy"``, ``"npz"``, ``"idx"``, ``"idx.gz"`` or None.

    Parameters
    ----------
    path : str or os.PathLike
        Only the name is looked at, case-insensitively; the file need not exist.
    """
    name = Path(os.fspath(path)).name.lower()
    gzipped = name.endswith(".gz")
    stem = name[: -len(".gz")] if gzipped else name
    if stem.endswith(("-ubyte", ".idx")):
        return "idx.gz" if gzipped else "idx"
    if gzipped:
        return None
    if stem.endswith(".npy"):
        return "npy"
    if stem.endswith(".npz"):
        return "npz"
    return None


def looks_like_path(name):
    """Whether a string that is no data set name should be read as a file path."""
    return (
        os.sep in name
        or "/" in name
        or bool(Path(name).suffix)
        or file_format(name) is not None
        or os.path.exists(name)
    )


def _fail(path, fault):
    """The ValueError of a bad file: one sentence naming the file and the fault."""
    return ValueError(f"cannot load '{path}': {fault}")


def _check_dtype(path, dtype):
    """Reject element types that are not real numbers (object, str, bytes, records, complex)."""
    if dtype.kind not in "biuf":
        raise _fail(
            path,
            f"the array is not numeric (dtype {dtype}); expected booleans, integers or floats",
        )


def _check_shape(path, shape):
    """Reject arrays that cannot become (n, d) with n >= 2 and d >= 1."""
    if len(shape) < 2:
        raise _fail(
            path,
            f"an array of shape {tuple(shape)} cannot be flattened to (n, d); expected "
            "(n, d), images (n, h, w) or (n, h, w, c)",
        )
    if shape[0] < 2:
        raise _fail(path, f"it holds {shape[0]} example(s); at least two are needed")
    if math.prod(shape[1:]) == 0:
        raise _fail(path, f"its examples hold no values (shape {tuple(shape)})")


def _npy_header(fh, path):
    """``(shape, fortran_order, dtype, data_offset)`` from the header of an open .npy stream."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise _fail(
                path,
                f".npy format version {version[0]}.{version[1]} is not supported; it only "
                "stores records with non-Latin-1 field names, which are not numeric",
            )
    except ValueError as exc:
        if str(exc).startswith("cannot load"):
            raise
        raise _fail(path, f"it is not a valid .npy file ({exc})") from None
    return shape, fortran, dtype, fh.tell()


def _check_npy(path, fh, stored_bytes):
    """Check the header of a .npy stream against what the file holds; return the shape."""
    shape, _, dtype, offset = _npy_header(fh, path)
    _check_dtype(path, dtype)
    _check_shape(path, shape)
    promised = math.prod(shape) * dtype.itemsize
    if stored_bytes - offset < promised:
        raise _fail(
            path,
            f"the data is truncated: the header promises {promised} bytes of {dtype} for "
            f"shape {shape}, the file holds {stored_bytes - offset}",
        )
    return shape


def _read_npy(path):
    """The array of a .npy file, memory-mapped read-only (no pickles)."""
    with open(path, "rb") as fh:
        _check_npy(path, fh, os.fstat(fh.fileno()).st_size)
    return np.load(path, mmap_mode="r", allow_pickle=False), None


def _read_npz(path, key):
    """The array named ``key`` (or the only one) of a .npz archive, and its name."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise _fail(
            path, f"it is not a valid .npz archive; truncated or not a zip ({exc})"
        ) from None
    with archive:
        names = [member[: -len(".npy")] for member in archive.namelist() if member.endswith(".npy")]
        if key is None:
            if len(names) != 1:
                listed = ", ".join(repr(name) for name in names) or "none"
                raise _fail(
                    path,
                    f"the archive holds {len(names)} arrays ({listed}); pass key= to choose one",
                )
            key = names[0]
        elif key not in names:
            listed = ", ".join(repr(name) for name in names) or "none"
            raise _fail(path, f"the archive has no array named {key!r}; it holds {listed}")
        member = f"{key}.npy"
        try:
            with archive.open(member) as fh:
                _check_npy(path, fh, archive.getinfo(member).file_size)
            with archive.open(member) as fh:
                array = np.lib.format.read_array(fh, allow_pickle=False)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise _fail(path, f"array {key!r} is corrupt in the archive ({exc})") from None
    return array, key


def idx_header(head, path, stored_bytes):
    """``(shape, dtype, data_offset)`` of an IDX file from its first bytes, checked.

    Parameters
    ----------
    head : bytes
        At least the header (4 + 4·ndim bytes; 4 + 4·255 always suffices).
    path : str or os.PathLike
        Named in the errors.
    stored_bytes : int or None
        Size of the whole (decompressed) file, to detect truncated or trailing data; None
        when it is not known yet (a gzip stream), and the caller checks while reading.
    """
    if len(head) < 4:
        raise _fail(
            path, f"the IDX header is truncated: {len(head)} bytes, the magic number needs 4"
        )
    zero_a, zero_b, code, ndim = head[:4]
    if zero_a or zero_b or code not in IDX_DTYPES:
        magic = int.from_bytes(head[:4], "big")
        codes = ", ".join(f"0x{known:02X}" for known in IDX_DTYPES)
        raise _fail(
            path,
            f"wrong IDX magic number 0x{magic:08X}; expected 0x0000TTNN with type code TT "
            f"in {codes} and NN the number of dimensions",
        )
    header_end = 4 + 4 * ndim
    if len(head) < header_end:
        raise _fail(
            path,
            f"the IDX header is truncated: {ndim} dimensions need {header_end} bytes, "
            f"the file holds {len(head)}",
        )
    shape = struct.unpack(f">{ndim}I", head[4:header_end])
    _check_shape(path, shape)
    dtype = IDX_DTYPES[code]
    promised = math.prod(shape) * dtype.itemsize
    if stored_bytes is None:
        return shape, dtype, header_end
    stored = stored_bytes - header_end
    if stored < promised:
        raise _fail(
            path,
            f"the data is truncated: the header promises {promised} bytes of {dtype.name} for "
            f"shape {shape}, the file holds {stored}",
        )
    if stored > promised:
        raise _fail(
            path,
            f"{stored - promised} bytes follow the {promised} bytes of data that the header "
            f"describes for shape {shape}",
        )
    return shape, dtype, header_end


def _read_idx(path, gzipped):
    """The array of an IDX file (MNIST's format), native byte order not yet applied."""
    try:
        if gzipped:
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = Path(path).read_bytes()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _fail(path, f"it is not a valid gzip file; truncated or corrupt ({exc})") from None
    shape, dtype, header_end = idx_header(data[: 4 + 4 * 255], path, len(data))
    return np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_end).reshape(
        shape
    ), None


def _check_finite(path, X, rows):
    """Raise if X holds NaN/inf, saying how many and where the first one is."""
    step = max(1, FINITE_CHECK_BYTES // (8 * X.shape[1]))
    count, first = 0, None
    for start in range(0, X.shape[0], step):
        bad = ~np.isfinite(X[start : start + step])
        found = int(np.count_nonzero(bad))
        if found and first is None:
            row, col = np.argwhere(bad)[0]
            first = (int(rows[start + row]), int(col))
        count += found
    if count:
        raise _fail(
            path,
            f"{count} value(s) are NaN or infinite; the first is at row {first[0]}, column "
            f"{first[1]} of the data flattened to (n, d) (0-based, rows as in the file)",
        )


#: Every integer up to this magnitude is a float64; beyond it, the cast drops low bits.
FLOAT64_EXACT_INTEGERS = 2**53


def _check_exact_in_float64(path, X):
    """Refuse integers beyond 2**53: their float64 cast loses the low bits, where the
    variance of data near 2**62 lies (int64 data near 2**62 would come out constant)."""
    if X.dtype.kind not in "iu" or X.dtype.itemsize < 8 or X.size == 0:
        return
    low, high = int(X.min()), int(X.max())
    extreme = high if high >= -low else low
    if abs(extreme) > FLOAT64_EXACT_INTEGERS:
        raise _fail(
            path,
            f"its {X.dtype} values reach {extreme:.4g}, beyond 2**53, where "
            "float64 no longer holds every integer and their variance would be lost; subtract "
            "an offset (their minimum) before saving, or stream the file with "
            "linvae.data.file_moments, which centres integers exactly",
        )


def load_file(path, n, seed, key):
    """``load(path)``: read, check, subset, flatten and scale a user file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy``, ``.npz`` or IDX file (see :data:`SUPPORTED_FILES`).
    n : int or None
        None keeps every example; an int takes a seeded random subset without replacement,
        kept in file order.
    seed : int
        Seed of the subset.
    key : str or None
        The array of a ``.npz`` archive; None picks the only one.

    Returns
    -------
    X : ndarray of shape (n, d)
        C-contiguous float64; uint8 values divided by 255, other types kept as values. A
        float64 C-order ``.npy`` read whole is returned as a read-only memory map.
    info : DatasetInfo
    """
    path = Path(os.fspath(path))
    kind = file_format(path)
    if kind is None:
        raise _fail(path, f"unknown file type; supported are {SUPPORTED_FILES}")
    if key is not None and kind != "npz":
        raise ValueError(f"key applies only to .npz archives, got key={key!r} for '{path}'")
    if key is not None and not isinstance(key, str):
        raise TypeError(f"key must be a str naming an array of '{path}', got {type(key).__name__}")
    if not path.exists():
        raise DataFileNotFoundError(errno.ENOENT, "no such data file", str(path))
    if path.is_dir():
        raise _fail(path, f"it is a directory, not a {kind} file")

    if kind == "npy":
        array, key = _read_npy(path)
    elif kind == "npz":
        array, key = _read_npz(path, key)
    else:
        array, key = _read_idx(path, gzipped=kind == "idx.gz")

    total, shape = array.shape[0], array.shape
    if n is None:
        rows, subset, seed_used = np.arange(total), f"all {total} examples", None
    else:
        rows = subset_rows(total, n, seed, f"'{path}'")
        subset, seed_used = f"{n} of {total} examples drawn without replacement (seed {seed})", seed
        array = array[rows]
    flat = array.reshape(array.shape[0], -1)
    _check_exact_in_float64(path, flat)
    if array.dtype == np.uint8:
        X = flat.astype(np.float64)
        X /= PIXEL_SCALE
        scale, values = PIXEL_SCALE, "uint8 values divided by 255"
    else:
        X = np.ascontiguousarray(flat, dtype=np.float64)
        scale, values = None, f"{array.dtype.name} values kept"
        if array.dtype.kind == "f":
            _check_finite(path, X, rows)
    member = "" if key is None else f", array {key!r}"
    info = DatasetInfo(
        name=path.name,
        n=X.shape[0],
        d=X.shape[1],
        source=str(path.resolve()),
        image_shape=tuple(int(size) for size in shape[1:]) if len(shape) > 2 else None,
        scale=scale,
        description=f"{kind} file{member} of shape {tuple(shape)}; {subset}; {values}.",
        seed=seed_used,
    )
    return X, info


def write_idx(path, array):
    """Write an array as an IDX file (MNIST's format), gzipped when ``path`` ends with .gz.

    The file is written atomically (:func:`linvae._io.atomic_write_bytes`): a reader never
    sees a partial file. :func:`linvae.data.load` recognises the names
    ``*-ubyte``, ``*.idx`` and the same with ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    array : array_like
        Of dtype uint8, int8, int16, int32, float32 or float64, with 1 to 255 dimensions,
        each below 2³¹.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``path`` is not a path or the dtype has no IDX type code.
    ValueError
        If ``array`` has 0 or more than 255 dimensions or a dimension of 2³¹ or more.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(os.fspath(path))
    array = np.asarray(array)
    code = IDX_CODES.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"array must have dtype uint8, int8, int16, int32, float32 or float64 to be "
            f"written as IDX, got {array.dtype}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array must have 1 to 255 dimensions for IDX, got shape {array.shape}")
    if max(array.shape) > IDX_MAX_DIM:
        raise ValueError(f"array dimensions must be below 2**31 for IDX, got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if path.name.lower().endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(path, payload)
    return path
