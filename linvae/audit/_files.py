"""A model as a ``.npz`` of arrays: read and written with errors that name the file and key.

Keys (linvae's convention first, the ``nn.Linear`` one second; give one of each pair):

==================  ============  ==================================================
array               shape         meaning
==================  ============  ==================================================
``E``               (k, d)        encoder weight
``c`` / ``log_c``   (k,)          posterior variance, or its log (at x = 0)
``D``               (d, k)        decoder weight
``b``               (d,)          decoder bias; the data mean if absent
``t`` / ``e``       (k,)          encoder offset in ``E(x − m) + t``, or bias in ``E x + e``;
                                  ``t = 0`` if both are absent
``log_c_weight``    (k, d)        optional: log-variance linear in x, ``log_c_weight x + log_c``
==================  ============  ==================================================
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from linvae._checks import as_float_array

from ._model import AffineVAE, check_affine_vae

KEYS = ("E", "c", "log_c", "D", "b", "t", "e", "log_c_weight")


def _bad(path, message):
    return ValueError(f"{os.fspath(path)}: {message}")


def load_npz(path, mean):
    """The :class:`AffineVAE` stored in a ``.npz`` (see the module docstring for the keys).

    Parameters
    ----------
    path : str or os.PathLike
    mean : ndarray of shape (d,)
        The data mean, which resolves the defaults ``b = m`` and ``t`` (``e = t − E m``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is no ``.npz``, misses a key, has an unknown key, both keys of a pair, or
        arrays that do not fit together (the message names the file).
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise _bad(path, f"not a readable .npz archive ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _bad(path, "holds one array, not a .npz archive of named arrays")
    arrays = {}
    with archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError:  # numpy refuses object arrays with allow_pickle=False
                raise _bad(
                    path,
                    f"the array {key!r} holds Python objects (a pickle), which linvae does not "
                    "load",
                ) from None
    unknown = sorted(set(arrays) - set(KEYS))
    if unknown:
        raise _bad(path, f"unknown keys {unknown}; expected some of {list(KEYS)}")
    for key in ("E", "D"):
        if key not in arrays:
            raise _bad(path, f"missing the array {key!r}")
    for pair in (("c", "log_c"), ("t", "e")):
        if all(key in arrays for key in pair):
            raise _bad(path, f"give {pair[0]!r} or {pair[1]!r}, not both")
    if "c" not in arrays and "log_c" not in arrays:
        raise _bad(path, "missing the posterior variance: 'c' or 'log_c'")
    try:
        arrays = {key: as_float_array(value, key) for key, value in arrays.items()}
        E = arrays["E"]
        if E.ndim != 2:
            raise ValueError(f"E must have shape (k, d), got {E.shape}")
        k, d = E.shape
        if "c" in arrays:
            c = np.asarray(arrays["c"], dtype=np.float64)
            if np.any(c <= 0):
                raise ValueError("c must be > 0 (posterior variances)")
            log_c = np.log(c)
        else:
            log_c = np.asarray(arrays["log_c"], dtype=np.float64)
        mean = np.asarray(mean, dtype=np.float64)
        if mean.shape != (d,):
            raise ValueError(f"the model has d={d} but the data have d={mean.shape[0]}")
        if "e" in arrays:
            e = np.asarray(arrays["e"], dtype=np.float64)
        else:
            t = np.asarray(arrays.get("t", np.zeros(k)), dtype=np.float64)
            if t.shape != (k,):
                raise ValueError(f"t must have shape ({k},), got {t.shape}")
            e = t - E @ mean
        model = AffineVAE(
            E,
            e,
            log_c,
            arrays["D"],
            arrays.get("b", mean),
            arrays.get("log_c_weight"),
        )
        return check_affine_vae(model)
    except (TypeError, ValueError) as error:
        raise _bad(path, str(error)) from None


def save_npz(path, model):
    """Write an :class:`AffineVAE` as a ``.npz`` with the keys E, log_c, D, b, e (and log_c_weight)."""
    import io

    from linvae._io import atomic_write_bytes

    model = check_affine_vae(model)
    arrays = {
        "E": model.encoder_weight,
        "e": model.encoder_bias,
        "log_c": model.log_variance_bias,
        "D": model.decoder_weight,
        "b": model.decoder_bias,
    }
    if model.log_variance_weight is not None:
        arrays["log_c_weight"] = model.log_variance_weight
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
