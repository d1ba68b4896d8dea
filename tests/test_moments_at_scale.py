"""Moments streamed from files, on a torch device, and from dask arrays, against numpy in float64."""

import gzip
import sys
import tracemalloc

import numpy as np
import pytest

from linvae.analytic import moments
from linvae.data import file_moments, load, write_idx


def reference_moments(X):
    """Two-pass centred moments in float64, written independently of linvae."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    centred = X - mean
    return mean, centred.T @ centred / X.shape[0]


def assert_moments_equal(stats, mean, cov, rtol=1e-12):
    scale = np.abs(cov).max()
    np.testing.assert_allclose(stats.mean, mean, rtol=rtol, atol=rtol * np.abs(mean).max())
    np.testing.assert_allclose(stats.cov, cov, rtol=0, atol=rtol * scale)


@pytest.fixture
def images():
    """uint8 images of shape (300, 5, 4), as MNIST stores them."""
    return np.random.default_rng(0).integers(0, 256, size=(300, 5, 4), dtype=np.uint8)


@pytest.mark.parametrize("name", ["x-ubyte", "x-ubyte.gz", "x.npy"])
def test_file_moments_equal_those_of_the_loaded_data(tmp_path, images, name):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, images)
    else:
        write_idx(path, images)
    X, _ = load(path)  # uint8 → /255, flattened
    stats = file_moments(path, chunk_size=7)
    assert stats.n == 300
    assert_moments_equal(stats, *reference_moments(X))


def test_float32_npy_is_kept_as_values(tmp_path):
    X = (np.random.default_rng(1).standard_normal((500, 6)) * 3 + 10).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert_moments_equal(file_moments(tmp_path / "x.npy", chunk_size=64), *reference_moments(X))


def test_streaming_does_not_load_the_file(tmp_path):
    # 40,000 × 64 float32 = 10 MB on disk; a chunk of 500 rows is 256 kB in float64.
    X = np.random.default_rng(2).standard_normal((40_000, 64)).astype(np.float32)
    np.save(tmp_path / "big.npy", X)
    del X
    tracemalloc.start()
    file_moments(tmp_path / "big.npy", chunk_size=500)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2_000_000, f"peak {peak} bytes: the file was loaded rather than streamed"


def test_progress_reports_every_chunk_up_to_the_total(tmp_path, images):
    write_idx(tmp_path / "x-ubyte", images)
    calls = []
    file_moments(
        tmp_path / "x-ubyte",
        chunk_size=128,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(128, 300), (256, 300), (300, 300)]


def test_progress_bar_is_drawn_on_stderr_on_a_terminal(tmp_path, images, capsys, monkeypatch):
    write_idx(tmp_path / "x-ubyte", images)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    file_moments(tmp_path / "x-ubyte", progress=True)
    assert "300/300" in capsys.readouterr().err
    monkeypatch.undo()
    file_moments(tmp_path / "x-ubyte", progress=True)  # not a terminal: silent
    assert capsys.readouterr().err == ""


def test_truncated_gzip_stream_is_named(tmp_path, images):
    path = tmp_path / "x-ubyte.gz"
    write_idx(tmp_path / "plain-ubyte", images)
    raw = (tmp_path / "plain-ubyte").read_bytes()
    path.write_bytes(gzip.compress(raw[:-30]))
    with pytest.raises(ValueError, match=r"x-ubyte.gz.*truncated"):
        file_moments(path)


def test_trailing_bytes_in_a_gzip_stream_are_named(tmp_path, images):
    write_idx(tmp_path / "plain-ubyte", images)
    raw = (tmp_path / "plain-ubyte").read_bytes()
    (tmp_path / "x-ubyte.gz").write_bytes(gzip.compress(raw + b"\x00\x01"))
    with pytest.raises(ValueError, match=r"x-ubyte.gz.*bytes follow the data"):
        file_moments(tmp_path / "x-ubyte.gz")


def test_npz_and_unknown_files_are_refused_with_their_names(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"x.npz.*cannot be streamed"):
        file_moments(tmp_path / "x.npz")
    (tmp_path / "x.txt").write_text("1 2")
    with pytest.raises(ValueError, match=r"x.txt.*unknown file type"):
        file_moments(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match="nothere.npy"):
        file_moments(tmp_path / "nothere.npy")


def test_torch_accumulation_equals_numpy_on_the_cpu():
    X = np.random.default_rng(3).standard_normal((1000, 7)) + 1e4
    a = moments(X, chunk_size=33)
    b = moments(X, chunk_size=33, device="cpu")
    assert_moments_equal(b, a.mean, a.cov)
    assert b.mean.dtype == b.cov.dtype == np.float64


def test_nan_is_found_by_the_torch_path_too():
    X = np.zeros((10, 3))
    X[7, 2] = np.nan
    with pytest.raises(ValueError, match="X must be finite, got nan at row 7, column 2"):
        moments(X, chunk_size=4, device="cpu")


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="device must be"):
        moments(np.zeros((3, 2)), device="tpu")


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_dask_arrays_are_reduced_out_of_core(scheduler):
    da = pytest.importorskip("dask.array")
    import dask

    X = np.random.default_rng(4).standard_normal((1003, 9)) * 2 + 50
    lazy = da.from_array(X, chunks=(100, 4))  # column blocks too: moments rechunks them
    with dask.config.set(scheduler=scheduler):
        stats = moments(lazy)
    assert stats.n == 1003
    assert_moments_equal(stats, *reference_moments(X))


def test_dask_nan_is_reported():
    da = pytest.importorskip("dask.array")
    X = np.zeros((20, 2))
    X[13, 1] = np.inf
    with pytest.raises(ValueError, match="X must be finite"):
        moments(da.from_array(X, chunks=(5, 2)))


@pytest.mark.gpu
def test_cuda_accumulation_equals_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X = np.random.default_rng(5).standard_normal((100_000, 64)).astype(np.float32) + 3
    a = moments(X)
    b = moments(X, device="cuda")
    assert_moments_equal(b, a.mean, a.cov)


def test_spectrum_through_torch_equals_lapack():
    from linvae.analytic import spectrum

    rng = np.random.default_rng(6)
    A = rng.standard_normal((40, 40))
    cov = A @ A.T
    a, b = spectrum(cov), spectrum(cov, device="cpu")
    np.testing.assert_allclose(b.eigvals, a.eigvals, rtol=0, atol=1e-12 * a.eigvals[0])
    # eigenvectors agree up to sign: compare the projectors
    np.testing.assert_allclose(np.abs(np.sum(a.eigvecs * b.eigvecs, axis=0)), 1.0, atol=1e-9)


@pytest.mark.gpu
def test_spectrum_on_cuda_equals_lapack():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from linvae.analytic import spectrum

    A = np.random.default_rng(7).standard_normal((500, 500))
    cov = A @ A.T
    a, b = spectrum(cov), spectrum(cov, device="cuda")
    np.testing.assert_allclose(b.eigvals, a.eigvals, rtol=0, atol=1e-11 * a.eigvals[0])
