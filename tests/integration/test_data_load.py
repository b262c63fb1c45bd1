"""Loading datasets: data-folder look-up, real MNIST, limits, npz files, the `zspace data` CLI."""

from __future__ import annotations

import shutil
import time

import pytest
import torch

from zspace.cli import main as cli_main
from zspace.data import Dataset, load_dataset
from zspace.errors import DataError


def _copy_mnist(mnist_dir, data_dir):
    """A writable copy of the shared MNIST folder (the original must stay untouched)."""
    shutil.copytree(mnist_dir / "mnist", data_dir / "mnist", copy_function=shutil.copyfile)
    (data_dir / "mnist").chmod(0o755)  # copytree copies the folder's read-only mode too
    return data_dir / "mnist"


# --- data folder look-up -------------------------------------------------------------------------


def test_env_var_finds_the_shared_copy(clean_env, mnist_dir):
    clean_env.setenv("ZSPACE_DATA", str(mnist_dir))
    assert load_dataset(download=False).name == "mnist"


# --- real MNIST ----------------------------------------------------------------------------------


def test_mnist_shapes_dtypes_and_ranges(mnist_dir):
    data = load_dataset("mnist", data_dir=mnist_dir, download=False)
    assert isinstance(data, Dataset) and data.num_classes == 10
    assert data.train_images.shape == (60000, 28, 28)
    assert data.test_images.shape == (10000, 28, 28)
    assert data.train_images.dtype == data.test_images.dtype == torch.uint8
    assert data.train_labels.shape == (60000,) and data.test_labels.shape == (10000,)
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert set(data.train_labels.unique().tolist()) == set(range(10))
    assert int(data.train_images.max()) == 255 and int(data.train_images.min()) == 0
    # Light digit on dark background: most pixels are 0.
    assert float(data.train_images.float().mean()) < 50
    assert data.train_labels[:5].tolist() == [5, 0, 4, 1, 9]


def test_second_load_is_cached(mnist_dir):
    first = load_dataset("mnist", data_dir=mnist_dir, download=False)
    start = time.perf_counter()
    second = load_dataset("MNIST", data_dir=str(mnist_dir), download=False)
    assert time.perf_counter() - start < 0.2
    assert second.train_images is first.train_images


def test_limit(mnist_dir):
    full = load_dataset("mnist", data_dir=mnist_dir, download=False)
    data = load_dataset("mnist", data_dir=mnist_dir, download=False, limit=100)
    assert data.train_images.shape == (100, 28, 28) and data.train_labels.shape == (100,)
    assert torch.equal(data.train_images, full.train_images[:100])
    assert data.test_images.shape == (10000, 28, 28)
    big = load_dataset("mnist", data_dir=mnist_dir, download=False, limit=10**9)
    assert len(big.train_images) == 60000


def test_corrupt_local_file_names_the_file(mnist_dir, tmp_path):
    folder = _copy_mnist(mnist_dir, tmp_path)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: corrupt gzip"):
        load_dataset("mnist", data_dir=tmp_path, download=False)


# --- npz -----------------------------------------------------------------------------------------


# --- CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    """`zspace` main with only the data command registered (other commands live elsewhere)."""
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ["zspace.cli.data_cmd"])
    return cli_main.main


def test_cli_lists_datasets(cli, mnist_dir, capsys):
    assert cli(["data", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "fashion-mnist", "kmnist"):
        assert name in out
    assert str(mnist_dir / "mnist") in out and "missing" in out
    assert "MNIST handwritten digits" in out
    assert any(
        line.startswith("mnist ") and ("present" in line or "verified" in line)
        for line in out.splitlines()
    )


def test_cli_verify(cli, mnist_dir, tmp_path, capsys):
    folder = _copy_mnist(mnist_dir, tmp_path)
    assert cli(["data", "--verify", "mnist", "--data-dir", str(tmp_path)]) == 0
    assert "all 4 files verified" in capsys.readouterr().out
    assert cli(["data", "--data-dir", str(tmp_path)]) == 0
    assert "mnist          verified" in capsys.readouterr().out

    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    assert cli(["data", "--verify", "mnist", "--data-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "t10k-labels-idx1-ubyte.gz" in captured.out and "corrupt" in captured.out
    assert captured.err.count("\n") == 1 and "zspace data --fetch mnist" in captured.err
    # The listing does not hash: a changed file just loses its "verified" mark.
    assert cli(["data", "--data-dir", str(tmp_path)]) == 0
    assert "mnist          present" in capsys.readouterr().out


def test_verify_leaves_a_read_only_folder_alone(cli, mnist_dir, tmp_path, capsys):
    folder = _copy_mnist(mnist_dir, tmp_path)
    folder.chmod(0o555)
    try:
        assert cli(["data", "--verify", "mnist", "--data-dir", str(tmp_path)]) == 0
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            p.name for p in (mnist_dir / "mnist").iterdir()
        )
    finally:
        folder.chmod(0o755)
