"""The autoencoder: an encoder and a decoder chosen by the config's preset name.

`encode` and `decode` are the API everything else uses; the networks themselves live in
`zspace.models.encoders` and `zspace.models.transformer`, the preset table in
`zspace.models.presets`.
"""

from __future__ import annotations

import torch
from torch import nn

from zspace.errors import ZspaceError
from zspace.models.encoders import AutoencoderConfig
from zspace.models.presets import AE_PRESETS


class Autoencoder(nn.Module):
    """Encoder + decoder pair; `encode` and `decode` are the API everything else uses."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        if config.preset not in AE_PRESETS:
            raise ZspaceError(
                f"unknown autoencoder preset {config.preset!r}; choose from {sorted(AE_PRESETS)}"
            )
        encoder_cls, decoder_cls, _ = AE_PRESETS[config.preset]
        self.config = config
        self.encoder = encoder_cls(config)
        self.decoder = decoder_cls(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) floats in [0, 1] -> (B, latent_dim) codes."""
        return self.encoder(images)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) codes -> (B, 1, 28, 28) images in [0, 1]."""
        return self.decoder(codes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))
