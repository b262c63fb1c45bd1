"""Zero-label clustering: NMI, matched accuracy, spectral clusters and cluster-then-label."""

from __future__ import annotations

import math

import pytest
import torch

from zspace.fewshot.cluster import (
    assign_test,
    cluster_then_label,
    cluster_training_images,
    matched_accuracy,
    name_clusters,
    normalized_mutual_information,
    spectral_clusters,
)
from zspace.fewshot.context import StudyContext
from zspace.fewshot.features import FeatureSet
from zspace.fewshot.graph import affinity_matrix, nearest_neighbours


def blobs(per_blob: int, centres: list[tuple[float, float]], seed: int):
    """(points (B * per_blob, 2), blob index of each) around the given centres."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.cat(
        [torch.randn(per_blob, 2, generator=generator) + torch.tensor(c) for c in centres]
    )
    return points, torch.arange(len(centres)).repeat_interleave(per_blob)


def blob_context(per_blob: int = 60, seed: int = 0) -> StudyContext:
    """A StudyContext whose "blobs" features are 3 well separated blobs (train and test)."""
    centres = [(0.0, 0.0), (12.0, 0.0), (0.0, 12.0)]
    train, train_labels = blobs(per_blob, centres, seed)
    test, test_labels = blobs(20, centres, seed + 1)
    context = StudyContext(
        train_images=torch.zeros(len(train), 28, 28, dtype=torch.uint8),
        train_labels=train_labels,
        test_images=torch.zeros(len(test), 28, 28, dtype=torch.uint8),
        test_labels=test_labels,
        autoencoder=None,
        device=torch.device("cpu"),
    )
    features = FeatureSet("blobs", train, test, torch.zeros(1, 2), torch.ones(1, 2))
    context.cached("hog-pca", lambda: features)  # the features cluster_then_label works on
    return context


def test_nmi_matches_a_hand_computed_value():
    # Joint counts [[2, 0], [1, 1]] over 4 items: H(A) = H(B) = ln 2 ... for B: (3/4, 1/4).
    first, second = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 0, 1])
    h_first = math.log(2)
    h_second = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    information = 0.5 * math.log(0.5 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / (0.5 * 0.75))
    information += 0.25 * math.log(0.25 / (0.5 * 0.25))
    expected = information / ((h_first + h_second) / 2)
    assert normalized_mutual_information(first, second) == pytest.approx(expected, rel=1e-9)
    assert normalized_mutual_information(second, first) == pytest.approx(expected, rel=1e-9)


def test_nmi_properties():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (5000,), generator=generator)
    renamed = torch.randperm(10, generator=generator)[labels]
    assert normalized_mutual_information(labels, labels) == pytest.approx(1.0)
    assert normalized_mutual_information(renamed, labels) == pytest.approx(1.0)
    independent = torch.randint(0, 10, (5000,), generator=generator)
    assert normalized_mutual_information(independent, labels) < 0.01
    assert normalized_mutual_information(torch.zeros(5, dtype=torch.long), torch.zeros(5)) == 1.0


def test_matched_accuracy_sees_through_a_renaming():
    generator = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (1000,), generator=generator)
    permutation = torch.randperm(10, generator=generator)
    accuracy, mapping = matched_accuracy(permutation[labels], labels)
    assert accuracy == 1.0
    assert mapping == {int(permutation[c]): c for c in range(10)}
    noisy = permutation[labels].clone()
    noisy[:100] = (noisy[:100] + 1) % 10  # 100 items moved to another cluster
    assert matched_accuracy(noisy, labels)[0] == pytest.approx(0.9, abs=0.01)


def test_spectral_clustering_separates_three_blobs_and_repeats():
    points, truth = blobs(80, [(0.0, 0.0), (10.0, 0.0), (5.0, 9.0)], seed=2)
    affinity = affinity_matrix(*nearest_neighbours(points, points, k=8, exclude_self=True))
    assignments = spectral_clusters(affinity, clusters=3, eigenvectors=3, restarts=3, seed=4)
    assert matched_accuracy(assignments, truth)[0] == 1.0
    again = spectral_clusters(affinity, clusters=3, eigenvectors=3, restarts=3, seed=4)
    assert torch.equal(assignments, again)


def test_clusters_of_a_context_are_cached_and_test_images_join_them():
    context = blob_context()
    features = context.features("hog-pca")
    first = cluster_training_images(context, "hog-pca", clusters=3)
    assert cluster_training_images(context, "hog-pca", clusters=3) is first
    assert matched_accuracy(first, context.train_labels)[0] == 1.0
    test_assignments = assign_test(context, "hog-pca", first)
    assert test_assignments.shape == (len(features.test),)
    _, mapping = matched_accuracy(first, context.train_labels)
    predicted = torch.tensor([mapping[int(c)] for c in test_assignments])
    assert torch.equal(predicted, context.test_labels)


def test_cluster_then_label_from_one_label_per_class():
    context = blob_context()
    labelled = torch.tensor([5, 70, 130])  # one image of each blob
    predicted = cluster_then_label(context, labelled, classes=3)
    assert torch.equal(predicted, context.test_labels)
    more = torch.tensor([5, 6, 70, 71, 130, 131])
    assert torch.equal(cluster_then_label(context, more, classes=3), context.test_labels)


def test_an_empty_cluster_is_named_by_its_tie_scores():
    assignments = torch.tensor([0, 0, 1, 1, 2, 2])
    # Cluster 2 holds no labelled image; cluster 0 holds the only labels, both of class 1.
    labelled, labels = torch.tensor([0, 1]), torch.tensor([1, 1])
    tie_scores = torch.tensor([[0.1, 0.9, 0.0], [0.2, 0.0, 0.7], [0.8, 0.1, 0.1]])
    assert name_clusters(assignments, labelled, labels, tie_scores, classes=3).tolist() == [1, 2, 0]


def test_cluster_then_label_is_a_fewshot_method():
    from zspace.fewshot.beyond import BEYOND_METHODS

    assert BEYOND_METHODS["cluster-then-label"].predict is cluster_then_label
