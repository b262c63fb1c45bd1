"""Bytes in and out of the web API: PNG encoding of digit images, decoding of uploads."""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np
import torch
from PIL import Image

from zspace.errors import ZspaceError
from zspace.fewshot.classify import MAX_IMAGE_PIXELS, open_image, prepare_image
from zspace.figures import grid_image
from zspace.models.images import to_uint8_images

MAX_UPLOAD_BYTES = 1_000_000
# A 1 MB PNG of a flat colour can claim to be gigapixels: the limit `zspace classify` applies.
MAX_UPLOAD_PIXELS = MAX_IMAGE_PIXELS


class UploadTooLarge(ZspaceError):
    """An upload over MAX_UPLOAD_BYTES (answered with 413)."""

    def __init__(self, size: int | None = None):
        got = "" if size is None else f" ({size} bytes)"
        super().__init__(f"the upload is larger than {MAX_UPLOAD_BYTES} bytes (1 MB){got}")


def png_bytes(picture: Image.Image) -> bytes:
    """Encode a PIL image as PNG, fast: zlib's run-length mode at level 1.

    Digit grids are flat runs of scaled-up pixels, so run-length matching is both quicker and
    smaller than zlib's default matching (a 16-digit grid: 0.2 ms and 7.6 kB against
    0.3 ms and 9.2 kB).
    """
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()


# Pixels one answer may render: 2,560 digits at scale 8 would be 128 Mpx (about 1.6 s and
# 150 MB for one request); above this the scale is lowered instead.
MAX_ANSWER_PIXELS = 16 * 1024 * 1024


def fitted_scale(count: int, scale: int) -> int:
    """`scale`, lowered (to 1 at least) so that `count` digits stay within MAX_ANSWER_PIXELS.
    Lowered, not refused: every request the schema allows gets an answer."""
    while scale > 1 and count * (28 * scale) ** 2 > MAX_ANSWER_PIXELS:
        scale -= 1
    return scale


def grid_png(images: torch.Tensor, ncols: int | None = None, scale: int = 2) -> bytes:
    """float (N, 1, 28, 28) in [0, 1] or (R, C, 1, 28, 28) (one row per R) -> PNG bytes."""
    count = images.shape[0] * (images.shape[1] if images.dim() == 5 else 1)
    if images.dim() == 5:
        images = images.squeeze(2)
    return png_bytes(grid_image(images, ncols=ncols, scale=fitted_scale(count, scale)))


def image_data_urls(images: torch.Tensor, scale: int = 1) -> list[str]:
    """float (N, 1, 28, 28) in [0, 1] -> one `data:image/png;base64,...` string per image."""
    urls = []
    scale = fitted_scale(len(images), scale)
    for array in to_uint8_images(images).numpy():
        picture = Image.fromarray(array, mode="L")
        if scale > 1:
            picture = picture.resize((28 * scale, 28 * scale), Image.NEAREST)
        urls.append("data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode())
    return urls


def open_upload(data: bytes) -> Image.Image:
    """Bytes of an uploaded file -> a decoded PIL image; ZspaceError for anything else."""
    if not data:
        raise ZspaceError("the upload is empty; send a PNG or JPEG image of one digit")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge(len(data))
    return open_image(bytes(data), "the uploaded image")


def prepare_upload(data: bytes) -> tuple[torch.Tensor, bool]:
    """Upload bytes -> (uint8 (28, 28) MNIST-style digit, whether colours were inverted)."""
    array, inverted = prepare_image(open_upload(data), name="the uploaded image")
    # copy: prepare_image may hand back a read-only NumPy view
    return torch.tensor(np.array(array, dtype=np.uint8)).reshape(28, 28), bool(inverted)
