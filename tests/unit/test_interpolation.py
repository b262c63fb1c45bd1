"""Interpolation paths (AE codes, GAN noise linear/spherical, conditional label), their
measures, and `zspace interpolate`."""

from __future__ import annotations

import pytest
import torch

from zspace.sampling.interpolation import (
    interpolate_latents,
    measure_path,
    slerp,
)


def test_linear_interpolation_hits_both_ends_evenly():
    a, b = torch.zeros(4), torch.ones(4) * 2
    path = interpolate_latents(a, b, 5)
    assert path.shape == (5, 4)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], torch.ones(4))


def test_slerp_keeps_the_norm_and_ends():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=generator), torch.randn(64, generator=generator)
    b = b / b.norm() * a.norm()
    path = slerp(a, b, 9)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    norms = path.norm(dim=1)
    assert torch.allclose(norms, norms[0].expand(9), rtol=1e-4)
    # Linear interpolation between two random Gaussian vectors shrinks in the middle.
    assert interpolate_latents(a, b, 9)[4].norm() < 0.8 * norms[4]
    # Equal directions fall back to the linear path.
    assert torch.allclose(slerp(a, 2 * a, 3)[1], 1.5 * a)


def test_measure_path_on_a_synthetic_path():
    class ThresholdClassifier:
        """Class 0 for dark images, 1 for bright ones."""

        def predict(self, images):
            bright = images.reshape(len(images), -1).mean(1) > 0.5
            probs = torch.stack([(~bright).float(), bright.float()], 1)
            probs = torch.cat([probs, torch.zeros(len(images), 8)], 1)
            return bright.long(), probs

    frames = torch.linspace(0, 1, 6).view(6, 1, 1, 1).expand(6, 1, 28, 28)
    measures = measure_path(frames, ThresholdClassifier())
    assert measures["class_changes"] == 1
    assert measures["step_cv"] == pytest.approx(0.0, abs=1e-5)  # equal steps
    assert measures["middle_confidence"] == pytest.approx(1.0)
    uneven = torch.tensor([0, 0.05, 0.1, 0.9, 1.0]).view(5, 1, 1, 1).expand(5, 1, 28, 28)
    assert measure_path(uneven)["step_cv"] > 0.5
