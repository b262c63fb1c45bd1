"""Measure class-to-class translators on real test digits, and rank class pairs by similarity.

For a translator and an ordered pair (A, B), every test digit of A is translated into B:
  - accuracy: the evaluation classifier's verdict on the translated image is B;
  - realism: the Fréchet distance between the translated images' and the real test B images'
    classifier features, beside the same distance for the test reconstructions of B (the test
    digits themselves through the decoder) and for the reconstructions of as many training
    digits of B (other writers: what a perfect sampler of B's codes gets), and both ratios;
  - style kept: the correlation, over the test digits, between each style measure of the input
    image and of its translation (zspace.evaluation.style), and their mean; the same
    correlation between the inputs and their own reconstructions is the ceiling;
  - cycle error: for translators that can go back, the mean squared pixel difference between
    the input's reconstruction and its A -> B -> A round trip.
Test images are only encoded, translated and classified here; nothing is fitted to them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from zspace.evaluation.metrics import (
    classify_images,
    frechet_distance_from_stats,
    frechet_distance_to,
    mean_and_covariance,
    reference_features,
)
from zspace.evaluation.style import (
    class_dependence,
    mean_style_correlation,
    style_correlations,
    style_measures,
)
from zspace.models.images import to_float_images
from zspace.sampling.latent import LatentDecoder, encode_images

NUM_CLASSES = 10


def class_similarity(codes: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """The 45 unordered class pairs, most similar first: the Fréchet distance between the two
    classes' code distributions (Gaussians fitted to the codes; smaller is more alike)."""
    moments = {}
    for digit in range(NUM_CLASSES):
        rows = codes[labels == digit].double()
        if len(rows) >= 2:
            moments[digit] = mean_and_covariance(rows)
    ranking = [
        {"pair": [a, b], "code_fd": frechet_distance_from_stats(*moments[a], *moments[b])}
        for a in sorted(moments)
        for b in sorted(moments)
        if a < b
    ]
    return sorted(ranking, key=lambda row: row["code_fd"])


def chosen_pairs(ranking: list[dict], per_end: int = 3) -> list[dict]:
    """The `per_end` most similar and `per_end` least similar pairs, each marked with its group."""
    similar = [{**row, "group": "similar"} for row in ranking[:per_end]]
    dissimilar = [{**row, "group": "dissimilar"} for row in ranking[-per_end:]]
    return similar + dissimilar


@dataclass
class _ClassSet:
    images: torch.Tensor  # float (N, 1, 28, 28) real test images
    codes: torch.Tensor
    reconstructions: torch.Tensor
    style: dict
    reconstruction_style: dict
    moments: tuple  # (mean, covariance) of the real images' classifier features
    reconstruction_fd: float
    sampler_fd: float | None
    style_ceiling: dict


class TranslationJudge:
    """The measures of one study, with everything about the real test digits computed once."""

    def __init__(
        self,
        classifier,
        autoencoder,
        test_images,
        test_labels,
        per_class=None,
        train_images=None,
        train_labels=None,
    ):
        self.classifier = classifier
        self.autoencoder = autoencoder
        self.decoder = LatentDecoder(autoencoder)
        self.test_images = test_images
        self.test_labels = test_labels
        self.per_class = per_class
        # Other writers' digits of each class: what a perfect code sampler would draw.
        self.train_images, self.train_labels = train_images, train_labels
        self._classes: dict[int, _ClassSet] = {}

    def class_set(self, digit: int) -> _ClassSet:
        if digit not in self._classes:
            images = self.test_images[self.test_labels == digit][: self.per_class]
            floats = to_float_images(images)
            codes = encode_images(self.autoencoder, images)
            reconstructions = self.decoder(codes)
            features = reference_features(images, self.classifier)
            moments = mean_and_covariance(features)
            _, reconstruction_features = classify_images(reconstructions, self.classifier)
            style = style_measures(floats)
            reconstruction_style = style_measures(reconstructions)
            self._classes[digit] = _ClassSet(
                images=floats,
                codes=codes,
                reconstructions=reconstructions,
                style=style,
                reconstruction_style=reconstruction_style,
                moments=moments,
                reconstruction_fd=frechet_distance_to(reconstruction_features, moments),
                sampler_fd=self._sampler_fd(digit, len(images), moments),
                style_ceiling=style_correlations(style, reconstruction_style),
            )
        return self._classes[digit]

    def _sampler_fd(self, digit: int, count: int, moments) -> float | None:
        """FD to the real test digits of the reconstructions of `count` training digits of the
        same class: the realism of a perfect code sampler, which draws other writers' codes
        (the test reconstructions are the test digits themselves, a far easier bar)."""
        if self.train_images is None:
            return None
        images = self.train_images[self.train_labels == digit][:count]
        _, features = classify_images(
            self.decoder(encode_images(self.autoencoder, images)), self.classifier
        )
        return frechet_distance_to(features, moments)

    def style_validation(self, digits) -> dict:
        """How far each style measure is a measure of style, on these digits' test images: the
        share of its variance the class explains (class_dependence; 0 is class-free), and
        its correlation between the images and their own reconstructions (what survives the
        autoencoder, the ceiling of any code translator)."""
        sets = [self.class_set(digit) for digit in digits]
        measures = {name: torch.cat([s.style[name] for s in sets]) for name in sets[0].style}
        labels = torch.cat([torch.full((len(s.codes),), d) for d, s in zip(digits, sets)])
        after = {name: torch.cat([s.reconstruction_style[name] for s in sets]) for name in measures}
        return {
            "class_dependence": class_dependence(measures, labels),
            "reconstruction_correlation": style_correlations(measures, after),
        }

    def references(self, source: int, target: int) -> dict:
        """What no code translator can beat: the test reconstructions' realism and style."""
        ceiling = self.class_set(source).style_ceiling
        return {
            "fd_reconstruction": self.class_set(target).reconstruction_fd,
            "fd_sampler": self.class_set(target).sampler_fd,
            "style_ceiling": mean_style_correlation(ceiling),
        }

    def judge(self, translator, source: int, target: int) -> dict:
        """All measures of `translator` on the test digits of `source`, translated to `target`."""
        inputs, goal = self.class_set(source), self.class_set(target)
        started = time.perf_counter()
        translated_codes = translator.translate_codes(inputs.codes, target, source)
        seconds = time.perf_counter() - started
        images = self.decoder(translated_codes)
        predicted, features = classify_images(images, self.classifier)
        fd = frechet_distance_to(features, goal.moments)
        style = style_correlations(inputs.style, style_measures(images))
        result = {
            "method": translator.method,
            "scope": "all" if translator.config.all_pairs else "pair",
            "source": source,
            "target": target,
            "count": len(images),
            "accuracy": (predicted == target).double().mean().item(),
            "fd": fd,
            "fd_reconstruction": goal.reconstruction_fd,
            "fd_ratio": fd / goal.reconstruction_fd if goal.reconstruction_fd > 0 else None,
            "fd_sampler": goal.sampler_fd,
            "fd_sampler_ratio": fd / goal.sampler_fd if goal.sampler_fd else None,
            "style": style,
            "style_kept": mean_style_correlation(style),
            "style_ceiling": mean_style_correlation(inputs.style_ceiling),
            "cycle_error": None,
            "translate_seconds": seconds,
        }
        if translator.can_go_back:
            back = self.decoder(translator.translate_codes(translated_codes, source, target))
            result["cycle_error"] = (back - inputs.reconstructions).pow(2).mean().item()
        return result


def counterpart_error(translator, pairs: torch.Tensor, source: int, target: int) -> float:
    """How close a translator gets to the true counterparts of held-out generated pairs:
    mean squared distance of G(I) to J, over the same for a random other J (0 is exact, 1 no
    better than any code of B). `pairs` is (M, 2, latent_dim) of (I in A, J in B)."""
    inputs, counterparts = pairs[:, 0], pairs[:, 1]
    output = translator.translate_codes(inputs, target, source)
    error = (output - counterparts).pow(2).sum(1).mean()
    shuffled = counterparts.roll(1, dims=0)
    baseline = (shuffled - counterparts).pow(2).sum(1).mean()
    return (error / baseline).item()
