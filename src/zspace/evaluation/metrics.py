"""Sample-quality metrics in the evaluation classifier's feature space.

- Frechet distance between Gaussians fitted to sample and reference features (the FID recipe
  of Heusel et al. 2017, with our own MNIST classifier in place of Inception).
- Precision and recall by k-nearest-neighbour manifolds (Kynkaenniemi et al. 2019): precision
  is the share of samples inside the union of k-NN balls around reference features, recall the
  share of reference features inside the balls around samples.
- The share judged as the requested digit, the class histogram and its KL divergence from
  uniform (mode collapse shows up as a high KL), and diversity (mean pairwise feature distance
  among samples relative to that among reference images).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from zspace.checkpoint import load_tensors, save_tensors
from zspace.errors import ZspaceError

NUM_CLASSES = 10


def frechet_distance_from_stats(mean_a, cov_a, mean_b, cov_b) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)), computed in float64.

    tr((S_a S_b)^(1/2)) equals tr((R S_b R)^(1/2)) with R = S_a^(1/2), and R S_b R is symmetric
    positive semi-definite, so two symmetric eigen-decompositions give it without the complex
    arithmetic (and tiny imaginary parts) of a general matrix square root.
    """
    mean_a, mean_b = mean_a.double(), mean_b.double()
    cov_a, cov_b = cov_a.double(), cov_b.double()
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    middle = 0.5 * (middle + middle.T)  # remove rounding asymmetry before eigvalsh
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    diff = mean_a - mean_b
    value = diff @ diff + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt
    return max(0.0, value.item())  # rounding can leave -1e-12 for identical sets


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    eigenvalues, eigenvectors = torch.linalg.eigh(0.5 * (matrix + matrix.T))
    return (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T


def mean_and_covariance(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 mean (F,) and unbiased covariance (F, F) of (N, F) features."""
    if len(features) < 2:
        raise ZspaceError(f"need at least 2 images for a covariance, got {len(features)}")
    features = features.double()
    mean = features.mean(dim=0)
    centred = features - mean
    return mean, centred.T @ centred / (len(features) - 1)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two (N, F) feature sets."""
    return frechet_distance_from_stats(
        *mean_and_covariance(features_a), *mean_and_covariance(features_b)
    )


def knn_radii(features: torch.Tensor, k: int = 3, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row, (N,)."""
    if len(features) <= k:
        raise ZspaceError(
            f"need more than k={k} feature vectors for k-NN radii, got {len(features)}"
        )
    radii = []
    for start in range(0, len(features), chunk):
        distances = torch.cdist(features[start : start + chunk], features)
        # The smallest distance is the point to itself (0); the (k+1)-th smallest is the k-th neighbour.
        radii.append(distances.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def share_inside_balls(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048
) -> float:
    """Fraction of query rows within radius[j] of some centre j."""
    inside = []
    for start in range(0, len(queries), chunk):
        distances = torch.cdist(queries[start : start + chunk], centres)
        inside.append((distances <= radii[None, :]).any(dim=1))
    return torch.cat(inside).float().mean().item()


def precision_recall(
    sample_features: torch.Tensor,
    reference_features: torch.Tensor,
    k: int = 3,
    reference_radii: torch.Tensor | None = None,
) -> tuple[float, float]:
    """k-NN manifold precision and recall (Kynkaenniemi et al. 2019)."""
    sample_features = sample_features.float()
    reference_features = reference_features.float()
    if reference_radii is None:
        reference_radii = knn_radii(reference_features, k)
    precision = share_inside_balls(sample_features, reference_features, reference_radii)
    recall = share_inside_balls(reference_features, sample_features, knn_radii(sample_features, k))
    return precision, recall


def class_histogram(predicted: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Fraction of predictions per class, float64 (num_classes,)."""
    counts = torch.bincount(predicted.long().cpu(), minlength=num_classes).double()
    return counts / max(1, counts.sum().item())


def kl_from_uniform(histogram) -> float:
    """KL(histogram || uniform) in nats; 0 for a uniform histogram, log(C) for a single class."""
    histogram = torch.as_tensor(histogram, dtype=torch.float64)
    histogram = histogram / histogram.sum()
    present = histogram > 0  # 0 log 0 = 0
    terms = histogram[present] * torch.log(histogram[present] * len(histogram))
    return max(0.0, terms.sum().item())


def mean_pairwise_distance(features: torch.Tensor, max_items: int = 2000, seed: int = 0) -> float:
    """Mean Euclidean distance between distinct rows (on a seeded subset of `max_items`)."""
    if len(features) < 2:
        return 0.0
    if len(features) > max_items:
        generator = torch.Generator().manual_seed(seed)
        features = features[torch.randperm(len(features), generator=generator)[:max_items]]
    distances = torch.cdist(features.float(), features.float())
    count = len(features)
    return (distances.sum() / (count * (count - 1))).item()


@dataclass
class ReferenceStats:
    """Everything about the reference (real) images that the metrics need, computed once."""

    features: torch.Tensor
    mean: torch.Tensor
    covariance: torch.Tensor
    radii: torch.Tensor
    pairwise_distance: float
    k: int

    @classmethod
    def from_features(cls, features: torch.Tensor, k: int = 3) -> ReferenceStats:
        mean, covariance = mean_and_covariance(features)
        return cls(
            features=features,
            mean=mean,
            covariance=covariance,
            radii=knn_radii(features, k),
            pairwise_distance=mean_pairwise_distance(features),
            k=k,
        )

    @classmethod
    def from_images(cls, images, classifier, k: int = 3) -> ReferenceStats:
        return cls.from_features(classifier.features(images), k)


def reference_stats(images: torch.Tensor, classifier, k: int = 3) -> ReferenceStats:
    """ReferenceStats for real images, with their features cached beside the classifier."""
    return ReferenceStats.from_features(reference_features(images, classifier), k)


def reference_features(images: torch.Tensor, classifier) -> torch.Tensor:
    """The classifier features of real images, cached beside the classifier.

    Featurising the 10,000 test images takes seconds on a CPU; the cache entry is keyed by a
    hash of the image bytes, so a different reference set never reuses stale features.
    """
    folder = getattr(classifier, "folder", None)
    if folder is None:
        return classifier.features(images)
    images = torch.as_tensor(images)
    digest = hashlib.sha256(images.cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    path = Path(folder) / f"reference-{digest}.safetensors"
    if path.is_file():
        tensors, _ = load_tensors(path)
        return tensors["features"]
    features = classifier.features(images)
    save_tensors(path, {"features": features}, {"count": len(features)})
    return features


def evaluate_images(
    images,
    classifier,
    reference_images=None,
    requested_labels: torch.Tensor | None = None,
    reference: ReferenceStats | None = None,
    k: int = 3,
) -> dict:
    """All metrics for a set of images against reference (real, usually test-set) images.

    Args:
        images: uint8 (N, 28, 28) or float (N, 1, 28, 28) in [0, 1]; N >= k + 1.
        classifier: an `EvalClassifier`.
        reference_images: the real images to compare with (uint8 (M, 28, 28)); or pass
            `reference` (a `ReferenceStats`) to reuse them across calls.
        requested_labels: int64 (N,) digits the generator was asked for, or None.

    Returns a dict: count, requested_accuracy (None without requested labels),
    per_digit_accuracy (list of 10, None where no digit was requested), frechet_distance,
    precision, recall, class_histogram (10 fractions), kl_from_uniform, diversity.
    """
    if not torch.is_tensor(images):
        images = torch.as_tensor(images)
    if len(images) <= k:
        raise ZspaceError(f"need more than {k} images to evaluate, got {len(images)}")
    if reference is None:
        if reference_images is None:
            raise ZspaceError("evaluate_images needs reference_images or reference statistics")
        reference = reference_stats(reference_images, classifier, k)
    predicted, features = classify_images(images, classifier)
    return evaluate_features(predicted, features, reference, requested_labels)


def classify_images(images, classifier) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes (N,), features (N, D)) of images under the evaluation classifier."""
    if hasattr(classifier, "predict_with_features"):  # one forward pass instead of two
        predicted, _, features = classifier.predict_with_features(images)
    else:
        predicted, features = classifier.predict(images)[0], classifier.features(images)
    return predicted, features


def frechet_distance_to(
    features: torch.Tensor, reference_moments: tuple[torch.Tensor, torch.Tensor]
) -> float:
    """The Fréchet distance between images' classifier features and a reference set's
    (mean, covariance) of features (`mean_and_covariance`)."""
    mean, covariance = mean_and_covariance(features)
    return frechet_distance_from_stats(mean, covariance, *reference_moments)


def evaluate_features(
    predicted: torch.Tensor,
    features: torch.Tensor,
    reference: ReferenceStats,
    requested_labels: torch.Tensor | None = None,
) -> dict:
    """The report of `evaluate_images`, from the images' predictions and features (so that a
    caller comparing with more than one reference set classifies the images once)."""
    report = {"count": len(features), "requested_accuracy": None, "per_digit_accuracy": None}
    if requested_labels is not None:
        requested = torch.as_tensor(requested_labels).long().cpu()
        if requested.shape != (len(features),):
            raise ZspaceError(
                f"requested labels have shape {tuple(requested.shape)}, expected ({len(features)},)"
            )
        correct = (predicted == requested).double()
        report["requested_accuracy"] = correct.mean().item()
        report["per_digit_accuracy"] = [
            correct[requested == digit].mean().item() if (requested == digit).any() else None
            for digit in range(NUM_CLASSES)
        ]
    report["frechet_distance"] = frechet_distance_to(
        features, (reference.mean, reference.covariance)
    )
    report["precision"], report["recall"] = precision_recall(
        features, reference.features, reference.k, reference.radii
    )
    histogram = class_histogram(predicted)
    report["class_histogram"] = histogram.tolist()
    report["kl_from_uniform"] = kl_from_uniform(histogram)
    reference_spread = reference.pairwise_distance
    report["diversity"] = (
        mean_pairwise_distance(features) / reference_spread if reference_spread > 0 else math.nan
    )
    return report
