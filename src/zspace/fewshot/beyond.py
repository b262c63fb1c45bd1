"""Methods that also use the 60,000 unlabelled training images, and the shared study state.

Each method maps a labelled draw (indices into the training set) to predicted test labels.
Whatever a method computes without labels (codes, deskewed images, kNN graphs) is built once
per study through `StudyContext.cached` and shared by all draws; its time is counted in the
method's time. Test images are only ever classified: no graph and no training set holds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from zspace.errors import ZspaceError
from zspace.fewshot.deskew import deskew
from zspace.fewshot.features import FeatureSet, code_features, pixel_features, standardise
from zspace.fewshot.graph import (
    affinity_matrix,
    label_spreading,
    nearest_neighbours,
    poisson_learning,
    vote_from_neighbours,
)
from zspace.fewshot.hog import gradient_histograms
from zspace.models.autoencoder import Autoencoder

GRAPH_NEIGHBOURS = 10  # k of the kNN graphs (purity falls and cost rises with larger k)
PCA_DIMS = 50  # deskewed pixels are compared in their first 50 principal components


@dataclass
class StudyContext:
    """The data and frozen autoencoder a study runs on, plus label-free artefacts built once."""

    train_images: torch.Tensor  # uint8 (N, 28, 28)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    autoencoder: Autoencoder | None  # None: only methods that need no codes can run
    device: torch.device
    seed: int = 0
    progress: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict)

    def cached(self, key: str, build: Callable[[], object]):
        """Build `key` once (timing it in `timings[key]`) and return it afterwards."""
        if key not in self._cache:
            started = time.perf_counter()
            self._cache[key] = build()
            self.timings[key] = time.perf_counter() - started
        return self._cache[key]

    def features(self, name: str) -> FeatureSet:
        """ "pixels", "encoder" or "deskewed-pca" features of the train and test images."""
        if name == "pixels":
            return self.cached(
                "pixels", lambda: pixel_features(self.train_images, self.test_images, self.device)
            )
        if name == "encoder":
            if self.autoencoder is None:
                raise ZspaceError("this method needs an autoencoder's codes; pass --ae RUN")
            return self.cached(
                "encoder",
                lambda: code_features(
                    self.autoencoder, self.train_images, self.test_images, self.device
                ),
            )
        if name == "deskewed-pca":
            return self.cached("deskewed-pca", lambda: self._pca("deskewed-pca", *self.deskewed()))
        if name == "hog-pca":
            return self.cached(
                "hog-pca",
                lambda: self._pca("hog-pca", *(gradient_histograms(x) for x in self.deskewed())),
            )
        raise KeyError(name)

    def deskewed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Deskewed train and test images, float (N, 1, 28, 28), on the study's device.

        Not cached: they are only the input of cached features, deskewing takes about a
        second, and keeping 70,000 float images would cost 220 MB for the whole study."""
        started = time.perf_counter()
        images = deskew(self.train_images.to(self.device)), deskew(self.test_images.to(self.device))
        self.timings["deskewed"] = self.timings.get("deskewed", 0.0) + time.perf_counter() - started
        return images

    def _pca(self, name: str, train: torch.Tensor, test: torch.Tensor) -> FeatureSet:
        """Project both onto the first PCA_DIMS principal components of the training rows."""
        train, test = train.flatten(1), test.flatten(1)
        mean = train.mean(0, keepdim=True)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)  # pca_lowrank is randomised
        _, _, components = torch.pca_lowrank(train - mean, q=PCA_DIMS, center=False, niter=4)
        torch.random.set_rng_state(generator_state)
        # Kept unscaled: Euclidean distances in PCA space approximate the original distances.
        ones = torch.ones_like(mean[:, :PCA_DIMS])
        return FeatureSet(
            name, (train - mean) @ components, (test - mean) @ components, ones * 0, ones
        )

    def graph(self, feature_name: str) -> torch.Tensor:
        """Sparse affinity matrix of the kNN graph over the training features."""

        def build():
            train = self.features(feature_name).train
            distances, indices = nearest_neighbours(
                train, train, GRAPH_NEIGHBOURS, exclude_self=True
            )
            return affinity_matrix(distances, indices)

        return self.cached(f"graph:{feature_name}", build)

    def test_neighbours(self, feature_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Each test image's GRAPH_NEIGHBOURS nearest training images (distances, indices)."""
        features = self.features(feature_name)
        return self.cached(
            f"test-neighbours:{feature_name}",
            lambda: nearest_neighbours(features.test, features.train, GRAPH_NEIGHBOURS),
        )


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


def _self_training(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    from zspace.fewshot.selftrain import self_training_predict

    return self_training_predict(context, labelled)


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
            "CNN self-trained with augmentation on confident graph pseudo-labels",
            _self_training,
        ),
    )
}
# Highest mean at 5 labels per class over 10 draws (benchmarks/bench_fewshot.py): 98.6%.
BEST_METHOD = "poisson-hog"

__all__ = ["BEST_METHOD", "BEYOND_METHODS", "BeyondMethod", "StudyContext", "standardise"]
