"""Reading gzip-compressed IDX files (the MNIST file format) with full validation.

IDX layout: a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the items as raw bytes. Only unsigned-byte data (dtype 0x08) is accepted, which
is what MNIST-style datasets use. Every problem raises `DataError` with a one-line message that
names the file and says what is wrong, so a corrupt download never turns into a confusing
reshape error (or silently wrong data) further down.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from zspace.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
_UBYTE = 0x08
MAX_PAYLOAD_BYTES = 2**31  # 2 GiB: 2.7 million 28x28 images, far beyond any MNIST-style set
_CHUNK_BYTES = 1 << 22
_TRAILING_BYTES_COUNTED = 1 << 20  # beyond this, "more than"; inflating on costs time


@contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    """Turn every way reading a gzip file can fail into a one-line `DataError`."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a gzip IDX file") from None
    except gzip.BadGzipFile as error:
        # Raised both for a wrong magic number and for a CRC/length mismatch in the trailer.
        if str(error).startswith("Not a gzipped file"):
            raise DataError(f"{path}: not a gzip file") from None
        raise DataError(f"{path}: corrupt gzip data ({error})") from None
    except EOFError:
        # gzip raises EOFError when the compressed stream stops before its end marker.
        raise DataError(f"{path}: corrupt gzip data (the file is truncated)") from None
    except zlib.error as error:
        raise DataError(f"{path}: corrupt gzip data ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


def _read_idx(path: Path, magic: int, what: str, item_shape: tuple[int, ...] | None = None):
    """(dims, payload as flat uint8) of a gzip IDX file, streamed: the header is read first and
    at most the payload it declares (capped at MAX_PAYLOAD_BYTES) is inflated, so a small file
    that inflates to gigabytes costs no more memory than its header's honest size."""
    with _gzip_errors(path), gzip.open(path, "rb") as stream:
        dims = _parse_header(stream.read(4 + 4 * (magic & 0xFF)), path, magic, what)
        if item_shape is not None and dims[1:] != tuple(item_shape):
            found, wanted = ("x".join(map(str, shape)) for shape in (dims[1:], item_shape))
            raise DataError(f"{path}: {what} are {found}, expected {wanted}")
        if dims[0] == 0:
            raise DataError(f"{path}: contains no {what}")
        expected = math.prod(dims)
        declared = "x".join(str(d) for d in dims)
        if expected > MAX_PAYLOAD_BYTES:
            raise DataError(
                f"{path}: header declares {declared} {what} ({expected} bytes), over the "
                f"{MAX_PAYLOAD_BYTES} byte limit"
            )
        payload = _read_up_to(stream, expected)
        if len(payload) < expected:
            raise DataError(
                f"{path}: truncated: header declares {declared} {what} ({expected} bytes) "
                f"but only {len(payload)} bytes follow"
            )
        # Reading on to the end also checks the gzip trailer's CRC and length.
        trailing = len(_read_up_to(stream, _TRAILING_BYTES_COUNTED + 1))
    if trailing:
        count = (
            f"more than {_TRAILING_BYTES_COUNTED}"
            if trailing > _TRAILING_BYTES_COUNTED
            else trailing
        )
        raise DataError(
            f"{path}: {count} unexpected trailing bytes after the {declared} {what} "
            "the header declares"
        )
    return dims, np.frombuffer(payload, dtype=np.uint8)


def _read_up_to(stream, limit: int) -> bytearray:
    """At most `limit` bytes, read in chunks: memory follows what the stream really holds,
    never what a header claims."""
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(_CHUNK_BYTES, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _parse_header(data: bytes, path: Path, magic: int, what: str) -> tuple[int, ...]:
    """Check the magic number of a file's first bytes; return the dimensions."""
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        if data[:2] != b"\0\0":
            reason = "not an IDX file"
        elif data[2] != _UBYTE:
            reason = f"element type 0x{data[2]:02x} is not unsigned bytes (0x08)"
        else:
            reason = f"{data[3]} dimensions, expected {ndim} for {what}"
        raise DataError(
            f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x} ({reason})"
        )
    if len(data) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(data)} of {header_size} bytes)")
    return tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))


def read_idx_images(path: str | os.PathLike, shape: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Read a gzip IDX image file as a uint8 tensor of shape ``(N, *shape)``.

    `shape` is the expected image size; a file with any other size is rejected.
    """
    dims, payload = _read_idx(Path(path), IMAGES_MAGIC, "images", shape)
    # a bytearray's buffer is writable, so torch shares it without a copy or a warning
    return torch.from_numpy(payload.reshape(dims))


def read_idx_labels(path: str | os.PathLike, num_classes: int = 10) -> torch.Tensor:
    """Read a gzip IDX label file as an int64 tensor of shape ``(N,)`` with values in
    ``0..num_classes-1``."""
    path = Path(path)
    _, labels = _read_idx(path, LABELS_MAGIC, "labels")
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        index = int(bad[0])
        raise DataError(
            f"{path}: label {int(labels[index])} at index {index} is outside 0..{num_classes - 1} "
            f"({bad.size} bad labels in all)"
        )
    return torch.from_numpy(labels.astype(np.int64))
