"""The class-conditional Gaussian-mixture baseline: EM, sampling by label, run folders."""

from __future__ import annotations

import json

import pytest
import torch

from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.evaluation.gmm import (
    ClassConditionalGMM,
    fit_gmm_baseline,
    kmeans_plus_plus,
    load_gmm_baseline,
)

# Three well separated 2-d clusters per class; class 1 is class 0 moved by (40, 40).
CENTRES = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
OFFSET = 40.0


def clustered_codes(per_cluster: int = 200, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    codes, labels = [], []
    for label in range(2):
        for centre in CENTRES:
            codes.append(
                centre + OFFSET * label + 0.5 * torch.randn(per_cluster, 2, generator=generator)
            )
            labels.append(torch.full((per_cluster,), label))
    return torch.cat(codes), torch.cat(labels)


def sorted_means(means: torch.Tensor) -> torch.Tensor:
    # Round before ordering so that -0.1 and 0.05 count as the same coordinate.
    rounded = means.round()
    return means[torch.argsort(rounded[:, 0] * 1000 + rounded[:, 1])]


def test_fit_recovers_the_cluster_means_and_weights():
    codes, labels = clustered_codes()
    gmm = ClassConditionalGMM.fit(codes, labels, components=3, seed=0, num_classes=2)
    assert gmm.weights.shape == (2, 3) and gmm.means.shape == (2, 3, 2)
    for label in range(2):
        expected = sorted_means(CENTRES + OFFSET * label).double()
        assert torch.allclose(sorted_means(gmm.means[label]), expected, atol=0.2)
        assert torch.allclose(
            gmm.weights[label], torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02
        )
        # Each component's covariance is about 0.25 I.
        assert torch.allclose(
            gmm.covariances[label],
            0.25 * torch.eye(2, dtype=torch.float64).expand(3, 2, 2),
            atol=0.08,
        )


def test_samples_follow_their_label_and_the_seed():
    codes, labels = clustered_codes()
    gmm = ClassConditionalGMM.fit(codes, labels, components=3, seed=0, num_classes=2)
    requested = torch.tensor([0] * 300 + [1] * 300)
    samples = gmm.sample(requested, torch.Generator().manual_seed(1))
    assert samples.shape == (600, 2) and samples.dtype == torch.float32
    # Every sample lies near one of its own class's centres, none near the other class.
    for label in range(2):
        rows = samples[requested == label]
        nearest_own = torch.cdist(rows, CENTRES + OFFSET * label).min(dim=1).values
        assert nearest_own.max() < 3.0
        assert rows.mean(dim=0).sub(CENTRES.mean(dim=0) + OFFSET * label).abs().max() < 1.0
    again = gmm.sample(requested, torch.Generator().manual_seed(1))
    assert torch.equal(samples, again)
    # Samples score higher under their own class than under the other one.
    own = gmm.log_prob(samples, requested)
    other = gmm.log_prob(samples, 1 - requested)
    assert (own > other).all()


def test_same_seed_gives_the_same_fit_and_kmeans_plus_plus_spreads_seeds():
    codes, labels = clustered_codes()
    first = ClassConditionalGMM.fit(codes, labels, components=3, seed=5, num_classes=2)
    second = ClassConditionalGMM.fit(codes, labels, components=3, seed=5, num_classes=2)
    assert torch.equal(first.means, second.means)
    seeds = kmeans_plus_plus(codes[labels == 0].double(), 3, torch.Generator().manual_seed(0))
    # One seed per cluster: the pairwise distances between seeds are all large.
    distances = torch.cdist(seeds, seeds)
    assert distances[~torch.eye(3, dtype=torch.bool)].min() > 5


def test_save_and_load_round_trip(tmp_path):
    codes, labels = clustered_codes()
    gmm = ClassConditionalGMM.fit(codes, labels, components=2, seed=0, num_classes=2)
    gmm.save(tmp_path / "gmm.safetensors")
    loaded = ClassConditionalGMM.load(tmp_path / "gmm.safetensors")
    generator_a, generator_b = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    requested = torch.tensor([0, 1, 1, 0])
    assert torch.equal(gmm.sample(requested, generator_a), loaded.sample(requested, generator_b))


def test_bad_fit_inputs_are_user_errors():
    codes, labels = clustered_codes(per_cluster=5)
    with pytest.raises(ZspaceError, match="no codes for class 2"):
        ClassConditionalGMM.fit(codes, labels, components=2, num_classes=3)
    with pytest.raises(ZspaceError, match="too few"):
        ClassConditionalGMM.fit(codes, labels, components=10, num_classes=2)
    with pytest.raises(ZspaceError, match="labels"):
        ClassConditionalGMM.fit(codes, labels[:3], components=2, num_classes=2)


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
