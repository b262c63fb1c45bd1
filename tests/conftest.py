"""Shared test fixtures: where MNIST lives (the CLI's own look-up), and a writer for small IDX
files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from zspace.data import resolve_data_dir

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The data folder that holds ``mnist/`` with the four MNIST files (pass it as `data_dir`):
    where the CLI looks too, ``$ZSPACE_DATA`` else ``~/.cache/zspace``. Read-only: copy files to
    tmp_path before changing them.

    Without MNIST the test fails with one line that says how to get it, never skips: a run
    that silently skipped every MNIST test would look green."""
    root = resolve_data_dir()
    missing = [name for name in MNIST_FILES if not (root / "mnist" / name).is_file()]
    if missing:
        pytest.fail(
            f"MNIST is not in {root / 'mnist'}: run `zspace data --fetch mnist` once, or set "
            "ZSPACE_DATA to a folder that holds mnist/",
            pytrace=False,
        )
    return root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No ZSPACE_DATA or XDG_CACHE_HOME, and an empty HOME: the data look-up from scratch."""
    monkeypatch.delenv("ZSPACE_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def build_idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """Raw (uncompressed) IDX bytes: magic number, big-endian dims, payload."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


@pytest.fixture
def write_idx(tmp_path):
    """Returns ``write(name, magic, dims, payload, compress=True, folder=tmp_path) -> Path``, which
    writes a (by default gzipped) IDX file whose header and payload may disagree on purpose."""

    def write(name, magic, dims, payload, compress=True, folder=None):
        path = Path(folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = build_idx(magic, dims, bytes(payload))
        path.write_bytes(gzip.compress(data) if compress else data)
        return path

    return write


@pytest.fixture(scope="session")
def small_ae_run(mnist_dir, tmp_path_factory) -> Path:
    """A conv autoencoder trained briefly on 10,000 MNIST images (about 10 s; test MSE near
    0.008), shared by the tests of everything built on an autoencoder. Treat it as read-only."""
    from zspace.training.autoencoder import AETrainingConfig, train_autoencoder

    out = tmp_path_factory.mktemp("ae") / "run"
    train_autoencoder(
        out,
        training=AETrainingConfig(limit=10_000, epochs=3, batch_size=64, seed=0),
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def web_cgan_run(small_ae_run, mnist_dir, tmp_path_factory) -> Path:
    """A tiny conditional latent GAN (2 epochs on 3,000 codes of `small_ae_run`, about 2 s, and
    a briefly fitted noise inverter, about 2 s) for the web server's tests. Its samples are
    rough digits; treat it as read-only."""
    from zspace.models.gan import config_for_preset
    from zspace.training.gan import GANTrainingConfig, train_gan

    out = tmp_path_factory.mktemp("cgan") / "run"
    train_gan(
        out,
        config_for_preset("reference", data_dim=64, conditional=True),
        GANTrainingConfig.for_preset(
            "reference", limit=3000, epochs=2, seed=0, monitor_samples=0, inverter_steps=100
        ),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out


@pytest.fixture
def kill_after_checkpoint(monkeypatch):
    """A context manager: inside `with kill_after_checkpoint(epoch=1, match="")`, training
    raises KeyboardInterrupt right after writing the checkpoint of `epoch` in a run whose path
    contains `match` — what Ctrl-C or SIGKILL between two epochs leaves behind."""
    import contextlib

    import zspace.training.loop as loop

    real_save = loop.save_checkpoint

    @contextlib.contextmanager
    def killing(epoch: int = 1, match: str = ""):
        def save_then_die(run, parts, saved_epoch, **kwargs):
            real_save(run, parts, saved_epoch, **kwargs)
            if saved_epoch == epoch and match in str(run.path):
                raise KeyboardInterrupt

        monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
        try:
            yield
        finally:
            monkeypatch.setattr(loop, "save_checkpoint", real_save)

    return killing
