"""The transformer autoencoder preset: patches, positional encodings and their ablation,
permutation (in)variance, run folders, resume and the CLI."""

from __future__ import annotations

import pytest
import torch

from zspace.errors import ZspaceError
from zspace.models.autoencoder import Autoencoder
from zspace.models.presets import TRANSFORMER_PRESETS, transformer_config
from zspace.models.presets import ae_config_for_preset as config_for_preset
from zspace.models.transformer import (
    TransformerOptions,
    image_to_patches,
    patches_to_image,
    sinusoidal_positions_2d,
)


def _model(seed: int = 0, **options) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(transformer_config(**options)).eval()


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _shuffle_patches(images: torch.Tensor, patch: int, seed: int = 1) -> torch.Tensor:
    patches = image_to_patches(images, patch)
    order = torch.randperm(patches.shape[1], generator=torch.Generator().manual_seed(seed))
    return patches_to_image(patches[:, order], patch)


@pytest.mark.parametrize(
    "config",
    [config_for_preset(name) for name in TRANSFORMER_PRESETS]
    + [transformer_config(pool="cls"), transformer_config(decoder="transformer")],
    ids=[*TRANSFORMER_PRESETS, "cls", "transformer-decoder"],
)
def test_shapes(config):
    model = Autoencoder(config)
    codes = model.encode(torch.rand(5, 1, 28, 28))
    assert codes.shape == (5, 64)
    reconstructions = model.decode(codes)
    assert reconstructions.shape == (5, 1, 28, 28)
    assert 0 <= reconstructions.min() and reconstructions.max() <= 1


def test_parameter_counts():
    width, ff, patch_pixels = 64, 128, 16
    layer = (3 * width * width + 3 * width) + (width * width + width)  # attention
    layer += 2 * 2 * width  # two LayerNorms
    layer += (width * ff + ff) + (ff * width + width)  # feed-forward
    expected = (patch_pixels * width + width) + 2 * layer + 2 * width + (width * 64 + 64)
    assert expected == 72_320
    assert _count(_model().encoder) == expected
    # sinusoidal encodings are a fixed buffer, the ablation has none: same trainable weights
    assert _count(_model(positional="none").encoder) == expected
    assert _count(_model(positional="learned").encoder) == expected + 49 * width
    assert _count(_model(pool="cls").encoder) == expected + width
    assert _count(_model(patch=7).encoder) == expected + (49 - 16) * width
    # the default decoder is the conv preset's, unchanged
    assert _count(_model().decoder) == _count(Autoencoder(config_for_preset("conv")).decoder)


def test_patches_round_trip_in_grid_order():
    images = torch.rand(3, 1, 28, 28)
    patches = image_to_patches(images, 4)
    assert patches.shape == (3, 49, 16)
    assert torch.equal(patches[:, 0], images[:, 0, :4, :4].reshape(3, 16))
    assert torch.equal(patches[:, 8], images[:, 0, 4:8, 4:8].reshape(3, 16))  # row 1, column 1
    assert torch.equal(patches_to_image(patches, 4), images)
    assert torch.equal(patches_to_image(image_to_patches(images, 7), 7), images)


def test_sinusoidal_encoding_separates_rows_and_columns():
    encoding = sinusoidal_positions_2d(7, 64).view(7, 7, 64)
    # first half depends on the row only, second half on the column only
    assert torch.equal(encoding[:, 0, :32], encoding[:, 5, :32])
    assert torch.equal(encoding[0, :, 32:], encoding[5, :, 32:])
    flat = encoding.reshape(49, 64)
    assert torch.cdist(flat, flat).add(torch.eye(49)).min() > 0.1  # every patch distinct


@pytest.mark.parametrize("kind", ["sinusoidal", "learned"])
def test_positional_encodings_change_the_output_and_ablation_removes_them(kind):
    images = torch.rand(4, 1, 28, 28)
    with_positions = _model(positional=kind)
    ablated = _model(positional="none")
    state = {k: v for k, v in with_positions.state_dict().items() if "positions" not in k}
    ablated.load_state_dict(state)  # the same weights, only the positions differ
    with torch.no_grad():
        assert not torch.allclose(with_positions.encode(images), ablated.encode(images), atol=1e-4)
        # removing the encoding by hand reproduces the ablation exactly
        with_positions.encoder.positions.encoding = None
        assert torch.allclose(with_positions.encode(images), ablated.encode(images), atol=1e-6)


@pytest.mark.parametrize("pool", ["mean", "cls"])
@pytest.mark.parametrize("patch", [4, 7])
def test_shuffling_patches_changes_the_code_only_with_positions(pool, patch):
    images = torch.rand(4, 1, 28, 28)
    shuffled = _shuffle_patches(images, patch)
    assert not torch.equal(images, shuffled)
    with torch.no_grad():
        bag_of_patches = _model(positional="none", pool=pool, patch=patch)
        assert torch.allclose(
            bag_of_patches.encode(images), bag_of_patches.encode(shuffled), atol=1e-5
        )
        for kind in ("sinusoidal", "learned"):
            placed = _model(positional=kind, pool=pool, patch=patch)
            gap = (placed.encode(images) - placed.encode(shuffled)).abs().max()
            assert gap > 1e-3, kind


@pytest.mark.parametrize(
    "options, message",
    [
        ({"positional": "rotary"}, "positional"),
        ({"patch": 5}, "patch"),
        ({"width": 66, "heads": 4}, "divisible"),
        ({"depth": 0}, "depth"),
        ({"colour": "blue"}, "unknown transformer options"),
    ],
)
def test_bad_options_are_user_errors(options, message):
    with pytest.raises(ZspaceError, match=message):
        transformer_config(**options)
    with pytest.raises(ZspaceError, match=message):
        TransformerOptions.from_extra(options)


def test_transformer_config_leaves_the_preset_alone():
    transformer_config(positional="none", depth=3)
    assert config_for_preset("transformer").extra == TransformerOptions().to_extra()
    with pytest.raises(ZspaceError, match="not a transformer preset"):
        transformer_config("conv")


def test_fixed_sinusoids_stay_out_of_weight_files():
    assert not any("positions" in key for key in _model().state_dict())
