"""The inputs the heads see: standardised raw pixels or standardised latent codes.

Standardisation statistics come from the training images only (the unlabelled 60k are fair
game); the test images are only ever transformed with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zspace.models.autoencoder import Autoencoder
from zspace.sampling.latent import encode_images

# Border pixels are (almost) constant in the training set; a floor on the std keeps a stray
# test pixel there from becoming a huge input.
MIN_STD = 0.05


@dataclass
class FeatureSet:
    """Features of the training and test images of one pipeline (float, on one device)."""

    name: str
    train: torch.Tensor  # (N_train, D)
    test: torch.Tensor  # (N_test, D)
    mean: torch.Tensor  # (1, D) training-set statistics used to standardise
    std: torch.Tensor  # (1, D)

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def standardise(name: str, train: torch.Tensor, test: torch.Tensor, min_std: float = 1e-6):
    """A FeatureSet of both, shifted and scaled by the training set's per-feature mean and std."""
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True).clamp_min(min_std)
    return FeatureSet(name, (train - mean) / std, (test - mean) / std, mean, std)


def pixel_features(
    train_images: torch.Tensor, test_images: torch.Tensor, device="cpu"
) -> FeatureSet:
    """uint8 (N, 28, 28) images -> standardised 784-d pixel vectors."""
    train = train_images.reshape(len(train_images), -1).to(device, torch.float32).div_(255.0)
    test = test_images.reshape(len(test_images), -1).to(device, torch.float32).div_(255.0)
    # In place: 60,000 float images are 188 MB, and every copy counts towards peak memory.
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True).clamp_min(MIN_STD)
    train.sub_(mean).div_(std)
    test.sub_(mean).div_(std)
    return FeatureSet("pixels", train, test, mean, std)


def code_features(
    model: Autoencoder, train_images: torch.Tensor, test_images: torch.Tensor, device="cpu"
) -> FeatureSet:
    """Frozen-encoder codes of the images, standardised."""
    train = encode_images(model, train_images).to(device)
    test = encode_images(model, test_images).to(device)
    return standardise("encoder", train, test)
