"""MNIST-style image preparation, saved classifiers and `zspace classify`."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from zspace.cli.main import main
from zspace.errors import ZspaceError
from zspace.fewshot.classify import MAX_IMAGE_PIXELS, prepare_image, save_classifier
from zspace.fewshot.cnn import DigitCNN, DigitCNNConfig
from zspace.web.imaging import MAX_UPLOAD_PIXELS, open_upload, prepare_upload

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from reliability_fuzz import PeakRss  # noqa: E402  (peak RSS of a block, measured per block)


def test_blank_or_unreadable_images_are_user_errors(tmp_path):
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    with pytest.raises(ZspaceError, match="blank"):
        prepare_image(tmp_path / "blank.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ZspaceError, match="not an image"):
        prepare_image(tmp_path / "junk.png")


def test_classify_with_a_missing_model_is_one_line_error(tmp_path, capsys):
    digit = Image.new("L", (28, 28), 0)
    digit.paste(255, (12, 4, 16, 24))  # a stroke: the image itself is fine
    digit.save(tmp_path / "x.png")
    assert main(["classify", str(tmp_path / "x.png"), "--model", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _grey_png(width: int, height: int, with_pixels: bool = True) -> bytes:
    """A PNG of a flat black width x height image, compressed row by row so that the test never
    holds the pixels; without pixels, only the header (enough to claim the size)."""
    parts = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))]
    if with_pixels:
        compressor = zlib.compressobj(1)
        row = bytes(width + 1)  # filter byte 0, then the row's pixels
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
        parts.append(_png_chunk(b"IDAT", data))
    return b"\x89PNG\r\n\x1a\n" + b"".join(parts) + _png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def untrained_classifier(tmp_path_factory):
    """A classifier run folder with random weights: enough to get past loading the model."""
    out = tmp_path_factory.mktemp("clf") / "run"
    save_classifier(out, DigitCNN(DigitCNNConfig()), {"per_class": 5})
    return out


@pytest.mark.parametrize(
    ("side", "with_pixels"),
    [(20_000, False), (12_000, True)],  # Pillow's own bomb error; a 140 kB PNG of 2.2 GB
)
def test_classify_refuses_huge_images_in_one_line(
    untrained_classifier, tmp_path, capsys, side, with_pixels
):
    image = tmp_path / "big.png"
    image.write_bytes(_grey_png(side, side, with_pixels))
    with PeakRss() as memory:
        code = main(["classify", str(image), "--model", str(untrained_classifier)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert "pixels" in err and "limit is 16777216" in err and str(image) in err
    assert memory.growth_mb < 100, memory.growth_mb


def test_uploads_share_the_pixel_limit():
    for decode in (open_upload, prepare_upload):
        with pytest.raises(ZspaceError, match="12000x12000 pixels; the limit is 16777216"):
            decode(_grey_png(12_000, 12_000, with_pixels=False))
    assert MAX_UPLOAD_PIXELS == MAX_IMAGE_PIXELS


def test_classify_a_folder_says_what_to_pass(untrained_classifier, tmp_path, capsys):
    assert main(["classify", str(tmp_path), "--model", str(untrained_classifier)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder; pass an image file" in err, err
