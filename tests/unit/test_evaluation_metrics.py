"""Frechet distance, k-NN precision/recall, KL from uniform, diversity and evaluate_images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zspace.errors import ZspaceError
from zspace.evaluation.metrics import (
    class_histogram,
    evaluate_images,
    frechet_distance,
    frechet_distance_from_stats,
    kl_from_uniform,
    knn_radii,
    mean_and_covariance,
    precision_recall,
)


def gaussian(n: int, dim: int, seed: int, shift: float = 0.0, scale: float = 1.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator) * scale + shift


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = gaussian(500, 16, seed=0)
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_grows_with_a_shift():
    base = gaussian(2000, 8, seed=0)
    other = gaussian(2000, 8, seed=1)
    distances = [frechet_distance(base, other + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances)
    # A pure mean shift by s in every one of 8 dimensions adds 8 s^2.
    assert distances[3] - distances[0] == pytest.approx(8 * 4.0, rel=0.1)


def test_frechet_distance_matches_the_closed_form_with_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    b = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    cov_a, cov_b = a @ a.T + 0.1 * torch.eye(6), b @ b.T + 0.1 * torch.eye(6)
    mean_a, mean_b = torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    root = linalg.sqrtm(cov_a.numpy() @ cov_b.numpy()).real
    expected = 6.0 + np.trace(cov_a.numpy()) + np.trace(cov_b.numpy()) - 2 * np.trace(root)
    assert frechet_distance_from_stats(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected)


def test_frechet_distance_survives_singular_covariances():
    # Fewer samples than dimensions: rank-deficient covariances must not produce NaN.
    features = gaussian(5, 32, seed=0)
    value = frechet_distance(features, gaussian(5, 32, seed=1))
    assert math.isfinite(value) and value > 0


def test_covariance_needs_two_points():
    with pytest.raises(ZspaceError, match="at least 2"):
        mean_and_covariance(torch.zeros(1, 3))


def test_knn_radii_are_distances_to_the_kth_other_point():
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(points, k=2).tolist() == [3.0, 2.0, 3.0, 5.0]


def test_precision_and_recall_are_high_for_the_same_distribution():
    precision, recall = precision_recall(gaussian(1500, 4, 0), gaussian(1500, 4, 1))
    assert precision > 0.85 and recall > 0.85


def test_precision_and_recall_are_zero_for_disjoint_distributions():
    precision, recall = precision_recall(gaussian(500, 4, 0, shift=20.0), gaussian(500, 4, 1))
    assert precision == 0.0 and recall == 0.0


def test_collapsed_samples_keep_precision_but_lose_recall():
    real = gaussian(1500, 2, 1)
    # Samples on a tight blob in the middle of the real data: realistic but not diverse.
    collapsed = gaussian(1500, 2, 0, scale=0.1)
    precision, recall = precision_recall(collapsed, real)
    assert precision > 0.9 and recall < 0.3


def test_kl_from_uniform():
    assert kl_from_uniform([0.1] * 10) == pytest.approx(0.0, abs=1e-12)
    assert kl_from_uniform([1.0] + [0.0] * 9) == pytest.approx(math.log(10))
    assert 0 < kl_from_uniform([0.2] * 5 + [0.0] * 5) < math.log(10)
    assert class_histogram(torch.tensor([0, 0, 3, 9])).tolist()[:4] == [0.5, 0.0, 0.0, 0.25]


class PixelClassifier:
    """Stand-in classifier: the label is the image's brightest row // 3 (clipped to 9), the
    features the row means, so metrics can be tested without training a CNN."""

    def features(self, images):
        images = torch.as_tensor(images).float().reshape(-1, 28, 28)
        return images.mean(dim=2)

    def predict(self, images):
        labels = (self.features(images).argmax(dim=1) // 3).clamp(max=9)
        return labels, torch.nn.functional.one_hot(labels, 10).float()


def row_images(rows: torch.Tensor, noise_seed: int = 0) -> torch.Tensor:
    """uint8 images with one bright row each (plus a little noise)."""
    generator = torch.Generator().manual_seed(noise_seed)
    images = torch.randint(0, 20, (len(rows), 28, 28), generator=generator, dtype=torch.uint8)
    images[torch.arange(len(rows)), rows] = 255
    return images


def test_evaluate_images_reports_every_key():
    generator = torch.Generator().manual_seed(0)
    reference = row_images(torch.randint(0, 28, (400,), generator=generator), 1)
    rows = torch.randint(0, 28, (300,), generator=generator)
    samples = row_images(rows, 2)
    requested = (rows // 3).clamp(max=9)
    requested[:30] = (requested[:30] + 1) % 10  # 30 of 300 deliberately wrong
    report = evaluate_images(
        samples, PixelClassifier(), reference_images=reference, requested_labels=requested
    )
    assert set(report) >= {
        "count",
        "requested_accuracy",
        "frechet_distance",
        "precision",
        "recall",
        "class_histogram",
        "kl_from_uniform",
        "diversity",
    }
    assert report["count"] == 300
    assert report["requested_accuracy"] == pytest.approx(0.9)
    assert len(report["class_histogram"]) == 10 and sum(report["class_histogram"]) == pytest.approx(
        1
    )
    assert 0.5 < report["diversity"] < 1.5

    # Every sample the same image: diversity and recall collapse, the KL rises.
    same = row_images(torch.full((300,), 5), 2)
    collapsed = evaluate_images(same, PixelClassifier(), reference_images=reference)
    assert collapsed["requested_accuracy"] is None
    assert collapsed["diversity"] < 0.5 * report["diversity"]
    assert collapsed["recall"] < report["recall"]
    assert collapsed["kl_from_uniform"] > report["kl_from_uniform"] + 1
    assert collapsed["frechet_distance"] > report["frechet_distance"]


def test_evaluate_images_rejects_bad_requested_labels():
    images = row_images(torch.arange(10))
    with pytest.raises(ZspaceError, match="requested labels"):
        evaluate_images(
            images, PixelClassifier(), reference_images=images, requested_labels=torch.zeros(3)
        )
    with pytest.raises(ZspaceError, match="need more than"):
        evaluate_images(images[:2], PixelClassifier(), reference_images=images)
