"""The state a few-shot study runs on: the data, the frozen autoencoder, and the label-free
artefacts (codes, deskewed images, kNN graphs) built once per study through
`StudyContext.cached` and shared by every draw and method."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from zspace.errors import ZspaceError
from zspace.fewshot.deskew import deskew
from zspace.fewshot.features import FeatureSet, code_features, pixel_features
from zspace.fewshot.graph import affinity_matrix, nearest_neighbours
from zspace.fewshot.hog import gradient_histograms
from zspace.models.autoencoder import Autoencoder

GRAPH_NEIGHBOURS = 10  # k of the kNN graphs (purity falls and cost rises with larger k)
PCA_DIMS = 50  # deskewed pixels are compared in their first 50 principal components
# Gradient histograms keep more: on the training images, Poisson pseudo-labels from 5 labels
# per class are 98.5% right with 100 components against 98.3% with 50 (1 per class: 97.9/97.7).
HOG_PCA_DIMS = 100


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
    progress: bool = False  # progress bars while the self-training CNN trains
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
        """ "pixels", "encoder", "deskewed-pca" or "hog-pca" features of the train and test
        images."""
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
                lambda: self._pca(
                    "hog-pca",
                    *(gradient_histograms(x) for x in self.deskewed()),
                    dims=HOG_PCA_DIMS,
                ),
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

    def _pca(
        self, name: str, train: torch.Tensor, test: torch.Tensor, dims: int = PCA_DIMS
    ) -> FeatureSet:
        """Project both onto the first `dims` principal components of the training rows."""
        train, test = train.flatten(1), test.flatten(1)
        mean = train.mean(0, keepdim=True)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)  # pca_lowrank is randomised
        _, _, components = torch.pca_lowrank(train - mean, q=dims, center=False, niter=4)
        torch.random.set_rng_state(generator_state)
        # Kept unscaled: Euclidean distances in PCA space approximate the original distances.
        ones = torch.ones_like(mean[:, :dims])
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
