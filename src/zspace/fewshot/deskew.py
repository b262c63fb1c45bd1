"""Deskewing: shear each digit upright and centre it by its centre of mass.

The classic MNIST preprocessing (LeCun et al. 1998 list deskewed variants): the slant of a
digit says little about its class, and removing it makes plain Euclidean distances between
images far more meaningful (1-NN test error on PCA-50 pixels drops from about 2.8% to 1.6%).
Uses only the image itself, so it is as legitimate on test images as on training images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zspace.models.images import to_float_images


def deskew(images: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
    """uint8 (N, 28, 28) or float (N, 1, 28, 28) images -> float (N, 1, 28, 28) in [0, 1],
    sheared so the second-moment slant is zero and shifted so the centre of mass is central."""
    result = torch.empty(len(images), 1, 28, 28, device=images.device)  # no list-then-cat copy
    for start in range(0, len(images), batch_size):
        result[start : start + batch_size] = _deskew_batch(
            to_float_images(images[start : start + batch_size])
        )
    return result


def _deskew_batch(images: torch.Tensor) -> torch.Tensor:
    count, _, height, width = images.shape
    pixels = images[:, 0]
    ys = torch.arange(height, dtype=images.dtype, device=images.device).view(1, height, 1)
    xs = torch.arange(width, dtype=images.dtype, device=images.device).view(1, 1, width)
    mass = pixels.sum((1, 2)).clamp_min(1e-6)
    centre_y = (pixels * ys).sum((1, 2)) / mass
    centre_x = (pixels * xs).sum((1, 2)) / mass
    dy = ys - centre_y.view(-1, 1, 1)
    dx = xs - centre_x.view(-1, 1, 1)
    var_y = (pixels * dy * dy).sum((1, 2)) / mass
    cov_xy = (pixels * dx * dy).sum((1, 2)) / mass
    skew = cov_xy / var_y.clamp_min(1e-3)
    # affine_grid works in [-1, 1] coordinates (align_corners=True: pixel i at -1 + 2i/(W-1)).
    # Output pixel (x, y) samples the input at (x + skew*y + shift_x, y + shift_y).
    half_x, half_y = (width - 1) / 2, (height - 1) / 2
    theta = torch.zeros(count, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = 1.0
    theta[:, 0, 1] = skew * half_y / half_x
    theta[:, 0, 2] = (centre_x - half_x) / half_x
    theta[:, 1, 1] = 1.0
    theta[:, 1, 2] = (centre_y - half_y) / half_y
    grid = F.affine_grid(theta, list(images.shape), align_corners=True)
    return F.grid_sample(images, grid, align_corners=True, padding_mode="zeros")
