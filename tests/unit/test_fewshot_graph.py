"""Graph building blocks of the few-shot methods: kNN, affinities, Poisson learning, HOG."""

from __future__ import annotations

import torch

from zspace.fewshot.graph import affinity_matrix, nearest_neighbours, poisson_learning
from zspace.fewshot.hog import ORIENTATIONS, gradient_histograms


def test_nearest_neighbours_match_brute_force_across_chunks():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(300, 7, generator=generator)
    queries = torch.randn(50, 7, generator=generator)
    distances, indices = nearest_neighbours(queries, base, k=4, chunk=16)
    expected = torch.cdist(queries, base).pow(2).topk(4, dim=1, largest=False)
    assert torch.equal(indices, expected.indices)
    assert torch.allclose(distances, expected.values, atol=1e-4)


def test_nearest_neighbours_can_leave_each_point_out():
    points = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
    _, indices = nearest_neighbours(points, points, k=3, exclude_self=True, chunk=7)
    assert not (indices == torch.arange(40)[:, None]).any()
    _, with_self = nearest_neighbours(points, points, k=1)
    assert torch.equal(with_self[:, 0], torch.arange(40))


def test_poisson_learning_labels_two_separated_clusters():
    generator = torch.Generator().manual_seed(2)
    points = torch.cat(
        [torch.randn(100, 2, generator=generator), torch.randn(100, 2, generator=generator) + 8]
    )
    truth = torch.arange(2).repeat_interleave(100)
    affinity = affinity_matrix(*nearest_neighbours(points, points, k=5, exclude_self=True))
    labelled = torch.tensor([3, 150])  # one label per cluster
    scores = poisson_learning(affinity, labelled, truth[labelled], classes=2)
    assert torch.equal(scores.argmax(1), truth)


def test_gradient_histograms_do_not_depend_on_the_batch_size():
    images = torch.rand(25, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    whole = gradient_histograms(images, batch_size=100)
    assert whole.shape == (25, 6 * 6 * ORIENTATIONS) and (whole >= 0).all()
    assert torch.allclose(gradient_histograms(images, batch_size=4), whole)
