"""Label-free perturbations of digits and the robustness table built from them."""

from __future__ import annotations

import pytest
import torch

from zspace.fewshot.robustness import (
    low_resolution,
    perturbations,
    robustness_table,
    rotate,
    shift,
    thicken,
    thin,
)


def digits(count: int = 6) -> torch.Tensor:
    """Random blobby digits: float (count, 1, 28, 28) in [0, 1], blank borders."""
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(count, 1, 28, 28)
    images[:, :, 6:22, 8:20] = torch.rand(count, 1, 16, 12, generator=generator)
    return images


@pytest.mark.parametrize("name", list(perturbations()))
def test_every_perturbation_keeps_shape_and_range(name):
    images = digits()
    perturbed = perturbations()[name](images)
    assert perturbed.shape == images.shape and perturbed.dtype == images.dtype
    assert perturbed.min() >= 0 and perturbed.max() <= 1
    if name != "none":
        assert not torch.equal(perturbed, images), name


def test_zero_shift_and_zero_rotation_are_the_identity():
    images = digits()
    assert torch.equal(shift(images, 0, 0), images)
    assert torch.allclose(rotate(images, 0), images, atol=1e-5)


def test_shift_moves_pixels_and_blanks_the_edge():
    images = torch.zeros(1, 1, 28, 28)
    images[0, 0, 14, 14] = 1
    moved = shift(images, -2, 3)  # up 2, right 3
    assert moved[0, 0, 12, 17] == 1 and moved.sum() == 1
    full = torch.ones(1, 1, 28, 28)
    assert shift(full, 0, 3)[..., :3].sum() == 0 and shift(full, 0, 3)[..., 3:].min() == 1


def test_rotation_turns_counterclockwise():
    images = torch.zeros(1, 1, 28, 28)
    images[0, 0, 13:15, 22:24] = 1  # right of the centre
    turned = rotate(images, 90)
    row, column = divmod(int(turned.argmax()), 28)
    assert row < 8 and 12 <= column <= 15  # now above it


def test_dilation_adds_ink_and_erosion_removes_it():
    images = digits()
    ink = images.sum((1, 2, 3))
    assert (thicken(images).sum((1, 2, 3)) > ink).all()
    assert (thin(images).sum((1, 2, 3)) < ink).all()
    assert (thicken(images) >= images).all() and (thin(images) <= images).all()


def test_low_resolution_round_trip_keeps_a_constant_image():
    constant = torch.full((3, 1, 28, 28), 0.37)
    assert torch.allclose(low_resolution(constant), constant, atol=1e-6)


def test_robustness_table_scores_each_perturbation():
    images = digits(10)  # ink in rows 6-21, columns 8-19
    labels = torch.zeros(10, dtype=torch.int64)

    def classify(batch):
        # a "classifier" that is right (0) exactly when the top-left 8x8 corner is blank
        return (batch[:, 0, :8, :8].sum((1, 2)) > 0).long()

    uint8_images = (images * 255).round().to(torch.uint8)[:, 0]
    rows = robustness_table(classify, uint8_images, labels, batch_size=4)
    by_name = {row["perturbation"]: row["accuracy"] for row in rows}
    assert list(by_name) == list(perturbations())
    assert by_name["none"] == 1.0 and by_name["shift 1 px up"] == 1.0
    assert by_name["shift 3 px left"] == 0.0  # ink reaches the corner
    assert all(0 <= accuracy <= 1 for accuracy in by_name.values())
