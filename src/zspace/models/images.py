"""The image conventions every model shares: 28x28, uint8 on disk, float in [0, 1] inside."""

from __future__ import annotations

import torch

IMAGE_SIZE = 28


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 28, 28) -> float (B, 1, 28, 28) in [0, 1]."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255.0)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    return images


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """float (B, 1, 28, 28) in [0, 1] -> uint8 (B, 28, 28), rounded."""
    return images.detach().clamp(0, 1).mul(255).round().to(torch.uint8).reshape(-1, 28, 28).cpu()
