"""The contrastive term of the conv-contrastive preset: its loss, settings and CLI defaults."""

from __future__ import annotations

import pytest
import torch

from zspace.errors import ZspaceError
from zspace.models.autoencoder import Autoencoder
from zspace.models.presets import ae_config_for_preset, ae_training_defaults
from zspace.training.autoencoder import AETrainingConfig, TwoViewAutoencoder, contrastive_loss


def test_matched_views_cost_less_than_mismatched_ones():
    generator = torch.Generator().manual_seed(0)
    codes = torch.randn(32, 16, generator=generator)
    noisy = codes + 0.05 * torch.randn(32, 16, generator=generator)
    shuffled = noisy[torch.randperm(32, generator=generator)]
    assert contrastive_loss(codes, noisy, 0.3) < contrastive_loss(codes, shuffled, 0.3) - 2.0
    assert contrastive_loss(codes, noisy, 0.05) < 0.01  # a sharp temperature: no doubt left


def test_the_loss_is_the_cross_entropy_of_picking_the_partner():
    # Two orthogonal pairs, each view identical to its partner: with 2B - 1 = 3 candidates the
    # partner has similarity 1/T and the other two 0, so the loss is log(e^(1/T) + 2) - 1/T.
    codes = torch.eye(2, 4)
    temperature = 0.5
    expected = torch.log(torch.exp(torch.tensor(2.0)) + 2) - 2.0
    assert torch.isclose(contrastive_loss(codes, codes.clone(), temperature), expected)


def test_two_view_forward_returns_reconstructions_and_both_views_codes():
    model = Autoencoder(ae_config_for_preset("conv-contrastive", latent_dim=8))
    images = torch.rand(5, 1, 28, 28)
    reconstructions, first, second = TwoViewAutoencoder(model)(images, images, images.flip(3))
    assert reconstructions.shape == images.shape
    assert first.shape == second.shape == (5, 8)
    assert torch.allclose(first, model.encode(images), atol=1e-5)


def test_the_preset_turns_the_term_on_and_others_leave_it_off():
    settings = ae_training_defaults("conv-contrastive")
    assert settings["contrastive_weight"] > 0
    assert AETrainingConfig(**settings).contrastive_weight == settings["contrastive_weight"]
    assert ae_training_defaults("conv") == {}
    assert AETrainingConfig().contrastive_weight == 0.0


@pytest.mark.parametrize(
    "settings", [{"contrastive_weight": -0.1}, {"contrastive_temperature": 0.0}]
)
def test_bad_contrastive_settings_are_refused_in_one_line(settings):
    with pytest.raises(ZspaceError, match="contrastive") as error:
        AETrainingConfig(**settings)
    assert "\n" not in str(error.value)
