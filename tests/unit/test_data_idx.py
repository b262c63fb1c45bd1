"""IDX parsing: valid files round-trip; every kind of damage gives a one-line DataError."""

from __future__ import annotations

import gzip
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from zspace.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx_images, read_idx_labels
from zspace.errors import DataError

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from reliability_fuzz import PeakRss  # noqa: E402  (peak RSS of a block, measured per block)


def _images(n, side=28):
    return np.arange(n * side * side, dtype=np.int64).astype(np.uint8).reshape(n, side, side)


def test_valid_images_round_trip(write_idx):
    expected = _images(3)
    path = write_idx("img.gz", IMAGES_MAGIC, (3, 28, 28), expected.tobytes())
    images = read_idx_images(path)
    assert images.dtype == torch.uint8 and images.shape == (3, 28, 28)
    assert np.array_equal(images.numpy(), expected)
    images[0, 0, 0] = 7  # writable, no warning from a read-only buffer


def test_valid_labels_round_trip(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (5,), bytes([0, 9, 3, 3, 1]))
    labels = read_idx_labels(path)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [0, 9, 3, 3, 1]


def test_expected_shape_is_a_parameter(write_idx):
    path = write_idx("img.gz", IMAGES_MAGIC, (2, 4, 5), bytes(40))
    assert read_idx_images(path, shape=(4, 5)).shape == (2, 4, 5)


def _expect_error(path, reader, *fragments):
    with pytest.raises(DataError) as info:
        reader(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_truncated_payload(write_idx):
    path = write_idx("img.gz", IMAGES_MAGIC, (3, 28, 28), _images(3).tobytes()[:-10])
    _expect_error(path, read_idx_images, "truncated", "3x28x28")


def test_trailing_garbage(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (4,), bytes([1, 2, 3, 4]) + b"junk")
    _expect_error(path, read_idx_labels, "4 unexpected trailing bytes")


def test_header_count_too_small_means_trailing_bytes(write_idx):
    path = write_idx("img.gz", IMAGES_MAGIC, (2, 28, 28), _images(3).tobytes())
    _expect_error(path, read_idx_images, "trailing")


def test_header_count_too_large_means_truncated(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (10,), bytes(6))
    _expect_error(path, read_idx_labels, "truncated", "only 6 bytes")


def test_labels_file_read_as_images(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (4,), bytes(4))
    _expect_error(path, read_idx_images, "magic number 0x00000801", "expected 0x00000803")


def test_wrong_element_type(write_idx):
    path = write_idx("img.gz", 0x00000D03, (1, 28, 28), bytes(4 * 784))
    _expect_error(path, read_idx_images, "element type 0x0d")


def test_not_idx_at_all(tmp_path):
    path = tmp_path / "junk.gz"
    path.write_bytes(gzip.compress(b"<html>not found</html>"))
    _expect_error(path, read_idx_labels, "not an IDX file")


def test_wrong_image_size(write_idx):
    path = write_idx("img.gz", IMAGES_MAGIC, (1, 32, 32), bytes(32 * 32))
    _expect_error(path, read_idx_images, "32x32", "expected 28x28")


def test_too_short_for_header(write_idx, tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(IMAGES_MAGIC.to_bytes(4, "big") + b"\0\0"))
    _expect_error(path, read_idx_images, "truncated IDX header")


def test_empty_file(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (0,), b"")
    _expect_error(path, read_idx_labels, "no labels")


def test_not_gzip(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (2,), bytes([1, 2]), compress=False)
    _expect_error(path, read_idx_labels, "not a gzip file")


def test_corrupt_gzip_stream(tmp_path):
    # a valid header, so the reader streams on into the cut-off payload
    header = LABELS_MAGIC.to_bytes(4, "big") + (25_600).to_bytes(4, "big")
    data = gzip.compress(header + bytes(range(10)) * 2_560, compresslevel=0)
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, read_idx_labels, "corrupt gzip data")


def test_gzip_crc_mismatch(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (3,), bytes([1, 2, 3]))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    path.write_bytes(bytes(data))
    _expect_error(path, read_idx_labels, "corrupt gzip data", "CRC")


def test_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.gz", read_idx_images, "not found")


def test_labels_out_of_range(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (5,), bytes([0, 1, 12, 3, 200]))
    _expect_error(path, read_idx_labels, "label 12 at index 2", "outside 0..9", "2 bad labels")


def test_num_classes_is_a_parameter(write_idx):
    path = write_idx("lab.gz", LABELS_MAGIC, (3,), bytes([0, 1, 2]))
    assert read_idx_labels(path, num_classes=3).tolist() == [0, 1, 2]
    _expect_error(path, lambda p: read_idx_labels(p, num_classes=2), "outside 0..1")


def _gzip_of_zeros_after(header: bytes, megabytes: int) -> bytes:
    """A small gzip file (about 4.5 kB per MB) that inflates to `header` plus `megabytes` MB
    of zeros, compressed in chunks so the test itself never holds the inflated data."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    parts = [compressor.compress(header)]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(megabytes)]
    return b"".join(parts) + compressor.flush()


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    # The case: a 2.1 MB file cost 4.4 GB of RSS before the (correct) error.
    header = IMAGES_MAGIC.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28))
    path = tmp_path / "bomb.gz"
    path.write_bytes(_gzip_of_zeros_after(header, 200))
    assert path.stat().st_size < 2_000_000
    with PeakRss() as memory:
        _expect_error(path, read_idx_images, "more than 1048576 unexpected trailing bytes")
    assert memory.growth_mb < 60, memory.growth_mb


def test_absurd_dims_are_refused_before_reading(write_idx):
    path = write_idx("img.gz", IMAGES_MAGIC, (2**32 - 1, 28, 28), bytes(784))
    _expect_error(path, read_idx_images, "over the 2147483648 byte limit")
    path = write_idx("lab.gz", LABELS_MAGIC, (2**32 - 1,), bytes(10))
    _expect_error(path, read_idx_labels, "4294967295 labels", "byte limit")


def test_header_declaring_more_than_the_file_holds_costs_only_what_it_holds(tmp_path):
    header = IMAGES_MAGIC.to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in (2_000_000, 28, 28)
    )
    path = tmp_path / "short.gz"
    path.write_bytes(_gzip_of_zeros_after(header, 20))
    with PeakRss() as memory:
        _expect_error(path, read_idx_images, "truncated", "2000000x28x28", "only 20971520 bytes")
    assert memory.growth_mb < 100, memory.growth_mb


def test_a_folder_is_not_a_file(tmp_path):
    _expect_error(tmp_path, read_idx_labels, "is a folder")
