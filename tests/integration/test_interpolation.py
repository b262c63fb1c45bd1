"""Interpolation paths (AE codes, GAN noise linear/spherical, conditional label), their
measures, and `zspace interpolate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import zspace
from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.errors import ZspaceError
from zspace.sampling.interpolation import (
    choose_pairs,
    interpolation_paths,
    summarize_paths,
)
from zspace.sampling.inversion import invert_generator


def test_choose_pairs(mnist_dir):
    labels = load_dataset("mnist", data_dir=mnist_dir).test_labels
    pairs = choose_pairs(labels, count=5, seed=1)
    assert len(pairs) == 5 and all(labels[a] != labels[b] for a, b in pairs)
    assert pairs == choose_pairs(labels, count=5, seed=1)
    ((a, b),) = choose_pairs(labels, digits=[(3, 8)])
    assert (int(labels[a]), int(labels[b])) == (3, 8)
    assert choose_pairs(labels, indices=[(0, 1)]) == [(0, 1)]
    with pytest.raises(ZspaceError, match="indices"):
        choose_pairs(labels, indices=[(0, 10_000)])
    with pytest.raises(ZspaceError, match="digits"):
        choose_pairs(labels, digits=[(3, 12)])


@pytest.fixture(scope="module")
def cgan(web_cgan_run):
    return zspace.load(web_cgan_run)


def test_inversion_finds_noise_that_regenerates_the_target(cgan):
    torch.manual_seed(0)
    labels = torch.tensor([3, 5])
    true_noise = cgan.noise(2, seed=9)
    targets = cgan.generate_codes(true_noise, labels)
    found, error = invert_generator(cgan, targets, labels, steps=150, restarts=4)
    assert found.shape == (2, 64)
    random_error = (
        (cgan.scaler(cgan.generate_codes(cgan.noise(2, seed=1), labels)) - cgan.scaler(targets))
        .pow(2)
        .mean(1)
    )
    assert (error < 0.5 * random_error).all(), (error, random_error)


def test_paths_for_a_conditional_run(cgan, mnist_dir):
    data = load_dataset("mnist", data_dir=mnist_dir)
    pairs = choose_pairs(data.test_labels, count=2, seed=0)
    paths = interpolation_paths(cgan, data.test_images, data.test_labels, pairs, steps=6)
    assert [p.method for p in paths] == ["gan-linear", "gan-slerp", "gan-label", "ae"] * 2
    for path in paths:
        assert path.frames.shape == (6, 1, 28, 28)
        assert 0 <= path.frames.min() and path.frames.max() <= 1
        assert path.measures["step_cv"] >= 0
    # The AE path starts at the reconstruction of the first image.
    autoencoder = cgan.autoencoder
    from zspace.models.images import to_float_images

    with torch.no_grad():
        start = autoencoder(to_float_images(data.test_images[pairs[0][0] : pairs[0][0] + 1]))
    assert torch.allclose(paths[3].frames[0], start[0], atol=1e-5)
    summary = summarize_paths(paths)
    assert set(summary) == {"gan-linear", "gan-slerp", "gan-label", "ae"}
    assert summary["ae"]["paths"] == 2


def test_cli_interpolate(web_cgan_run, mnist_dir, tmp_path, capsys):
    common = ["--data-dir", str(mnist_dir), "--no-classifier", "--steps", "5"]
    out = tmp_path / "paths.npz"
    metrics = tmp_path / "m.json"
    argv = ["interpolate", str(web_cgan_run), *common, "--digits", "1", "7", "--pair", "0", "1"]
    assert main([*argv, "--out", str(out), "--metrics", str(metrics)]) == 0
    with np.load(out) as arrays:
        assert arrays["paths"].shape == (4, 5, 28, 28) and arrays["paths"].dtype == np.uint8
        assert list(arrays["methods"]) == ["gan-linear", "gan-slerp", "gan-label", "ae"]
    report = json.loads(metrics.read_text())
    assert len(report["paths"]) == 4 and "ae" in report["summary"]
    figure = tmp_path / "paths.png"
    capsys.readouterr()
    assert (
        main(["interpolate", str(web_cgan_run), *common, "--pairs", "2", "--out", str(figure)]) == 0
    )
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        main(["interpolate", str(web_cgan_run), *common, "--pair", "0", "99999", "--out", str(out)])
        == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "indices" in err[0]
