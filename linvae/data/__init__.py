"""Data sets as float64 (n, d) matrices; nothing is ever downloaded.

``load("digits")`` (the default), ``load("patches")`` and ``load("gaussian")`` read only
files that scikit-learn installs or draw synthetic data; ``load(path)`` reads the user's
``.npy``, ``.npz`` and MNIST IDX files (gzipped or not). No function here opens a network
connection: scikit-learn's ``fetch_*`` downloaders are never imported.
"""

from ._files import DataFileNotFoundError, write_idx
from ._gaussian import DEFAULT_GAUSSIAN_EIGVALS, gaussian_data
from ._info import DatasetInfo
from ._load import KNOWN_DATASETS, load
from ._stream import file_moments

__all__ = [
    "DEFAULT_GAUSSIAN_EIGVALS",
    "KNOWN_DATASETS",
    "DataFileNotFoundError",
    "DatasetInfo",
    "file_moments",
    "gaussian_data",
    "load",
    "write_idx",
]
