"""Random affine augmentation of digit batches, shared by the self-trained classifier and the
contrastive autoencoder preset."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    generator: torch.Generator,
    max_rotation: float = 0.15,
    max_scale: float = 0.1,
    max_shift: float = 2.0,
) -> torch.Tensor:
    """Rotate (radians), scale and shift (pixels) every image of a (B, 1, 28, 28) batch by its
    own random amount, in one grid_sample call. Random numbers come from `generator` (CPU) so
    a seed fixes them on every device."""
    count = len(images)
    angle = (torch.rand(count, generator=generator) * 2 - 1) * max_rotation
    scale = 1 + (torch.rand(count, generator=generator) * 2 - 1) * max_scale
    shift = (torch.rand(count, 2, generator=generator) * 2 - 1) * max_shift / (images.shape[-1] / 2)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) * scale
    theta[:, 0, 1] = -torch.sin(angle) * scale
    theta[:, 1, 0] = torch.sin(angle) * scale
    theta[:, 1, 1] = torch.cos(angle) * scale
    theta[:, :, 2] = shift
    theta = theta.to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
