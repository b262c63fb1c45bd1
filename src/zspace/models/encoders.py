"""The encoder and decoder networks of the MLP and convolutional autoencoders, and the config
that every autoencoder is rebuilt from.

Images enter as float tensors in [0, 1] of shape (B, 1, 28, 28); the decoders end in a sigmoid
so reconstructions live in the same range. Each architecture is a preset name plus a few sizes,
all held in `AutoencoderConfig`, which is saved as JSON beside the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from zspace import config_checks as check
from zspace.models.images import IMAGE_SIZE


@dataclass
class AutoencoderConfig:
    """Everything needed to rebuild an autoencoder without the training code."""

    preset: str = "conv"
    latent_dim: int = 64
    # mlp: widths of the encoder's hidden layers (the decoder mirrors them).
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256])
    # conv: channels after each stride-2 convolution (28 -> 14 -> 7).
    channels: list[int] = field(default_factory=lambda: [24, 48])
    # transformer options (used by the transformer preset only).
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        # Shapes only: the preset table (models.presets) and the transformer options are
        # checked where the network is built, since this module sits below them.
        check.text("autoencoder preset", self.preset)
        check.whole_number("latent_dim", self.latent_dim, 1, check.MAX_LATENT_DIM)
        check.whole_numbers("hidden_dims", self.hidden_dims, 1, check.MAX_WIDTH)
        check.whole_numbers("channels", self.channels, 1, check.MAX_CHANNELS, range(2, 3))
        check.mapping("extra", self.extra)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AutoencoderConfig:
        """The config from its JSON form; ZspaceError on unknown keys or bad values."""
        return cls(**check.known_keys_only("autoencoder config", data, cls))


def mlp_block(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(inplace=True))


class MLPEncoder(nn.Module):
    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        dims = [IMAGE_SIZE * IMAGE_SIZE, *config.hidden_dims]
        self.layers = nn.Sequential(
            nn.Flatten(),
            *[mlp_block(a, b) for a, b in zip(dims[:-1], dims[1:])],
            nn.Linear(dims[-1], config.latent_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class MLPDecoder(nn.Module):
    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        dims = [config.latent_dim, *reversed(config.hidden_dims)]
        self.layers = nn.Sequential(
            *[mlp_block(a, b) for a, b in zip(dims[:-1], dims[1:])],
            nn.Linear(dims[-1], IMAGE_SIZE * IMAGE_SIZE),
            nn.Sigmoid(),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.layers(codes).view(-1, 1, IMAGE_SIZE, IMAGE_SIZE)


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions (28 -> 14 -> 7), then a linear map to the code."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        c1, c2 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        self.to_code = nn.Linear(c2 * 7 * 7, config.latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.features(images))


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder with transposed convolutions (7 -> 14 -> 28)."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        c1, c2 = config.channels
        self.c2 = c2
        self.from_code = nn.Sequential(nn.Linear(config.latent_dim, c2 * 7 * 7), nn.ReLU(True))
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden = self.from_code(codes).view(-1, self.c2, 7, 7)
        return self.upsample(hidden)
