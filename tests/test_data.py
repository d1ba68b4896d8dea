"""Tests of linvae.data: the embedded data sets, the exact Gaussian, file round trips, errors.

Reference values come from the formats' definitions (the IDX layout of the MNIST page,
scikit-learn's documented digits: 8×8 images with integer pixels 0..16) or are computed
here independently of the module (numpy's own covariance, a hand-packed IDX header).
"""

import gzip
import json
import re
import socket
import struct
import tempfile
from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import finite_matrices, idx_arrays, spectra_with_ties

import linvae.data
from linvae.data import (
    DEFAULT_GAUSSIAN_EIGVALS,
    DataFileNotFoundError,
    DatasetInfo,
    gaussian_data,
    load,
    write_idx,
)

EPS = np.finfo(np.float64).eps


def names_file(path):
    """A ``match=`` pattern that requires the message to name ``path``."""
    return re.escape(str(path))


def assert_json_builtins(info):
    """to_dict() holds only builtins and survives a JSON round trip unchanged."""
    record = info.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert set(record) == {
        "name",
        "n",
        "d",
        "source",
        "image_shape",
        "scale",
        "description",
        "seed",
        "eigvals",
    }


def ml_covariance(X):
    """The maximum-likelihood covariance (divide by n) with numpy's own np.cov."""
    return np.cov(X, rowvar=False, bias=True).reshape(X.shape[1], X.shape[1])


# ---------------------------------------------------------------------------------------
# digits


def test_digits_is_the_whole_set_scaled_into_unit_interval():
    X, info = load()
    # scikit-learn documents 1,797 images of 8×8 pixels with integer values 0..16.
    assert X.shape == (1797, 64)
    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    assert X.min() == 0.0
    assert X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # multiples of 1/16 exactly
    assert (info.name, info.n, info.d, info.image_shape, info.scale) == (
        "digits",
        1797,
        64,
        (8, 8),
        16.0,
    )
    assert info.seed is None


def test_digits_keeps_the_constant_zero_pixels():
    X, _ = load("digits")
    # The top-left pixel is blank in every digit: the rank deficiency the analytic code must handle.
    np.testing.assert_array_equal(X[:, 0], 0.0)


def test_digits_subset_is_seeded_without_replacement_in_original_order():
    full, _ = load("digits")
    X, info = load("digits", n=100, seed=7)
    rows = [int(np.flatnonzero((full == row).all(axis=1))[0]) for row in X]
    assert X.shape == (100, 64)
    assert len(set(rows)) == 100
    assert rows == sorted(rows)
    np.testing.assert_array_equal(load("digits", n=100, seed=7)[0], X)
    assert not np.array_equal(load("digits", n=100, seed=8)[0], X)
    assert info.seed == 7
    assert_json_builtins(info)


def test_digits_subset_larger_than_the_set_is_rejected():
    with pytest.raises(ValueError, match="n=1798 exceeds the 1797 examples"):
        load("digits", n=1798)


# ---------------------------------------------------------------------------------------
# patches


def luminance_photographs():
    """The photographs as BT.601 luminance in [0, 1], in floating point (independent path)."""
    from sklearn.datasets import load_sample_images

    return [image @ np.array([0.299, 0.587, 0.114]) / 255 for image in load_sample_images().images]


def test_patches_default_size_and_range():
    X, info = load("patches", n=10)
    assert X.shape == (10, 28 * 28)
    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert (info.n, info.d, info.image_shape, info.scale) == (10, 784, (28, 28), 255.0)
    assert_json_builtins(info)


def test_patches_are_squares_cut_from_the_photographs():
    X, _ = load("patches", n=5, patch_size=6, seed=3)
    windows = [
        np.lib.stride_tricks.sliding_window_view(gray, (6, 6)) for gray in luminance_photographs()
    ]
    for patch in X.reshape(5, 6, 6):
        # float weights vs the module's integer per-mille weights differ only by round-off
        found = any(
            np.isclose(w, patch, rtol=0, atol=1e-12).all(axis=(2, 3)).any() for w in windows
        )
        assert found


def test_patches_are_reproducible_by_seed():
    first, _ = load("patches", n=40, patch_size=8, seed=11)
    again, _ = load("patches", n=40, patch_size=8, seed=11)
    other, _ = load("patches", n=40, patch_size=8, seed=12)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_patches_draw_half_from_each_photograph():
    _, info = load("patches", n=7, patch_size=4)
    assert "4 from china.jpg and 3 from flower.jpg" in info.description


@pytest.mark.parametrize(
    ("patch_size", "error", "message"),
    [
        (428, ValueError, "patch_size=428 exceeds the smaller side of the photographs \\(427\\)"),
        (0, ValueError, "patch_size must be >= 1, got 0"),
        (2.5, TypeError, "patch_size must be an integer, got float"),
    ],
)
def test_patches_reject_bad_patch_size(patch_size, error, message):
    with pytest.raises(error, match=message):
        load("patches", n=4, patch_size=patch_size)


def test_patches_reject_more_patches_than_positions():
    # 427x640 with 427x427 patches leaves 1 x 214 positions per photograph.
    with pytest.raises(ValueError, match="has only 214 distinct 427x427 positions"):
        load("patches", n=430, patch_size=427)


# ---------------------------------------------------------------------------------------
# gaussian


@given(
    eigvals=spectra_with_ties(min_dim=1, max_dim=8),
    extra=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
    shuffle=st.randoms(use_true_random=False),
    data=st.data(),
)
def test_gaussian_sample_moments_are_exact(eigvals, extra, seed, shuffle, data):
    d = eigvals.shape[0]
    order = list(range(d))
    shuffle.shuffle(order)
    eigvals = eigvals[order]  # any order: column i of V belongs to eigvals[i]
    mean = data.draw(finite_matrices((d,)))
    n = d + 1 + extra  # d + 1 is the smallest n allowed
    X, V = gaussian_data(n, eigvals, mean=mean, seed=seed)
    assert X.shape == (n, d) and X.flags.c_contiguous
    np.testing.assert_allclose(V.T @ V, np.eye(d), rtol=0, atol=1e-14)
    largest = eigvals.max()
    # Adding μ rounds each entry by δ ≈ eps·|μ|; that perturbs the covariance by about
    # δ·√λ + δ² (the δ² alone when every λ is 0). Beyond that the identity holds to 1e-12 of
    # the largest eigenvalue.
    rounding = 64 * EPS * np.abs(mean).max()
    np.testing.assert_allclose(
        ml_covariance(X),
        (V * eigvals) @ V.T,
        rtol=0,
        atol=1e-12 * largest + rounding * np.sqrt(largest) + rounding**2,
    )
    np.testing.assert_allclose(
        X.mean(axis=0), mean, rtol=0, atol=64 * EPS * (np.abs(mean).max() + np.sqrt(n * largest))
    )


def test_gaussian_default_spectrum_is_recovered_by_an_eigendecomposition():
    X, info = load("gaussian")
    reference = np.geomspace(10.0, 0.01, 16)  # the documented default: 10 down to 0.01
    np.testing.assert_allclose(DEFAULT_GAUSSIAN_EIGVALS, reference, rtol=1e-14)
    assert X.shape == (1000, 16)
    assert info.eigvals == tuple(DEFAULT_GAUSSIAN_EIGVALS)
    measured = np.linalg.eigvalsh(ml_covariance(X))[::-1]
    np.testing.assert_allclose(measured, reference, rtol=1e-12, atol=1e-12 * 10.0)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, rtol=0, atol=1e-14)
    assert_json_builtins(info)


def test_gaussian_load_matches_gaussian_data_and_keeps_the_mean():
    eigvals, mean = np.array([4.0, 4.0, 0.0]), np.array([1.0, -2.0, 3.0])
    X, info = load("gaussian", n=50, seed=5, eigvals=eigvals, mean=mean)
    expected, _ = gaussian_data(50, eigvals, mean=mean, seed=5)
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_allclose(X.mean(axis=0), mean, rtol=1e-14)
    assert (info.n, info.d, info.eigvals, info.seed) == (50, 3, (4.0, 4.0, 0.0), 5)
    assert not np.array_equal(load("gaussian", n=50, seed=6, eigvals=eigvals)[0], X - mean)


def test_gaussian_needs_more_examples_than_dimensions():
    with pytest.raises(ValueError, match=r"n must be at least d \+ 1 = 5 .* got n=4"):
        load("gaussian", n=4, eigvals=[1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eigvals": [1.0, -1.0]}, ValueError, "eigvals must be >= 0, got -1.0"),
        ({"eigvals": [1.0, np.nan]}, ValueError, "eigvals must be finite"),
        ({"eigvals": [[1.0]]}, ValueError, "eigvals must be a non-empty 1-D array"),
        ({"eigvals": []}, ValueError, "eigvals must be a non-empty 1-D array"),
        ({"eigvals": "1 2"}, TypeError, "eigvals must be an array of real numbers"),
        ({"eigvals": [1.0, 2.0], "mean": [0.0]}, ValueError, r"mean must have shape \(2,\)"),
        ({"eigvals": [1.0], "mean": [np.inf]}, ValueError, "mean must be finite"),
    ],
)
def test_gaussian_rejects_bad_spectrum_or_mean(kwargs, error, message):
    with pytest.raises(error, match=message):
        load("gaussian", n=10, **kwargs)


# ---------------------------------------------------------------------------------------
# user files: round trips


def test_npy_float_round_trip_is_a_read_only_view(tmp_path):
    values = np.random.default_rng(0).standard_normal((5, 3))
    path = tmp_path / "x.npy"
    np.save(path, values)
    X, info = load(path)
    np.testing.assert_array_equal(X, values)
    assert X.dtype == np.float64 and X.flags.c_contiguous and not X.flags.writeable
    assert (info.name, info.n, info.d, info.scale, info.image_shape) == ("x.npy", 5, 3, None, None)
    assert info.source == str(path.resolve())
    assert_json_builtins(info)


def test_npy_uint8_images_are_flattened_and_scaled(tmp_path):
    images = np.arange(4 * 2 * 3 * 3, dtype=np.uint8).reshape(4, 2, 3, 3)
    path = tmp_path / "images.npy"
    np.save(path, images)
    X, info = load(str(path))
    np.testing.assert_array_equal(X, images.reshape(4, 18) / 255.0)
    assert (info.image_shape, info.scale) == ((2, 3, 3), 255.0)


def test_npy_float32_values_are_kept(tmp_path):
    values = np.array([[0.1, 300.0], [-2.5, 1e-30]], dtype=np.float32)
    path = tmp_path / "f.npy"
    np.save(path, values)
    X, info = load(path)
    np.testing.assert_array_equal(X, values.astype(np.float64))
    assert info.scale is None


def test_file_subset_is_seeded_and_in_file_order(tmp_path):
    values = np.arange(20.0).reshape(10, 2)  # row i starts with 2i
    path = tmp_path / "rows.npy"
    np.save(path, values)
    X, info = load(path, n=4, seed=1)
    rows = (X[:, 0] / 2).astype(int)
    np.testing.assert_array_equal(X, values[rows])
    assert len(set(rows)) == 4 and list(rows) == sorted(rows)
    np.testing.assert_array_equal(load(path, n=4, seed=1)[0], X)
    assert info.seed == 1
    with pytest.raises(ValueError, match=f"n=11 exceeds the 10 examples of '{names_file(path)}'"):
        load(path, n=11)


def test_npz_named_array(tmp_path):
    path = tmp_path / "pair.npz"
    a, b = np.ones((3, 2)), np.arange(8.0).reshape(2, 4)
    np.savez(path, a=a, b=b)
    X, info = load(path, key="b")
    np.testing.assert_array_equal(X, b)
    assert "'b'" in info.description


def test_npz_single_array_is_the_default(tmp_path):
    path = tmp_path / "one.npz"
    values = np.arange(6, dtype=np.uint8).reshape(3, 2)
    np.savez_compressed(path, only=values)
    X, info = load(path)
    np.testing.assert_array_equal(X, values / 255.0)
    assert info.scale == 255.0


def test_npz_with_several_arrays_needs_a_key(tmp_path):
    path = tmp_path / "pair.npz"
    np.savez(path, a=np.ones((3, 2)), b=np.ones((3, 2)))
    with pytest.raises(ValueError, match=names_file(path) + ".*2 arrays \\('a', 'b'\\).*key="):
        load(path)


def test_npz_unknown_key_lists_the_arrays(tmp_path):
    path = tmp_path / "pair.npz"
    np.savez(path, a=np.ones((3, 2)), b=np.ones((3, 2)))
    with pytest.raises(ValueError, match=names_file(path) + ".*no array named 'c'.*'a', 'b'"):
        load(path, key="c")


def test_write_idx_writes_the_mnist_layout(tmp_path):
    path = tmp_path / "small-ubyte"
    write_idx(path, np.array([[1, 2, 3], [250, 251, 252]], dtype=np.uint8))
    # magic 0x00000802 (unsigned byte, 2 dims), then big-endian int32 sizes 2 and 3, then data
    expected = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 252])
    assert path.read_bytes() == expected


def test_idx_written_by_hand_is_read_big_endian(tmp_path):
    path = tmp_path / "hand.idx"
    values = [[-300, 2], [7, 32767]]
    path.write_bytes(bytes([0, 0, 0x0B, 2]) + struct.pack(">2I4h", 2, 2, -300, 2, 7, 32767))
    X, info = load(path)
    np.testing.assert_array_equal(X, np.array(values, dtype=np.float64))
    assert info.scale is None


@given(array=idx_arrays(), gzipped=st.booleans())
def test_idx_round_trip_is_exact(array, gzipped):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("data-ubyte.gz" if gzipped else "data-ubyte")
        write_idx(path, array)
        X, info = load(path)
        flat = array.reshape(array.shape[0], -1).astype(np.float64)
        if array.dtype == np.uint8:
            np.testing.assert_array_equal(X, flat / 255.0)
            assert info.scale == 255.0
        else:
            np.testing.assert_array_equal(X, flat)
            assert info.scale is None
        assert info.image_shape == (array.shape[1:] if array.ndim > 2 else None)
        assert [p.name for p in Path(folder).iterdir()] == [path.name]  # no temporary left


def test_gzipped_idx_is_really_gzip(tmp_path):
    path = tmp_path / "images.idx.gz"
    images = np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2)
    write_idx(path, images)
    assert gzip.decompress(path.read_bytes())[:4] == bytes([0, 0, 8, 3])
    X, info = load(path)
    np.testing.assert_array_equal(X, images.reshape(2, 4) / 255.0)
    assert info.image_shape == (2, 2)


def test_write_idx_leaves_nothing_when_the_rename_fails(tmp_path, monkeypatch):
    def refuse(source, destination):
        raise OSError("rename refused")

    monkeypatch.setattr(linvae.data._files.os, "replace", refuse)
    with pytest.raises(OSError, match="rename refused"):
        write_idx(tmp_path / "x-ubyte", np.zeros((2, 2), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (np.zeros((2, 2), dtype=np.int64), TypeError, "got int64"),
        (np.zeros((2, 2), dtype=np.uint16), TypeError, "got uint16"),
        (np.float64(1.0), ValueError, r"1 to 255 dimensions for IDX, got shape \(\)"),
    ],
)
def test_write_idx_rejects_what_idx_cannot_store(tmp_path, array, error, message):
    with pytest.raises(error, match=message):
        write_idx(tmp_path / "x-ubyte", array)


# ---------------------------------------------------------------------------------------
# user files: each fault names the file


def test_missing_file(tmp_path):
    path = tmp_path / "absent.npy"
    with pytest.raises(ValueError, match=names_file(path)) as caught:
        load(path)
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, DataFileNotFoundError)


def test_unknown_extension_lists_the_supported_ones(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=names_file(path) + ".*unknown file type.*.npy, .npz"):
        load(path)


def test_directory_is_rejected(tmp_path):
    path = tmp_path / "folder.npy"
    path.mkdir()
    with pytest.raises(ValueError, match=names_file(path) + ".*is a directory"):
        load(path)


@pytest.mark.parametrize(
    "magic", [bytes([0, 1, 8, 2]), bytes([1, 0, 8, 2]), bytes([0, 0, 0x07, 2])]
)
def test_idx_wrong_magic_number(tmp_path, magic):
    path = tmp_path / "bad-ubyte"
    path.write_bytes(magic + struct.pack(">2I", 2, 2) + bytes(4))
    shown = f"0x{int.from_bytes(magic, 'big'):08X}"
    with pytest.raises(ValueError, match=names_file(path) + f".*wrong IDX magic number {shown}"):
        load(path)


def test_idx_truncated_data(tmp_path):
    path = tmp_path / "short-ubyte"
    path.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">2I", 3, 4) + bytes(11))
    with pytest.raises(ValueError, match=names_file(path) + ".*truncated.*promises 12 bytes"):
        load(path)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "short.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">2I", 3, 4))
    with pytest.raises(ValueError, match=names_file(path) + ".*header is truncated"):
        load(path)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long-ubyte"
    path.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">2I", 2, 2) + bytes(5))
    with pytest.raises(ValueError, match=names_file(path) + ".*1 bytes follow the 4 bytes"):
        load(path)


def test_gzipped_idx_truncated(tmp_path):
    path = tmp_path / "cut-ubyte.gz"
    write_idx(path, np.zeros((50, 50), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=names_file(path) + ".*not a valid gzip file"):
        load(path)


def test_npy_truncated_data(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((4, 3)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=names_file(path) + ".*truncated.*promises 96 bytes"):
        load(path)


def test_npy_that_is_no_npy(tmp_path):
    path = tmp_path / "text.npy"
    path.write_text("not an array")
    with pytest.raises(ValueError, match=names_file(path) + ".*not a valid .npy file"):
        load(path)


def test_npz_that_is_no_archive(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not an archive")
    with pytest.raises(ValueError, match=names_file(path) + ".*not a valid .npz archive"):
        load(path)


@pytest.mark.parametrize(
    "values",
    [
        np.array([["a", "b"], ["c", "d"]]),
        np.array([[1, None], [2, 3]], dtype=object),
        np.ones((2, 2), dtype=np.complex128),
    ],
)
def test_npy_non_numeric(tmp_path, values):
    path = tmp_path / "words.npy"
    np.save(path, values, allow_pickle=True)
    with pytest.raises(
        ValueError, match=names_file(path) + f".*not numeric \\(dtype {values.dtype}"
    ):
        load(path)


def test_npz_non_numeric(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([[1, None], [2, 3]], dtype=object))
    with pytest.raises(ValueError, match=names_file(path) + ".*not numeric \\(dtype object"):
        load(path)


def test_nan_and_inf_are_counted_and_located(tmp_path):
    values = np.ones((5, 3))
    values[2, 1], values[4, 0], values[4, 2] = np.nan, np.inf, -np.inf
    path = tmp_path / "holes.npy"
    np.save(path, values)
    with pytest.raises(ValueError, match=names_file(path) + ".*3 value.*row 2, column 1"):
        load(path)


def test_nan_in_idx_images_is_located_in_flattened_coordinates(tmp_path):
    values = np.zeros((3, 2, 2), dtype=np.float32)
    values[1, 1, 0] = np.nan  # row 1, column 1·2 + 0 = 2 once flattened
    path = tmp_path / "holes.idx"
    write_idx(path, values)
    with pytest.raises(ValueError, match=names_file(path) + ".*1 value.*row 1, column 2"):
        load(path)


@pytest.mark.parametrize("shape", [(1, 5), (0, 5), (1, 2, 2)])
def test_fewer_than_two_examples(tmp_path, shape):
    path = tmp_path / "lonely.npy"
    np.save(path, np.zeros(shape))
    with pytest.raises(ValueError, match=names_file(path) + ".*at least two are needed"):
        load(path)


def test_idx_with_one_example(tmp_path):
    path = tmp_path / "one-ubyte"
    write_idx(path, np.zeros((1, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=names_file(path) + ".*1 example.*at least two"):
        load(path)


@pytest.mark.parametrize("shape", [(5,), ()])
def test_npy_not_flattenable(tmp_path, shape):
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros(shape))
    with pytest.raises(ValueError, match=names_file(path) + ".*cannot be flattened to \\(n, d\\)"):
        load(path)


def test_idx_labels_are_not_flattenable(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.arange(10, dtype=np.uint8))
    with pytest.raises(
        ValueError, match=names_file(path) + ".*shape \\(10,\\) cannot be flattened"
    ):
        load(path)


def test_examples_without_values(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((3, 0)))
    with pytest.raises(ValueError, match=names_file(path) + ".*hold no values"):
        load(path)


# ---------------------------------------------------------------------------------------
# options and names


def test_unknown_data_set_name_lists_the_known_ones():
    with pytest.raises(
        ValueError, match="unknown data set name 'mnist'; known are digits, patches"
    ):
        load("mnist")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 1}, ValueError, "n must be >= 2"),
        ({"n": 10.0}, TypeError, "n must be an integer or None, got float"),
        ({"n": True}, TypeError, "n must be an integer or None, got bool"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        ({"seed": "0"}, TypeError, "seed must be an integer, got str"),
        ({"eigvals": [1.0]}, ValueError, "eigvals applies only to the 'gaussian' data set"),
        ({"mean": [0.0]}, ValueError, "mean applies only to the 'gaussian' data set"),
        ({"key": "x"}, ValueError, "key applies only to .npz files"),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        load("digits", **kwargs)


def test_key_for_a_file_that_is_no_archive(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="key applies only to .npz archives.*" + names_file(path)):
        load(path, key="x")


def test_name_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"name must be a data set name or a file path.*got int"):
        load(3)


def test_info_is_frozen():
    info = DatasetInfo("x", 2, 1, "synthetic", None, None, "two points")
    with pytest.raises(FrozenInstanceError):
        info.n = 3


def test_nothing_is_downloaded(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("linvae.data tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert load("digits", n=10)[0].shape == (10, 64)
    assert load("patches", n=4, patch_size=3)[0].shape == (4, 9)
    assert load("gaussian", n=20)[0].shape == (20, 16)
