"""The one `.npz` reader: headers are checked before anything is allocated, nothing is
unpickled, and every problem is one line, through all three commands that read `.npz` files."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.data.npz import IMAGES, LABELS, ArraySpec, read_npz
from zspace.errors import DataError
from zspace.evaluation.sources import load_samples_npz
from zspace.fewshot.classify import load_images_for_classification

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from reliability_fuzz import PeakRss  # noqa: E402  (peak RSS of a block, measured per block)


def _npz_claiming(path, shape, data=b"", descr="|u1", key="images", version=(1, 0)) -> Path:
    """An .npz whose one member's header claims `shape` whatever `data` it really holds."""
    header = io.BytesIO()
    fields = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        npy_format.write_array_header_1_0(header, fields)
    else:
        npy_format.write_array_header_2_0(header, fields)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{key}.npy", header.getvalue() + data)
    return path


def _one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


READERS = [load_dataset, load_samples_npz, load_images_for_classification]


@pytest.mark.parametrize("reader", READERS)
def test_a_header_claiming_a_huge_array_is_refused_before_allocating(tmp_path, reader):
    # The case: shape (10^9, 28, 28) made np.load try to allocate 784 GB.
    path = _npz_claiming(tmp_path / "huge.npz", (10**9, 28, 28), bytes(784))
    with PeakRss() as memory, pytest.raises(DataError) as error:
        reader(path)
    _one_line(error, str(path), "(1000000000, 28, 28)", "byte limit")
    assert memory.growth_mb < 50


def test_a_header_claiming_more_than_the_archive_holds_is_truncated(tmp_path):
    path = _npz_claiming(tmp_path / "short.npz", (100_000, 28, 28), bytes(5 * 784), version=(2, 0))
    with PeakRss() as memory, pytest.raises(DataError) as error:
        load_dataset(path)
    _one_line(error, "'images' is truncated", "(100000, 28, 28)")
    assert memory.growth_mb < 50


@pytest.mark.parametrize(
    ("shape", "descr", "fragment"),
    [
        ((-1, 28, 28), "|u1", "has shape (-1, 28, 28)"),
        ((2, 28, 28), "<f8", "has dtype float64, expected uint8"),
        ((2, 28, 28), "|O", "pickled"),
        ((2, 28, 28), [("a", "|u1")], "expected uint8"),
    ],
)
def test_bad_headers_are_one_line(tmp_path, shape, descr, fragment):
    path = _npz_claiming(tmp_path / "bad.npz", shape, bytes(2 * 784), descr=descr)
    with pytest.raises(DataError) as error:
        read_npz(path, {"images": IMAGES})
    _one_line(error, fragment)


def test_unreadable_headers_are_one_line(tmp_path):
    path = tmp_path / "v3.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", b"\x93NUMPY\x03\x00" + bytes(100))
        archive.writestr("labels.npy", b"\x93NUMPY\x01\x00\xff\xff" + bytes(100))
    with pytest.raises(DataError) as error:
        read_npz(path, {"images": IMAGES}, ignore_others=True)
    _one_line(error, "version (3, 0)")
    with pytest.raises(DataError) as error:
        read_npz(path, {"labels": LABELS}, ignore_others=True)
    _one_line(error, "65535-byte .npy header")


def test_a_header_cut_mid_literal_is_one_line(tmp_path):
    # found by the fuzzer: numpy's Python 2 header filter raises tokenize's TokenError
    text = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1,"
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    path = tmp_path / "cut.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "images.npy", b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
        )
    with pytest.raises(DataError) as error:
        read_npz(path, {"images": IMAGES})
    _one_line(error, "bad .npy header")


def test_fortran_order_and_byte_order_are_honoured(tmp_path):
    images = np.asfortranarray(np.arange(3 * 28 * 28).reshape(3, 28, 28).astype(np.uint8))
    labels = np.array([1, 2, 3], dtype=">i4")
    np.savez(tmp_path / "f.npz", images=images, labels=labels)
    arrays = read_npz(tmp_path / "f.npz", {"images": IMAGES, "labels": LABELS})
    assert np.array_equal(arrays["images"], images) and arrays["images"].flags.c_contiguous
    assert arrays["labels"].tolist() == [1, 2, 3]


def test_others_are_skipped_or_refused(tmp_path):
    np.savez(tmp_path / "s.npz", images=np.zeros((2, 28, 28), np.uint8), codes=np.zeros((2, 8)))
    assert set(read_npz(tmp_path / "s.npz", {"images": IMAGES}, ignore_others=True)) == {"images"}
    with pytest.raises(DataError, match="unexpected arrays codes"):
        read_npz(tmp_path / "s.npz", {"images": IMAGES})


def test_a_single_image_is_accepted_where_asked(tmp_path):
    np.savez(tmp_path / "one.npz", images=np.zeros((28, 28), np.uint8))
    single = ArraySpec(item_shape=(28, 28), single_ok=True)
    assert read_npz(tmp_path / "one.npz", {"images": single})["images"].shape == (28, 28)
    images, inverted = load_images_for_classification(tmp_path / "one.npz")
    assert images.shape == (1, 28, 28) and inverted == [False]
    with pytest.raises(DataError, match=r"expected \(N, 28, 28\)$"):
        read_npz(tmp_path / "one.npz", {"images": IMAGES})


def test_a_folder_is_named_as_one(tmp_path):
    (tmp_path / "data.npz").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        read_npz(tmp_path / "data.npz", {"images": IMAGES})


def test_evaluate_and_classify_refuse_the_huge_header_in_one_line(tmp_path, capsys):
    path = _npz_claiming(tmp_path / "huge.npz", (10**9, 28, 28), bytes(784))
    assert main(["evaluate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "byte limit" in err, err
