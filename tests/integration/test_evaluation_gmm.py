"""The class-conditional Gaussian-mixture baseline: EM, sampling by label, run folders."""

from __future__ import annotations

import json

import pytest
import torch

from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.evaluation.gmm import (
    fit_gmm_baseline,
    load_gmm_baseline,
)

# Three well separated 2-d clusters per class; class 1 is class 0 moved by (40, 40).


@pytest.fixture(scope="module")
def gmm_run(small_ae_run, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gmm") / "run"
    fit_gmm_baseline(small_ae_run, out, components=2, seed=0, data_dir=mnist_dir, limit=3000)
    return out


def test_gmm_run_samples_like_a_conditional_gan(gmm_run):
    config = json.loads((gmm_run / "config.json").read_text())
    assert config["kind"] == "gmm-baseline" and config["components"] == 2
    baseline = load_gmm_baseline(gmm_run)
    assert baseline.conditional
    images, labels = baseline.sample_with_labels(n=3, seed=4)
    assert images.shape == (30, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert labels.tolist() == [d for d in range(10) for _ in range(3)]
    sevens = baseline.sample(digit=7, n=3, seed=4)
    # Same codes; the decoder's float rounding may differ slightly between batch sizes.
    assert torch.allclose(sevens, images[21:24], atol=1e-5)
    assert torch.equal(sevens, baseline.sample(digit=7, n=3, seed=4))
    assert not torch.equal(sevens, baseline.sample(digit=7, n=3, seed=5))
    for bad in ({"digit": 10}, {"digit": -1}, {"n": 0}, {"n": 5000}):
        with pytest.raises(ZspaceError):
            baseline.sample(**{"n": 2, **bad})


def test_fit_gmm_cli_and_errors(small_ae_run, mnist_dir, tmp_path, capsys):
    out = tmp_path / "gmm"
    argv = ["fit-gmm", "--ae", str(small_ae_run), "--out", str(out), "--components", "1"]
    argv += ["--limit", "2000", "--data-dir", str(mnist_dir)]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["components"] == 1
    assert main(argv) == 1  # the folder holds a run now
    error = capsys.readouterr().err.strip()
    assert "already holds a run" in error and "\n" not in error
    assert main(["fit-gmm", "--ae", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(RunError, match="expected gmm-baseline"):
        load_gmm_baseline(small_ae_run)
