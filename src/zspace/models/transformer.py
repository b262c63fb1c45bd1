"""A transformer autoencoder: self-attention over image patches with 2-D positional encodings.

The encoder cuts the 28x28 image into square patches (4x4 -> a 7x7 grid of 49 patches, or
7x7 -> 16 patches), embeds each patch linearly, adds a positional encoding that says in which
row and column the patch sits, runs a small stack of pre-norm transformer encoder layers and
pools the tokens into the latent code. Attention links every patch with every other one and is
blind to their order, so without the positional encoding the encoder sees the image as a bag
of patches: with mean pooling it is then exactly invariant to shuffling them. The `positional`
option (and the `transformer-nopos` preset) removes the encoding so that users can measure
what position information buys.

All options live in `AutoencoderConfig.extra` (see `TransformerOptions`), so a run folder's
config.json is enough to rebuild the model. The default decoder is the convolutional one from
`zspace.models.encoders`, so that preset comparisons differ in the encoder only; a mirrored
transformer decoder is available as `decoder: "transformer"`. Measured on MNIST with one CPU
thread, the mirrored decoder reached a slightly lower loss after the same number of steps but
took about 1.9x as long per step, and at equal wall-clock time it was no better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from zspace import config_checks as check
from zspace.errors import ZspaceError
from zspace.models.encoders import AutoencoderConfig, ConvDecoder
from zspace.models.images import IMAGE_SIZE

POSITIONAL_KINDS = ("sinusoidal", "learned", "none")
POOLING_KINDS = ("mean", "cls")
DECODER_KINDS = ("conv", "transformer")
PATCH_SIZES = (4, 7)  # the sizes that tile 28x28 exactly into a small grid
# 16 times the default width and 8 times its depth: the largest allowed is about 1.3 GB of
# weights, beyond any use on 28x28 digits.
MAX_TOKEN_WIDTH = 1024
MAX_DEPTH = 16


@dataclass
class TransformerOptions:
    """The transformer preset's sizes, read from `AutoencoderConfig.extra` (missing keys take
    these defaults, so configs written by older versions still load)."""

    patch: int = 4  # patch side in pixels: 4 (49 patches) or 7 (16 patches)
    width: int = 64  # token dimension
    depth: int = 2  # transformer encoder layers (the transformer decoder uses the same)
    heads: int = 4  # attention heads per layer
    mlp_ratio: int = 2  # feed-forward width = mlp_ratio * width
    positional: str = "sinusoidal"  # sinusoidal | learned | none
    pool: str = "mean"  # mean over patch tokens, or a learned CLS token
    decoder: str = "conv"  # conv (ConvDecoder) or transformer (mirrored)

    @property
    def grid(self) -> int:
        """Patches per image side."""
        return IMAGE_SIZE // self.patch

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @classmethod
    def from_extra(cls, extra: dict | None) -> TransformerOptions:
        """Validated options from a config's `extra` dict; ZspaceError on a bad key or value."""
        extra = dict(check.mapping("transformer options", extra or {}))
        known = {f.name for f in fields(cls)}
        unknown = set(extra) - known
        if unknown:
            raise ZspaceError(
                f"unknown transformer options {sorted(unknown)}; known: {sorted(known)}"
            )
        options = cls(**extra)
        options.validate()
        return options

    def validate(self) -> None:
        check.whole_number("transformer patch", self.patch, 1, IMAGE_SIZE)
        if self.patch not in PATCH_SIZES:
            raise ZspaceError(f"transformer patch must be one of {PATCH_SIZES}, got {self.patch}")
        check.whole_number("transformer width", self.width, 1, MAX_TOKEN_WIDTH)
        check.whole_number("transformer depth", self.depth, 1, MAX_DEPTH)
        check.whole_number("transformer heads", self.heads, 1, MAX_TOKEN_WIDTH)
        check.whole_number("transformer mlp_ratio", self.mlp_ratio, 1, 8)
        if self.width % self.heads:
            raise ZspaceError(
                f"transformer width {self.width} must be divisible by heads {self.heads}"
            )
        if self.positional == "sinusoidal" and self.width % 4:
            # half the channels encode the row, half the column, each as sin/cos pairs
            raise ZspaceError(f"sinusoidal positions need a width divisible by 4, got {self.width}")
        for name, allowed in (
            ("positional", POSITIONAL_KINDS),
            ("pool", POOLING_KINDS),
            ("decoder", DECODER_KINDS),
        ):
            if getattr(self, name) not in allowed:
                raise ZspaceError(
                    f"transformer {name} must be one of {allowed}, got {getattr(self, name)!r}"
                )

    def to_extra(self) -> dict:
        return asdict(self)


def image_to_patches(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, 1, 28, 28) -> (B, num_patches, patch*patch), patches in row-major grid order."""
    grid = IMAGE_SIZE // patch
    batch = images.shape[0]
    blocks = images.reshape(batch, grid, patch, grid, patch)
    return blocks.permute(0, 1, 3, 2, 4).reshape(batch, grid * grid, patch * patch)


def patches_to_image(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """Inverse of `image_to_patches`: (B, num_patches, patch*patch) -> (B, 1, 28, 28)."""
    grid = IMAGE_SIZE // patch
    batch = patches.shape[0]
    blocks = patches.reshape(batch, grid, grid, patch, patch)
    return blocks.permute(0, 1, 3, 2, 4).reshape(batch, 1, IMAGE_SIZE, IMAGE_SIZE)


def sinusoidal_positions_2d(grid: int, width: int) -> torch.Tensor:
    """(grid*grid, width) fixed encodings: the first half of the channels encodes the row, the
    second half the column, each as sin/cos at geometrically spaced frequencies (the 1-D scheme
    of Vaswani et al. 2017, applied per axis as in MAE/ViT 2-D sin-cos embeddings)."""
    half = width // 2
    frequencies = 1.0 / (10_000 ** (torch.arange(0, half, 2, dtype=torch.float64) / half))
    positions = torch.arange(grid, dtype=torch.float64)
    angles = positions[:, None] * frequencies[None, :]  # (grid, half/2)
    per_axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # (grid, half)
    rows = per_axis[:, None, :].expand(grid, grid, half)
    columns = per_axis[None, :, :].expand(grid, grid, half)
    return torch.cat([rows, columns], dim=2).reshape(grid * grid, width).float()


class PatchPositions(nn.Module):
    """Adds a positional encoding to patch tokens: fixed sinusoidal, learned, or nothing."""

    def __init__(self, kind: str, num_patches: int, width: int):
        super().__init__()
        self.kind = kind
        if kind == "sinusoidal":
            grid = math.isqrt(num_patches)
            # not persistent: it is a function of the config, so it stays out of weight files
            self.register_buffer("encoding", sinusoidal_positions_2d(grid, width), persistent=False)
        elif kind == "learned":
            self.encoding = nn.Parameter(torch.randn(num_patches, width) * 0.02)
        else:
            self.encoding = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, num_patches, width) -> same shape, position added."""
        if self.encoding is None:
            return tokens
        return tokens + self.encoding


def transformer_stack(options: TransformerOptions) -> nn.TransformerEncoder:
    """`depth` pre-norm encoder layers with a final LayerNorm; no dropout (small models, short
    training, and it keeps eval and train passes identical)."""
    layer = nn.TransformerEncoderLayer(
        d_model=options.width,
        nhead=options.heads,
        dim_feedforward=options.mlp_ratio * options.width,
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(
        layer,
        num_layers=options.depth,
        norm=nn.LayerNorm(options.width),
        enable_nested_tensor=False,  # not supported with norm_first; silences a warning
    )


class TransformerEncoder(nn.Module):
    """Patches -> tokens (+ positions) -> transformer layers -> pooled -> latent code."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        options = TransformerOptions.from_extra(config.extra)
        self.options = options
        self.embed = nn.Linear(options.patch * options.patch, options.width)
        self.positions = PatchPositions(options.positional, options.num_patches, options.width)
        # The CLS token carries no position: it is the one token that is not a place in the image.
        self.cls_token = (
            nn.Parameter(torch.randn(1, 1, options.width) * 0.02) if options.pool == "cls" else None
        )
        self.layers = transformer_stack(options)
        self.to_code = nn.Linear(options.width, config.latent_dim)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) -> (B, num_patches, width) embedded patches with positions added."""
        return self.positions(self.embed(image_to_patches(images, self.options.patch)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(images)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        hidden = self.layers(tokens)
        pooled = hidden[:, 0] if self.cls_token is not None else hidden.mean(dim=1)
        return self.to_code(pooled)


class TransformerDecoder(nn.Module):
    """Mirror of the encoder: the code is mapped linearly to one token per patch (the map
    itself places each token, so no positional switch is needed here), transformer layers
    mix them, and each token is projected back to its patch's pixels."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        options = TransformerOptions.from_extra(config.extra)
        self.options = options
        self.from_code = nn.Linear(config.latent_dim, options.num_patches * options.width)
        self.layers = transformer_stack(options)
        self.to_pixels = nn.Linear(options.width, options.patch * options.patch)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        tokens = self.from_code(codes).view(len(codes), self.options.num_patches, -1)
        patches = torch.sigmoid(self.to_pixels(self.layers(tokens)))
        return patches_to_image(patches, self.options.patch)


def build_decoder(config: AutoencoderConfig) -> nn.Module:
    """The decoder the `decoder` option names (a preset registers one decoder factory)."""
    if TransformerOptions.from_extra(config.extra).decoder == "transformer":
        return TransformerDecoder(config)
    return ConvDecoder(config)
