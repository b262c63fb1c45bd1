"""Faster, inference-only equivalents of the conv decoder and the GAN generator, for bulk
sampling on CPU. Results match the original modules to float rounding.

Decoder. PyTorch's CPU ConvTranspose2d is several times slower than Conv2d. A stride-2,
kernel-4, padding-1 transposed convolution equals a 3x3 convolution producing 4 phases per
output channel, followed by a pixel shuffle ("sub-pixel convolution", Shi et al. 2016): output
pixel (2i + a, 2j + b) only ever sees input rows i-1..i+1 and columns j-1..j+1. The second
upsampling goes one step further: pixel shuffle, then the second transposed convolution, is
again a 3x3 convolution on the 7x7 map, producing the 4x4 = 16 output phases of each 28x28
block, so the 14x14 map is never materialised. Both convolutions then shrink from 3x3 to 2x2
(`two_by_two_weights`), which drops the kernel taps that are always zero. The code-to-map
Linear writes its output directly in channels-last order, which oneDNN's fast convolutions
want, so no copy is needed. On one core, 1,000 images: the original decoder about 58 ms, one
3x3 sub-pixel step per upsampling about 37 ms, these fused 2x2 steps about 32 ms.

Generator. The one-hot label's columns of the first Linear become a per-digit bias added to
the noise's product, the code scaler's affine map is folded into the last Linear, and hidden
activations run in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zspace.models.autoencoder import Autoencoder
from zspace.models.encoders import ConvDecoder

# For output phase a (row parity), which 3x3 kernel row u takes which 4x4 kernel row kh.
_PHASE_TAPS = {0: {0: 3, 1: 1}, 1: {1: 2, 2: 0}}
_IN_PLACE = {
    nn.ReLU: lambda x: x.relu_(),
    nn.LeakyReLU: lambda x, slope=0.2: F.leaky_relu_(x, slope),
    nn.Tanh: lambda x: x.tanh_(),
    nn.Sigmoid: lambda x: x.sigmoid_(),
}


def subpixel_weights(layer: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(Cin, Cout, 4, 4) transposed-conv weights -> (4 Cout, Cin, 3, 3) conv weights + bias."""
    _check_upsampling(layer)
    weight = layer.weight.detach()
    in_channels, out_channels = weight.shape[:2]
    phases = weight.new_zeros(out_channels, 2, 2, in_channels, 3, 3)
    for a, rows in _PHASE_TAPS.items():
        for b, cols in _PHASE_TAPS.items():
            for u, kh in rows.items():
                for v, kw in cols.items():
                    phases[:, a, b, :, u, v] = weight[:, :, kh, kw].t()
    bias = layer.bias.detach() if layer.bias is not None else weight.new_zeros(out_channels)
    return phases.reshape(out_channels * 4, in_channels, 3, 3), bias.repeat_interleave(4)


def _check_upsampling(layer: nn.ConvTranspose2d) -> None:
    if layer.kernel_size != (4, 4) or layer.stride != (2, 2) or layer.padding != (1, 1):
        raise ValueError("only ConvTranspose2d(kernel 4, stride 2, padding 1) is supported")


@torch.no_grad()
def shuffled_subpixel_weights(
    layer: nn.ConvTranspose2d, in_phases: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3x3 convolution equal to pixel_shuffle(in_phases) followed by `layer`.

    Input: (B, Cin * in_phases**2, H, W) phase-major maps; output channels are the
    (2 * in_phases)**2 phases of each of `layer`'s output channels, ready for
    pixel_shuffle(2 * in_phases). Found by linearity: each input channel's unit impulse at the
    centre of a 3x3 map, pushed through the original operations, gives that channel's 3x3
    kernel (every output is a single product with 1.0, so the weights are exact copies).
    """
    _check_upsampling(layer)
    in_channels, out_channels = layer.weight.shape[:2]
    factor = 2 * in_phases
    channels = in_channels * in_phases**2
    impulses = torch.zeros(channels, channels, 3, 3, dtype=layer.weight.dtype)
    impulses[torch.arange(channels), torch.arange(channels), 1, 1] = 1.0
    # (channels, Cout, 3 * factor, 3 * factor): the response to each impulse.
    response = F.conv_transpose2d(
        F.pixel_shuffle(impulses, in_phases), layer.weight.detach().cpu(), stride=2, padding=1
    )
    # Output block (i, j) of the response sees the impulse at offset (1 - i, 1 - j), which is
    # kernel tap (u, v) = (2 - i, 2 - j) of a correlation.
    blocks = response.view(channels, out_channels, 3, factor, 3, factor)
    weight = blocks.permute(1, 3, 5, 0, 2, 4).flip(-1, -2)
    weight = weight.reshape(out_channels * factor * factor, channels, 3, 3)
    bias = layer.bias.detach().cpu() if layer.bias is not None else torch.zeros(out_channels)
    device = layer.weight.device
    return weight.contiguous().to(device), bias.repeat_interleave(factor * factor).to(device)


def two_by_two_weights(
    up1: tuple[torch.Tensor, torch.Tensor], up2: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shrink the two 3x3 sub-pixel convolutions to 2x2 ones on an 8x8 grid.

    Phase (a, b) of the first upsampling only uses kernel rows a..a+1 and columns b..b+1 of
    its 3x3 kernel (the others are zero), so a 2x2 convolution with padding 1 computes it at
    position (i + a, j + b) of an 8x8 grid. The second convolution, reading that grid, then
    needs only a 2x2 window too. Grid cells that stand for rows or columns outside the 14x14
    map (row 0 for a = 1, row 7 for a = 0; likewise columns) must read as zero: `mask`.
    Returns (first weight, second weight, mask (C, 8, 8)); the biases are unchanged.
    """
    weight1, weight2 = up1[0], up2[0]
    channels = weight1.shape[0]  # 4 phases per channel, phase index = a * 2 + b
    small1 = weight1.new_empty(channels, weight1.shape[1], 2, 2)
    small2 = weight2.new_empty(weight2.shape[0], channels, 2, 2)
    mask = weight1.new_ones(channels, 8, 8)
    for channel in range(channels):
        a, b = channel % 4 // 2, channel % 2
        small1[channel] = weight1[channel, :, a : a + 2, b : b + 2]
        small2[:, channel] = weight2[:, channel, 1 - a : 3 - a, 1 - b : 3 - b]
        mask[channel, 7 - 7 * a, :] = 0
        mask[channel, :, 7 - 7 * b] = 0
    return small1, small2, mask


class SubpixelConvDecoder(nn.Module):
    """Same function as a trained `ConvDecoder`, computed with two small Conv2d + one pixel
    shuffle."""

    def __init__(self, decoder: ConvDecoder):
        super().__init__()
        channels = decoder.c2
        linear = decoder.from_code[0]
        # Reorder the Linear's rows from (C, 7, 7) to (7, 7, C): its output is then an NHWC
        # (channels-last) map without a copy.
        order = torch.arange(channels * 49).view(channels, 7, 7).permute(1, 2, 0).reshape(-1)
        self.channels = channels
        self.register_buffer("code_weight", linear.weight.detach()[order].clone())
        self.register_buffer("code_bias", linear.bias.detach()[order].clone())
        up1 = subpixel_weights(decoder.upsample[0])
        up2 = shuffled_subpixel_weights(decoder.upsample[2])
        weight1, weight2, mask = two_by_two_weights(up1, up2)
        last = torch.channels_last
        self.register_buffer("up1_weight", weight1.contiguous(memory_format=last))
        self.register_buffer("up1_bias", up1[1])
        self.register_buffer("up2_weight", weight2.contiguous(memory_format=last))
        self.register_buffer("up2_bias", up2[1])
        self.register_buffer("grid_mask", mask[None].contiguous(memory_format=last))

    @torch.no_grad()
    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden = F.linear(codes, self.code_weight, self.code_bias).relu_()
        hidden = hidden.view(-1, 7, 7, self.channels).permute(0, 3, 1, 2)  # NCHW view of NHWC
        # (B, 4 * c1, 8, 8): the four 14x14 phases of the first upsampling, kept unshuffled.
        hidden = F.conv2d(hidden, self.up1_weight, self.up1_bias, padding=1).relu_()
        hidden.mul_(self.grid_mask)
        # (B, 16, 7, 7): the 4x4 phases of each 28x28 block.
        phases = F.conv2d(hidden, self.up2_weight, self.up2_bias)
        return F.pixel_shuffle(phases.contiguous(), 4).sigmoid_()


class FastGenerator(nn.Module):
    """Same function as scaler.inverse(generator(noise, labels)), for integer labels or none."""

    def __init__(self, generator: nn.Module, scaler: nn.Module):
        super().__init__()
        config = generator.config
        if config.base != "none":
            raise ValueError("FastGenerator does not fold a Gaussian base")
        linears = [m for m in generator.layers if isinstance(m, nn.Linear)]
        if len(linears) < 2 or not isinstance(generator.layers[-1], nn.Linear):
            raise ValueError("FastGenerator needs an MLP ending in a Linear")
        self.noise_dim = config.noise_dim
        self.conditional = config.conditional
        first = linears[0]
        self.first_weight = first.weight.detach()[:, : config.noise_dim].clone()
        # (num_classes, width): label d's one-hot column plus the bias.
        if config.conditional:
            label_columns = first.weight.detach()[:, config.noise_dim :].t()
            self.digit_bias = label_columns + first.bias.detach()
        else:
            self.digit_bias = first.bias.detach()[None].clone()
        self.steps: list = []  # (weight, bias) or an in-place activation, in order
        for module in list(generator.layers)[1:-1]:
            if isinstance(module, nn.Linear):
                self.steps.append((module.weight.detach(), module.bias.detach()))
            elif type(module) in _IN_PLACE:
                slope = getattr(module, "negative_slope", None)
                self.steps.append(
                    _IN_PLACE[type(module)]
                    if slope is None
                    else (lambda x, s=slope: F.leaky_relu_(x, s))
                )
            else:
                raise ValueError(f"FastGenerator does not know {type(module).__name__}")
        last = generator.layers[-1]
        scale, mean = scaler.scale.detach(), scaler.mean.detach()
        self.last_weight = last.weight.detach() * scale[:, None]
        self.last_bias = last.bias.detach() * scale + mean

    @torch.no_grad()
    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        hidden = F.linear(noise, self.first_weight)
        hidden += self.digit_bias[labels] if self.conditional else self.digit_bias
        for step in self.steps:
            hidden = F.linear(hidden, *step) if isinstance(step, tuple) else step(hidden)
        return F.linear(hidden, self.last_weight, self.last_bias)


def inference_decoder(autoencoder: Autoencoder) -> nn.Module:
    """The fastest equivalent decoder for inference (the original one if none is known)."""
    decoder = autoencoder.decoder
    if isinstance(decoder, ConvDecoder):
        return SubpixelConvDecoder(decoder).to(next(decoder.parameters()).device)
    return decoder
