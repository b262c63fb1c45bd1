"""`load_dataset`: a registered dataset or a user's `.npz` file as uint8/int64 tensors.

Parsed datasets are cached in-process (`functools.lru_cache`), keyed on the resolved folder or
file plus each file's size and mtime, so repeated loads are instant and a replaced file is read
afresh. Because of that cache, the returned tensors are shared between callers: treat them as
read-only and `.clone()` before modifying them in place.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zspace.data.download import fetch_dataset
from zspace.data.idx import read_idx_images, read_idx_labels
from zspace.data.npz import IMAGES, LABELS, read_npz
from zspace.data.registry import (
    DATASETS,
    DEFAULT_DATASET,
    IMAGE_SHAPE,
    get_spec,
    resolve_data_dir,
)
from zspace.errors import DataError

__all__ = ["Dataset", "load_dataset", "resolve_data_dir"]

NUM_CLASSES = 10
_NPZ_ARRAYS = {"images": IMAGES, "labels": LABELS, "test_images": IMAGES, "test_labels": LABELS}


# eq=False: comparing tensors field by field is ambiguous; datasets compare by identity.
@dataclass(frozen=True, eq=False)
class Dataset:
    """Images are uint8 ``(N, 28, 28)``, light digit on dark, 0..255; labels are int64 ``(N,)``
    in ``0..num_classes-1``, or None for an unlabelled `.npz`."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor | None
    test_images: torch.Tensor
    test_labels: torch.Tensor | None
    num_classes: int = NUM_CLASSES

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train_images)}, test={len(self.test_images)}, "
            f"labelled={self.train_labels is not None})"
        )


def load_dataset(
    name: str = DEFAULT_DATASET,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    limit: int | None = None,
) -> Dataset:
    """Load a registered dataset ("mnist", "fashion-mnist", "kmnist") or a `.npz` file.

    Registered datasets live in ``resolve_data_dir(data_dir)/<name>/``. Missing files are
    downloaded when `download` is true, else a `DataError` says how to fetch them.
    `limit` keeps only the first `limit` training examples (all of them if there are fewer);
    the test split is never cut.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit must be a positive integer, got {limit!r}")
    if str(name).lower().endswith(".npz"):
        dataset = _load_npz_cached(*_file_key(Path(name)))
    else:
        spec = get_spec(name)
        folder = resolve_data_dir(data_dir) / spec.name
        missing = [f.name for f in spec.files.values() if not (folder / f.name).is_file()]
        if missing:
            if not download:
                hint = f" --data-dir {data_dir}" if data_dir is not None else ""
                raise DataError(
                    f"{spec.name} is not in {folder} (missing {', '.join(missing)}); "
                    f"run `zspace data --fetch {spec.name}{hint}`"
                )
            fetch_dataset(spec, data_dir)
        stamps = tuple(_file_key(folder / f.name)[1:] for f in spec.files.values())
        dataset = _load_registered_cached(folder.resolve(), spec.name, stamps)
    if limit is not None and limit < len(dataset.train_images):
        dataset = Dataset(
            name=dataset.name,
            train_images=dataset.train_images[:limit],
            train_labels=None if dataset.train_labels is None else dataset.train_labels[:limit],
            test_images=dataset.test_images,
            test_labels=dataset.test_labels,
            num_classes=dataset.num_classes,
        )
    return dataset


def _file_key(path: Path) -> tuple[Path, int, int]:
    """(resolved path, size, mtime_ns): a cache key that changes when the file is replaced."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    return path.resolve(), stat.st_size, stat.st_mtime_ns


def _check_pair(images: torch.Tensor, labels: torch.Tensor | None, what: str, where) -> None:
    if labels is not None and len(labels) != len(images):
        raise DataError(
            f"{where}: {what} images ({len(images)}) and labels ({len(labels)}) differ in count"
        )


@functools.lru_cache(maxsize=4)
def _load_registered_cached(folder: Path, name: str, _stamps: tuple) -> Dataset:
    """Parse the four IDX files of a registered dataset (`_stamps` only keys the cache)."""
    files = DATASETS[name].files
    train_images = read_idx_images(folder / files["train_images"].name, IMAGE_SHAPE)
    train_labels = read_idx_labels(folder / files["train_labels"].name, NUM_CLASSES)
    test_images = read_idx_images(folder / files["test_images"].name, IMAGE_SHAPE)
    test_labels = read_idx_labels(folder / files["test_labels"].name, NUM_CLASSES)
    _check_pair(train_images, train_labels, "train", folder)
    _check_pair(test_images, test_labels, "test", folder)
    return Dataset(name, train_images, train_labels, test_images, test_labels)


@functools.lru_cache(maxsize=4)
def _load_npz_cached(path: Path, _size: int, _mtime_ns: int) -> Dataset:
    """Load a user's `.npz` file.

    Arrays: ``images`` uint8 (N, 28, 28), required; ``labels`` (N,) integers in 0..9, optional;
    ``test_images`` / ``test_labels``, optional. Labels must be given for both splits or for
    neither. Without test arrays, the last ``N // 6`` images (and labels) become the test split,
    the same 6:1 ratio as MNIST; taking the tail rather than a random subset keeps the split
    deterministic without a seed.
    """
    arrays = read_npz(path, _NPZ_ARRAYS)
    if "images" not in arrays:
        raise DataError(f"{path}: has no 'images' array")
    if ("test_labels" in arrays) and ("test_images" not in arrays):
        raise DataError(f"{path}: has 'test_labels' but no 'test_images'")
    if "test_images" in arrays and (("labels" in arrays) != ("test_labels" in arrays)):
        raise DataError(
            f"{path}: give labels for both splits ('labels' and 'test_labels') or neither"
        )

    images = _npz_images(arrays["images"], path, "images")
    labels = _npz_labels(arrays.get("labels"), len(images), path, "labels")
    if "test_images" in arrays:
        test_images = _npz_images(arrays["test_images"], path, "test_images")
        test_labels = _npz_labels(arrays.get("test_labels"), len(test_images), path, "test_labels")
    else:
        n_test = len(images) // 6
        if n_test == 0:
            raise DataError(
                f"{path}: {len(images)} images are too few to hold out a test split (need 6)"
            )
        cut = len(images) - n_test
        test_images, images = images[cut:], images[:cut]
        test_labels, labels = (None, None) if labels is None else (labels[cut:], labels[:cut])
    return Dataset(str(path), images, labels, test_images, test_labels)


def _npz_images(array: np.ndarray, path: Path, key: str) -> torch.Tensor:
    """uint8 (N, 28, 28), already checked by `read_npz`; it must not be empty."""
    if len(array) == 0:
        raise DataError(f"{path}: '{key}' is empty")
    return torch.from_numpy(array)


def _npz_labels(array: np.ndarray | None, count: int, path: Path, key: str) -> torch.Tensor | None:
    """Integers (N,) (dtype and shape checked by `read_npz`), one per image, in 0..9."""
    if array is None:
        return None
    if len(array) != count:
        raise DataError(f"{path}: '{key}' has {len(array)} entries but there are {count} images")
    bad = np.flatnonzero((array < 0) | (array >= NUM_CLASSES))
    if bad.size:
        raise DataError(
            f"{path}: '{key}' value {array[bad[0]]} at index {bad[0]} is outside 0..{NUM_CLASSES - 1}"
        )
    return torch.from_numpy(array.astype(np.int64))
