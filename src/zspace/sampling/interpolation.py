"""Interpolation paths between two real digits, and measures of how good a path is.

Three kinds of path (each T frames, float (T, 1, 28, 28) in [0, 1]):
  (a) "ae": linear interpolation of the two images' autoencoder codes, decoded;
  (b) "gan-linear" / "gan-slerp": linear or spherical interpolation between two GAN noise
      vectors. To start and end at the two real images, each image is first inverted
      (zspace.sampling.inversion): the noise whose generated (standardised) code is closest to the
      image's code, with a weak pull towards the typical noise norm so the noise stays where
      the generator was trained; found by the run's fitted inverter plus Levenberg-Marquardt
      steps, or by Adam from random starts if the run has no inverter. For a conditional run the one-hot label moves from A to B along with the noise;
  (c) "gan-label" (conditional runs): the noise is held fixed (A's inverted noise) and only
      the one-hot label moves from A to B.

A path is measured by the evaluation classifier: how often its class changes (1 is ideal
between two different digits), how confident it is on the middle frames (realism), and how
even the steps are (coefficient of variation of consecutive pixel-space step lengths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FilePath

import numpy as np
import torch

from zspace.errors import ZspaceError
from zspace.figures import grid_image
from zspace.files import save_npz, save_png
from zspace.models.images import to_float_images, to_uint8_images
from zspace.sampling.inversion import invert
from zspace.sampling.latent import decode_codes, encode_images
from zspace.sampling.sampler import Sampler


def interpolate_latents(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Linear interpolation: (dim,), (dim,) -> (steps, dim), endpoints included."""
    weights = torch.linspace(0, 1, steps, dtype=start.dtype, device=start.device).unsqueeze(1)
    return start.unsqueeze(0) * (1 - weights) + end.unsqueeze(0) * weights


def slerp(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN noise): (dim,) -> (steps, dim).

    Moves along the great circle between the two directions while the norm changes linearly,
    so middle points keep the norm typical of Gaussian noise instead of shrinking towards 0.
    """
    weights = torch.linspace(0, 1, steps, dtype=start.dtype, device=start.device).unsqueeze(1)
    start_norm, end_norm = start.norm(), end.norm()
    cosine = torch.dot(start / start_norm, end / end_norm).clamp(-1.0, 1.0)
    angle = torch.arccos(cosine)
    if angle.abs() < 1e-4:  # (nearly) parallel: linear is the same path
        return interpolate_latents(start, end, steps)
    direction = (
        torch.sin((1 - weights) * angle) * (start / start_norm)
        + torch.sin(weights * angle) * (end / end_norm)
    ) / torch.sin(angle)
    return direction * (start_norm * (1 - weights) + end_norm * weights)


@dataclass
class Path:
    """One interpolation: its kind, endpoints and frames."""

    method: str
    pair: tuple[int, int]  # test-set indices of the two real images
    digits: tuple[int, int]
    frames: torch.Tensor  # float (T, 1, 28, 28) in [0, 1]
    measures: dict = field(default_factory=dict)


def ae_path(autoencoder, image_a: torch.Tensor, image_b: torch.Tensor, steps: int) -> torch.Tensor:
    """(a): decode the linear interpolation of two images' codes -> (steps, 1, 28, 28)."""
    codes = encode_images(autoencoder, torch.stack([image_a, image_b]))
    return decode_codes(autoencoder, interpolate_latents(codes[0], codes[1], steps))


def gan_paths(
    sampler, image_a, image_b, digit_a: int, digit_b: int, steps: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """(b) and, for a conditional run, (c): {method: frames (steps, 1, 28, 28)}."""
    images = to_float_images(torch.stack([image_a, image_b]))
    if sampler.autoencoder is not None:
        targets = encode_images(sampler.autoencoder, images)
    else:
        targets = images.reshape(2, -1)
    labels = torch.tensor([digit_a, digit_b]) if sampler.conditional else None
    noise, _ = invert(sampler, targets, labels, seed=seed)
    soft_labels = None
    if sampler.conditional:
        one_hots = torch.nn.functional.one_hot(labels, 10).float()
        soft_labels = interpolate_latents(one_hots[0], one_hots[1], steps)
    paths = {
        "gan-linear": sampler.images(interpolate_latents(noise[0], noise[1], steps), soft_labels),
        "gan-slerp": sampler.images(slerp(noise[0], noise[1], steps), soft_labels),
    }
    if sampler.conditional:
        fixed = noise[0].unsqueeze(0).expand(steps, -1)
        paths["gan-label"] = sampler.images(fixed, soft_labels)
    return paths


@torch.no_grad()
def measure_path(frames: torch.Tensor, classifier=None) -> dict:
    """Class changes and middle-frame confidence (needs a classifier), and step evenness."""
    flat = frames.reshape(len(frames), -1)
    step_lengths = (flat[1:] - flat[:-1]).norm(dim=1)
    mean_step = step_lengths.mean()
    measures = {
        "step_cv": float(step_lengths.std(unbiased=False) / mean_step) if mean_step > 0 else 0.0,
        "path_length": float(step_lengths.sum()),
    }
    if classifier is not None:
        predicted, probs = classifier.predict(frames)
        predicted, probs = predicted.cpu(), probs.cpu()
        middle = probs[1:-1].max(1).values if len(frames) > 2 else probs.max(1).values
        measures.update(
            classes=[int(c) for c in predicted],
            class_changes=int((predicted[1:] != predicted[:-1]).sum()),
            middle_confidence=float(middle.mean()),
            min_confidence=float(probs.max(1).values.min()),
        )
    return measures


def choose_pairs(
    test_labels: torch.Tensor,
    count: int = 4,
    seed: int = 0,
    indices: list[tuple[int, int]] | None = None,
    digits: list[tuple[int, int]] | None = None,
) -> list[tuple[int, int]]:
    """Test-image index pairs: given directly, by digit (a seeded pick of each digit), or
    `count` seeded random pairs of different digits."""
    total = len(test_labels)
    generator = torch.Generator().manual_seed(seed)
    if indices:
        for a, b in indices:
            if not (0 <= a < total and 0 <= b < total):
                raise ZspaceError(f"test image indices must be in 0..{total - 1}, got {a} {b}")
        return [(int(a), int(b)) for a, b in indices]
    if digits:
        pairs = []
        for digit_a, digit_b in digits:
            chosen = []
            for digit in (digit_a, digit_b):
                if not 0 <= digit <= 9:
                    raise ZspaceError(f"digits must be 0-9, got {digit}")
                where = (test_labels == digit).nonzero().squeeze(1)
                chosen.append(int(where[torch.randint(len(where), (1,), generator=generator)]))
            pairs.append((chosen[0], chosen[1]))
        return pairs
    if count < 1:
        raise ZspaceError(f"the number of pairs must be at least 1, got {count}")
    pairs = []
    while len(pairs) < count:
        a, b = (int(i) for i in torch.randint(total, (2,), generator=generator))
        if test_labels[a] != test_labels[b]:
            pairs.append((a, b))
    return pairs


def interpolation_paths(
    model,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    pairs: list[tuple[int, int]],
    steps: int = 10,
    classifier=None,
    seed: int = 0,
) -> list[Path]:
    """All paths for each pair: noise paths first (when `model` is a Sampler with a noise
    space, such as a GAN), then the AE path (when there is an autoencoder).

    `model` is a Sampler (GAN, GMM baseline, ...) or a bare Autoencoder.
    """
    if steps < 2:
        raise ZspaceError(f"an interpolation needs at least 2 steps, got {steps}")
    is_sampler = isinstance(model, Sampler)
    has_noise = is_sampler and model.has_noise
    autoencoder = model.autoencoder if is_sampler else model
    paths: list[Path] = []
    for a, b in pairs:
        digit_a, digit_b = int(test_labels[a]), int(test_labels[b])
        image_a, image_b = test_images[a], test_images[b]
        frames = {}
        if has_noise:
            frames.update(gan_paths(model, image_a, image_b, digit_a, digit_b, steps, seed))
        if autoencoder is not None:
            frames["ae"] = ae_path(autoencoder, image_a, image_b, steps)
        for method, path_frames in frames.items():
            paths.append(
                Path(
                    method,
                    (a, b),
                    (digit_a, digit_b),
                    path_frames,
                    measure_path(path_frames, classifier),
                )
            )
    return paths


def summarize_paths(paths: list[Path]) -> dict:
    """Mean of each measure per method."""
    summary: dict = {}
    for method in dict.fromkeys(p.method for p in paths):
        chosen = [p.measures for p in paths if p.method == method]
        keys = [k for k, v in chosen[0].items() if isinstance(v, (int, float))]
        summary[method] = {k: round(sum(m[k] for m in chosen) / len(chosen), 4) for k in keys}
        if "class_changes" in chosen[0]:
            summary[method]["fraction_single_change"] = round(
                sum(m["class_changes"] == 1 for m in chosen) / len(chosen), 4
            )
        summary[method]["paths"] = len(chosen)
    return summary


def path_frames(paths: list[Path]) -> torch.Tensor:
    """The paths' frames, float (P, T, 28, 28): one path a row."""
    return torch.stack([p.frames for p in paths]).squeeze(2)


def save_paths_figure(paths: list[Path], out: str | FilePath) -> FilePath:
    """A PNG with one path a row (frames left to right); returns its path."""
    return save_png(grid_image(path_frames(paths), scale=2), FilePath(out))


def save_paths_arrays(paths: list[Path], out: str | FilePath) -> FilePath:
    """An .npz with `paths` uint8 (P, T, 28, 28), `methods`, `pairs` (P, 2) of test indices
    and `digits` (P, 2); returns its path."""
    frames = path_frames(paths)
    arrays = {
        "paths": to_uint8_images(frames.reshape(-1, 1, 28, 28)).reshape(frames.shape).numpy(),
        "methods": np.array([p.method for p in paths]),
        "pairs": np.array([p.pair for p in paths], dtype=np.int64),
        "digits": np.array([p.digits for p in paths], dtype=np.int64),
    }
    return save_npz(FilePath(out), arrays)
