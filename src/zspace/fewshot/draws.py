"""Reproducible draws of the small labelled set from the training split.

Draw r of a study with seed s depends only on (s, r, the labels and the draw rule), so every
pipeline and every head of a study sees exactly the same labelled images, and a rerun sees them
again.
"""

from __future__ import annotations

import torch

from zspace.errors import ZspaceError


def _generator(seed: int, draw: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(draw))


def draw_labelled(
    labels: torch.Tensor,
    count: int | None = None,
    per_class: int | None = None,
    seed: int = 0,
    draw: int = 0,
    num_classes: int = 10,
) -> torch.Tensor:
    """Indices (into the training set) of one labelled draw.

    `count` images uniformly at random without replacement (as in the reference study), or
    `per_class` images of each class (a balanced draw); exactly one of the two is given.
    """
    if (count is None) == (per_class is None):
        raise ZspaceError("give either a label count or a per-class count, not both or neither")
    generator = _generator(seed, draw)
    labels = labels.cpu()
    if count is not None:
        if not 1 <= count <= len(labels):
            raise ZspaceError(
                f"cannot draw {count} labelled images from {len(labels)} training images"
            )
        return torch.randperm(len(labels), generator=generator)[:count]
    if per_class < 1:
        raise ZspaceError(f"--per-class must be at least 1, got {per_class}")
    chosen = []
    for label in range(num_classes):
        members = torch.nonzero(labels == label).squeeze(1)
        if len(members) < per_class:
            raise ZspaceError(
                f"class {label} has only {len(members)} training images, fewer than --per-class {per_class}"
            )
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    # Shuffle so that the order does not encode the class.
    order = torch.randperm(per_class * num_classes, generator=generator)
    return torch.cat(chosen)[order]


def draw_many(
    labels: torch.Tensor,
    draws: int,
    count: int | None = None,
    per_class: int | None = None,
    seed: int = 0,
    num_classes: int = 10,
) -> torch.Tensor:
    """(draws, N) index tensor: draw r is `draw_labelled(..., seed=seed, draw=r)`."""
    if draws < 1:
        raise ZspaceError(f"--draws must be at least 1, got {draws}")
    return torch.stack(
        [
            draw_labelled(labels, count, per_class, seed=seed, draw=r, num_classes=num_classes)
            for r in range(draws)
        ]
    )
