"""A faster, inference-only equivalent of the conv decoder, for bulk sampling on CPU.

PyTorch's CPU ConvTranspose2d is several times slower than Conv2d. A stride-2, kernel-4,
padding-1 transposed convolution equals a 3x3 convolution producing 4 phases per output
channel, followed by a pixel shuffle ("sub-pixel convolution", Shi et al. 2016): output pixel
(2i + a, 2j + b) only ever sees input rows i-1..i+1 and columns j-1..j+1. We rebuild the
decoder's weights in that form once; results match the original to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zspace.models.autoencoder import Autoencoder, ConvDecoder

# For output phase a (row parity), which 3x3 kernel row u takes which 4x4 kernel row kh.
_PHASE_TAPS = {0: {0: 3, 1: 1}, 1: {1: 2, 2: 0}}


def subpixel_weights(layer: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(Cin, Cout, 4, 4) transposed-conv weights -> (4 Cout, Cin, 3, 3) conv weights + bias."""
    if layer.kernel_size != (4, 4) or layer.stride != (2, 2) or layer.padding != (1, 1):
        raise ValueError("only ConvTranspose2d(kernel 4, stride 2, padding 1) is supported")
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


class SubpixelConvDecoder(nn.Module):
    """Same function as a trained `ConvDecoder`, computed with Conv2d + pixel shuffle."""

    def __init__(self, decoder: ConvDecoder):
        super().__init__()
        self.channels = decoder.c2
        linear = decoder.from_code[0]
        self.register_buffer("code_weight", linear.weight.detach().clone())
        self.register_buffer("code_bias", linear.bias.detach().clone())
        up1, up2 = decoder.upsample[0], decoder.upsample[2]
        for name, layer in (("up1", up1), ("up2", up2)):
            weight, bias = subpixel_weights(layer)
            self.register_buffer(f"{name}_weight", weight)
            self.register_buffer(f"{name}_bias", bias)

    @torch.no_grad()
    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(F.linear(codes, self.code_weight, self.code_bias))
        # channels_last lets oneDNN pick its fast convolution kernels on CPU.
        hidden = hidden.view(-1, self.channels, 7, 7).contiguous(memory_format=torch.channels_last)
        hidden = F.relu(
            F.pixel_shuffle(F.conv2d(hidden, self.up1_weight, self.up1_bias, padding=1), 2)
        )
        images = F.pixel_shuffle(F.conv2d(hidden, self.up2_weight, self.up2_bias, padding=1), 2)
        return torch.sigmoid(images).contiguous()


def inference_decoder(autoencoder: Autoencoder) -> nn.Module:
    """The fastest equivalent decoder for inference (the original one if none is known)."""
    decoder = autoencoder.decoder
    if isinstance(decoder, ConvDecoder):
        return SubpixelConvDecoder(decoder).to(next(decoder.parameters()).device)
    return decoder
