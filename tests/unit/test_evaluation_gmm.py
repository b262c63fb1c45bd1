"""The class-conditional Gaussian-mixture baseline: EM, sampling by label, run folders."""

from __future__ import annotations

import pytest
import torch

from zspace.errors import ZspaceError
from zspace.evaluation.gmm import (
    ClassConditionalGMM,
    kmeans_plus_plus,
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
