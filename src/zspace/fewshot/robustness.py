"""How a classifier's accuracy holds up under label-free changes of the digits: small shifts and
rotations, thicker and thinner strokes, and a low-resolution round trip.

Every perturbation is a batched torch op on float images (N, 1, 28, 28) in [0, 1] that keeps
their shape and range, so a whole test set is perturbed in a few calls on any device.

    from zspace.fewshot.classify import load_classifier
    classifier = load_classifier("runs/clf")
    rows = robustness_table(lambda x: classifier.classify(x)[0], images, labels)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from zspace.models.images import to_float_images

LOW_RESOLUTION = 8  # side of the downsampled image in the round trip
SHIFTS = (1, 2, 3)  # pixels
ROTATIONS = (-15, -10, -5, 5, 10, 15)  # degrees, counterclockwise
# (rows down, columns right) per pixel of shift.
DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}


def shift(images: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """Move the digits `down` rows and `right` columns (negative: up, left); the pixels moved
    in are blank, those moved out are lost."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (abs(right), abs(right), abs(down), abs(down)))
    top, left = abs(down) - down, abs(right) - right
    return padded[..., top : top + height, left : left + width]


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate the digits `degrees` counterclockwise about the image centre (bilinear, blank
    corners)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid maps output to input coordinates (x right, y down): sampling the input at
    # the output point turned clockwise on screen turns the digit counterclockwise.
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=images.dtype)
    theta = theta.to(images.device).expand(len(images), 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    rotated = F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
    return rotated.clamp(0, 1)


def thicken(images: torch.Tensor) -> torch.Tensor:
    """Grey dilation by a 3x3 square: each pixel takes the brightest of its neighbourhood."""
    return F.max_pool2d(images, 3, stride=1, padding=1)


def thin(images: torch.Tensor) -> torch.Tensor:
    """Grey erosion by a 3x3 square: each pixel takes the darkest of its neighbourhood."""
    return -F.max_pool2d(-images, 3, stride=1, padding=1)


def low_resolution(images: torch.Tensor, side: int = LOW_RESOLUTION) -> torch.Tensor:
    """Average down to side x side, then bilinear back up to the original size."""
    small = F.interpolate(images, size=(side, side), mode="area")
    restored = F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return restored.clamp(0, 1)


def perturbations() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Every perturbation of the table by name, in table order (the first is none at all)."""
    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"none": lambda x: x}
    for pixels in SHIFTS:
        for direction, (down, right) in DIRECTIONS.items():
            table[f"shift {pixels} px {direction}"] = partial(
                shift, down=down * pixels, right=right * pixels
            )
    for degrees in ROTATIONS:
        table[f"rotate {degrees:+d}°"] = partial(rotate, degrees=degrees)
    table["thicker strokes (3x3 dilation)"] = thicken
    table["thinner strokes (3x3 erosion)"] = thin
    table[f"{LOW_RESOLUTION}x{LOW_RESOLUTION} and back"] = low_resolution
    return table


@torch.no_grad()
def robustness_table(
    classify: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int = 2000,
) -> list[dict]:
    """Accuracy of `classify` under each perturbation: [{"perturbation", "accuracy"}, ...].

    Args:
        classify: float images (B, 1, 28, 28) in [0, 1] -> predicted digits (B,).
        images: uint8 (N, 28, 28) or float (N, 1, 28, 28) in [0, 1], light digits on dark.
        labels: the true digits (N,).
    """
    labels = torch.as_tensor(labels).cpu()
    images = to_float_images(torch.as_tensor(images))
    rows = []
    for name, perturb in perturbations().items():
        correct = 0
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            predicted = torch.as_tensor(classify(perturb(batch))).cpu()
            correct += int((predicted == labels[start : start + batch_size]).sum())
        rows.append({"perturbation": name, "accuracy": correct / len(images)})
    return rows
