"""Autoencoder models, run folders, checkpoints, resume and the train-ae/encode/reconstruct CLI."""

from __future__ import annotations

import pytest
import torch

from zspace.checkpoint import load_tensors, save_tensors
from zspace.errors import RunError, ZspaceError
from zspace.models.autoencoder import Autoencoder
from zspace.models.presets import ae_config_for_preset as config_for_preset
from zspace.sampling.latent import load_autoencoder


@pytest.mark.parametrize("preset", ["mlp", "mlp-wide", "conv", "conv-wide"])
def test_presets_map_images_to_codes_and_back(preset):
    model = Autoencoder(config_for_preset(preset, latent_dim=64))
    images = torch.rand(5, 1, 28, 28)
    codes = model.encode(images)
    assert codes.shape == (5, 64)
    reconstructions = model.decode(codes)
    assert reconstructions.shape == (5, 1, 28, 28)
    assert 0 <= reconstructions.min() and reconstructions.max() <= 1


def test_unknown_preset_is_a_user_error():
    with pytest.raises(ZspaceError, match="unknown autoencoder preset"):
        config_for_preset("resnet9000")


def test_checkpoint_round_trip(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_tensors(tmp_path / "x.safetensors", tensors, {"epoch": 3})
    loaded, metadata = load_tensors(tmp_path / "x.safetensors")
    assert metadata["epoch"] == "3"
    assert torch.equal(loaded["a"], tensors["a"]) and torch.equal(loaded["b"], tensors["b"])
    assert not list(tmp_path.glob("*.tmp"))


def test_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(RunError, match="not a zspace run"):
        load_autoencoder(tmp_path)
