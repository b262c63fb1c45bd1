"""Reading gzip-compressed IDX files (the MNIST file format) with full validation.

IDX layout: a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the items as raw bytes. Only unsigned-byte data (dtype 0x08) is accepted, which
is what MNIST-style datasets use. Every problem raises `DataError` with a one-line message that
names the file and says what is wrong, so a corrupt download never turns into a confusing
reshape error (or silently wrong data) further down.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from zspace.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
_UBYTE = 0x08


def read_gzip(path: str | os.PathLike) -> bytes:
    """Decompress a whole gzip file, turning every way it can fail into a `DataError`."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
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


def _parse_header(data: bytes, path: Path, magic: int, what: str) -> tuple[tuple[int, ...], int]:
    """Check the magic number; return the dimensions and the offset where the items start."""
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
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return dims, header_size


def _check_length(data: bytes, path: Path, dims: tuple[int, ...], offset: int, what: str) -> None:
    """The payload must be exactly as long as the header's dimensions say."""
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - offset
    declared = "x".join(str(d) for d in dims)
    if actual < expected:
        raise DataError(
            f"{path}: truncated: header declares {declared} {what} ({expected} bytes) "
            f"but only {actual} bytes follow"
        )
    if actual > expected:
        raise DataError(
            f"{path}: {actual - expected} unexpected trailing bytes after the {declared} {what} "
            "the header declares"
        )


def read_idx_images(path: str | os.PathLike, shape: tuple[int, int] = (28, 28)) -> torch.Tensor:
    """Read a gzip IDX image file as a uint8 tensor of shape ``(N, *shape)``.

    `shape` is the expected image size; a file with any other size is rejected.
    """
    path = Path(path)
    data = read_gzip(path)
    dims, offset = _parse_header(data, path, IMAGES_MAGIC, "images")
    if dims[1:] != tuple(shape):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected {shape[0]}x{shape[1]}")
    if dims[0] == 0:
        raise DataError(f"{path}: contains no images")
    _check_length(data, path, dims, offset, "images")
    # frombuffer is zero-copy over immutable bytes; copy() gives torch a writable array.
    array = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims).copy()
    return torch.from_numpy(array)


def read_idx_labels(path: str | os.PathLike, num_classes: int = 10) -> torch.Tensor:
    """Read a gzip IDX label file as an int64 tensor of shape ``(N,)`` with values in
    ``0..num_classes-1``."""
    path = Path(path)
    data = read_gzip(path)
    dims, offset = _parse_header(data, path, LABELS_MAGIC, "labels")
    if dims[0] == 0:
        raise DataError(f"{path}: contains no labels")
    _check_length(data, path, dims, offset, "labels")
    labels = np.frombuffer(data, dtype=np.uint8, offset=offset)
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        index = int(bad[0])
        raise DataError(
            f"{path}: label {int(labels[index])} at index {index} is outside 0..{num_classes - 1} "
            f"({bad.size} bad labels in all)"
        )
    return torch.from_numpy(labels.astype(np.int64))
