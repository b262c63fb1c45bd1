"""Loading datasets: data-folder look-up, real MNIST, limits, npz files, the `zspace data` CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from zspace.cli import main as cli_main
from zspace.data import load_dataset, resolve_data_dir
from zspace.data.idx import IMAGES_MAGIC, LABELS_MAGIC
from zspace.errors import DataError

# --- data folder look-up -------------------------------------------------------------------------


def test_data_dir_argument_wins(clean_env, tmp_path):
    clean_env.setenv("ZSPACE_DATA", str(tmp_path / "env"))
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_data_dir_env_then_cache(clean_env, tmp_path):
    clean_env.setenv("ZSPACE_DATA", str(tmp_path / "env"))
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "env"
    clean_env.delenv("ZSPACE_DATA")
    assert resolve_data_dir() == tmp_path / "xdg" / "zspace"
    clean_env.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "zspace"
    clean_env.delenv("XDG_CACHE_HOME")
    assert resolve_data_dir(None) == tmp_path / "home" / ".cache" / "zspace"


# --- real MNIST ----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -5, 2.5, True])
def test_bad_limit(limit, tmp_path):
    with pytest.raises(DataError, match="limit must be a positive integer"):
        load_dataset("mnist", data_dir=tmp_path, download=False, limit=limit)


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "zspace data --fetch fashion-mnist" in message and str(tmp_path) in message
    assert "\n" not in message


def test_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*mnist, fashion-mnist, kmnist"):
        load_dataset("cifar", data_dir=tmp_path)


def test_train_count_mismatch(write_idx, tmp_path):
    folder = tmp_path / "kmnist"
    write_idx(
        "train-images-idx3-ubyte.gz", IMAGES_MAGIC, (5, 28, 28), bytes(5 * 784), folder=folder
    )
    write_idx("train-labels-idx1-ubyte.gz", LABELS_MAGIC, (4,), bytes(4), folder=folder)
    write_idx("t10k-images-idx3-ubyte.gz", IMAGES_MAGIC, (2, 28, 28), bytes(2 * 784), folder=folder)
    write_idx("t10k-labels-idx1-ubyte.gz", LABELS_MAGIC, (2,), bytes(2), folder=folder)
    with pytest.raises(DataError, match=r"train images \(5\) and labels \(4\) differ in count"):
        load_dataset("kmnist", data_dir=tmp_path, download=False)


# --- npz -----------------------------------------------------------------------------------------


def _images(n):
    return np.random.default_rng(n).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_with_test_split(tmp_path):
    path = _save(
        tmp_path / "mine.npz",
        images=_images(8),
        labels=np.arange(8) % 10,
        test_images=_images(3),
        test_labels=np.array([1, 2, 3], dtype=np.int32),
    )
    data = load_dataset(str(path))
    assert data.train_images.shape == (8, 28, 28) and data.test_images.shape == (3, 28, 28)
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert data.test_labels.tolist() == [1, 2, 3]
    assert Path(data.name) == path.resolve()
    assert load_dataset(data.name) is data  # the name reloads it (from the cache)


def test_npz_holds_out_the_last_sixth(tmp_path):
    images, labels = _images(60), np.arange(60) % 10
    data = load_dataset(_save(tmp_path / "mine.npz", images=images, labels=labels), limit=20)
    full = load_dataset(tmp_path / "mine.npz")
    assert len(full.train_images) == 50 and len(full.test_images) == 10
    assert np.array_equal(full.test_images.numpy(), images[50:])
    assert full.test_labels.tolist() == labels[50:].tolist()
    assert len(data.train_images) == 20 and len(data.test_images) == 10


def test_npz_unlabelled(tmp_path):
    data = load_dataset(_save(tmp_path / "u.npz", images=_images(12)))
    assert data.train_labels is None and data.test_labels is None
    assert len(data.train_images) == 10 and len(data.test_images) == 2


def test_npz_reloads_after_change(tmp_path):
    path = _save(tmp_path / "c.npz", images=_images(12))
    assert len(load_dataset(path).train_images) == 10
    _save(path, images=_images(24))
    assert len(load_dataset(path).train_images) == 20


@pytest.mark.parametrize(
    ("arrays", "fragment"),
    [
        ({"images": _images(6).astype(np.float32)}, "dtype float32, expected uint8"),
        ({"images": np.zeros((6, 28, 29), np.uint8)}, "shape (6, 28, 29)"),
        ({"images": np.zeros((6, 784), np.uint8)}, "expected (N, 28, 28)"),
        ({"labels": np.zeros(6, np.int64)}, "no 'images' array"),
        ({"images": _images(6), "labels": np.zeros(5, np.int64)}, "5 entries but there are 6"),
        ({"images": _images(6), "labels": np.full(6, 10)}, "value 10 at index 0 is outside"),
        ({"images": _images(6), "labels": np.full(6, -1)}, "outside 0..9"),
        ({"images": _images(6), "labels": np.zeros(6, np.float64)}, "expected integers"),
        ({"images": _images(6), "labels": np.zeros((6, 1), int)}, "expected (N,)"),
        ({"images": _images(6), "extra": np.zeros(1)}, "unexpected arrays extra"),
        ({"images": _images(5)}, "too few to hold out"),
        ({"images": _images(6), "test_labels": np.zeros(1, int)}, "no 'test_images'"),
        (
            {"images": _images(6), "labels": np.zeros(6, int), "test_images": _images(2)},
            "both splits",
        ),
        ({"images": _images(6), "test_images": _images(0)}, "'test_images' is empty"),
    ],
)
def test_npz_validation(arrays, fragment, tmp_path):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    message = str(info.value)
    assert fragment in message and str(path) in message and "\n" not in message


def test_npz_not_a_zip_or_missing(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a valid .npz file"):
        load_dataset(path)
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "absent.npz")


def test_npz_refuses_pickles(tmp_path):
    path = _save(tmp_path / "p.npz", images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_dataset(path)


# --- CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    """`zspace` main with only the data command registered (other commands live elsewhere)."""
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ["zspace.cli.data_cmd"])
    return cli_main.main


def test_cli_bad_dataset_name(cli, capsys):
    assert cli(["data", "--verify", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("zspace data: error: unknown dataset 'nope'")
