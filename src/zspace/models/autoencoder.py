"""Autoencoders that map 28x28 digit images to a `latent_dim` code and back.

Images enter as float tensors in [0, 1] of shape (B, 1, 28, 28); the decoder ends in a sigmoid so
reconstructions live in the same range. Each architecture is a preset name plus a few sizes,
all held in `AutoencoderConfig`, which is saved as JSON beside the weights.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from zspace.errors import ZspaceError

IMAGE_SIZE = 28


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AutoencoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ZspaceError(f"unknown autoencoder config keys: {sorted(unknown)}")
        return cls(**data)


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


# preset name -> (encoder class, decoder class, config overrides)
PRESETS: dict[str, tuple[type[nn.Module], type[nn.Module], dict]] = {
    "mlp": (MLPEncoder, MLPDecoder, {"hidden_dims": [512, 256]}),
    "mlp-wide": (MLPEncoder, MLPDecoder, {"hidden_dims": [1024, 512]}),
    "conv": (ConvEncoder, ConvDecoder, {"channels": [24, 48]}),
    "conv-wide": (ConvEncoder, ConvDecoder, {"channels": [32, 64]}),
}
DEFAULT_PRESET = "conv"


def register_preset(name: str, encoder_cls, decoder_cls, overrides: dict | None = None) -> None:
    """Add an architecture under a preset name (used by optional model modules)."""
    PRESETS[name] = (encoder_cls, decoder_cls, dict(overrides or {}))


def config_for_preset(name: str, latent_dim: int = 64, **overrides) -> AutoencoderConfig:
    """The config a preset name stands for, with optional overrides."""
    _ensure_optional_presets()
    if name not in PRESETS:
        raise ZspaceError(f"unknown autoencoder preset {name!r}; choose from {sorted(PRESETS)}")
    if latent_dim < 1:
        raise ZspaceError(f"latent_dim must be at least 1, got {latent_dim}")
    # Deep copy: configs must never share (and so mutate) a preset's lists and dicts.
    values = copy.deepcopy(
        {"preset": name, "latent_dim": latent_dim, **PRESETS[name][2], **overrides}
    )
    return AutoencoderConfig(**values)


def preset_names() -> list[str]:
    """Every autoencoder preset name, the optional modules' included."""
    _ensure_optional_presets()
    return sorted(PRESETS)


def _ensure_optional_presets() -> None:
    """Import modules that register further presets (kept separate to keep this file small)."""
    try:
        import zspace.models.transformer  # noqa: F401
    except ImportError:
        pass


class Autoencoder(nn.Module):
    """Encoder + decoder pair; `encode` and `decode` are the API everything else uses."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        _ensure_optional_presets()
        if config.preset not in PRESETS:
            raise ZspaceError(
                f"unknown autoencoder preset {config.preset!r}; choose from {sorted(PRESETS)}"
            )
        encoder_cls, decoder_cls, _ = PRESETS[config.preset]
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
