"""Methods that also use the 60,000 unlabelled training images.

Each method maps a labelled draw (indices into the training set) to predicted test labels.
Whatever a method computes without labels (codes, deskewed images, kNN graphs) is built once
per study through `StudyContext.cached` and shared by all draws; its time is counted in the
method's time. Test images are only ever classified: no graph and no training set holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from zspace.fewshot.cluster import cluster_then_label
from zspace.fewshot.context import StudyContext
from zspace.fewshot.graph import (
    label_spreading,
    nearest_neighbours,
    poisson_learning,
    vote_from_neighbours,
)
from zspace.fewshot.selftrain import self_training_predict


@dataclass(frozen=True)
class BeyondMethod:
    """A named method: `predict(context, labelled_indices) -> test labels (N_test,)`."""

    name: str
    description: str
    predict: Callable[[StudyContext, torch.Tensor], torch.Tensor]

    def accuracies(self, context: StudyContext, draws: torch.Tensor) -> list[float]:
        """Test accuracy for each row of `draws` (R, N)."""
        test_labels = context.test_labels.to(context.device)
        results = []
        for indices in draws:
            predicted = self.predict(context, indices.to(context.device))
            results.append((predicted.to(context.device) == test_labels).float().mean().item())
        return results


def knn_on_codes(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    """1-nearest labelled neighbour in standardised code space (uses no unlabelled images)."""
    codes = context.features("encoder")
    labels = context.train_labels.to(context.device)[labelled]
    _, nearest = nearest_neighbours(codes.test, codes.train[labelled], 1)
    return labels[nearest[:, 0]]


def _propagate(context, feature_name, labelled, method) -> torch.Tensor:
    affinity = context.graph(feature_name)
    labels = context.train_labels.to(context.device)[labelled]
    if method == "spreading":
        scores = label_spreading(affinity, labelled, labels)
    else:
        scores = poisson_learning(affinity, labelled, labels)
    return vote_from_neighbours(*context.test_neighbours(feature_name), scores)


def spreading_on_codes(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    """Label spreading over the kNN graph of the 60k training codes; test by neighbour vote."""
    return _propagate(context, "encoder", labelled, "spreading")


def poisson_on_codes(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    """Poisson learning over the kNN graph of the training codes; test by neighbour vote."""
    return _propagate(context, "encoder", labelled, "poisson")


def poisson_on_deskewed(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    """Poisson learning over the kNN graph of deskewed training images (PCA-50)."""
    return _propagate(context, "deskewed-pca", labelled, "poisson")


def poisson_on_hog(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    """Poisson learning over the kNN graph of gradient histograms of deskewed training images."""
    return _propagate(context, "hog-pca", labelled, "poisson")


BEYOND_METHODS: dict[str, BeyondMethod] = {
    method.name: method
    for method in (
        BeyondMethod("knn-codes", "1-NN on the labelled codes", knn_on_codes),
        BeyondMethod(
            "spreading-codes",
            "label spreading on a kNN graph of training codes",
            spreading_on_codes,
        ),
        BeyondMethod(
            "poisson-codes", "Poisson learning on a kNN graph of training codes", poisson_on_codes
        ),
        BeyondMethod(
            "poisson-deskewed",
            "Poisson learning on a kNN graph of deskewed training images",
            poisson_on_deskewed,
        ),
        BeyondMethod(
            "poisson-hog",
            "Poisson learning on a kNN graph of gradient histograms of deskewed training images",
            poisson_on_hog,
        ),
        BeyondMethod(
            "selftrain-cnn",
            "CNN self-trained with augmentation on Poisson pseudo-labels of the HOG graph",
            self_training_predict,
        ),
        BeyondMethod(
            "cluster-then-label",
            "spectral clusters of the HOG graph, each named by the labelled images in it",
            cluster_then_label,
        ),
    )
}
# Highest mean at 5 labels per class over 10 draws (benchmarks/bench_fewshot.py --goals): 98.9%.
# With 1 label per class cluster-then-label is safer (98.8% on every draw; poisson-hog 98.0%).
BEST_METHOD = "poisson-hog"
