"""Dataset specs (which files, their checksums, where to fetch them) and where data lives locally.

Every registered dataset is the classic four-file gzip IDX layout of MNIST. Checksums:

* ``md5`` is the MD5 of the official *compressed* file, as published by the dataset authors and
  listed by torchvision. A download must match it.
* ``sha256_raw`` is the SHA-256 of the *decompressed* bytes. It identifies the content no matter
  who wrote the gzip wrapper, so it is what a local copy is checked against where it is known
  (the copies in the project's shared folder were re-gzipped and have a different MD5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from zspace.errors import DataError

#: Environment variable that overrides the default data folder.
DATA_DIR_ENV = "ZSPACE_DATA"
# Base URLs (comma-separated) of mirrors tried before the official ones, each holding one folder
# per dataset (URL/mnist/train-images-idx3-ubyte.gz): a company mirror, or a local copy served
# for an offline machine. Their files may be re-compressed copies, so they are checked by the
# official checksum of the decompressed content (sha256_raw).
MIRROR_ENV = "ZSPACE_MIRROR"

#: Roles of the four files, in the order they are fetched and reported.
FILE_ROLES = ("train_images", "train_labels", "test_images", "test_labels")

#: Image side length of every registered dataset.
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class FileSpec:
    """One compressed IDX file of a dataset."""

    name: str  # file name on the mirrors and on disk, e.g. "train-images-idx3-ubyte.gz"
    md5: str  # MD5 of the official compressed file
    sha256_raw: str | None = None  # SHA-256 of the decompressed bytes, where known


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its files (keyed by role, see `FILE_ROLES`) and mirror base URLs."""

    name: str
    # hash=False: a dict is unhashable, and the name already identifies a spec.
    files: dict[str, FileSpec] = field(hash=False)
    mirrors: tuple[str, ...]
    description: str = ""


def _four_files(md5s: tuple[str, str, str, str], sha256s=(None, None, None, None)):
    """Build the role -> FileSpec dict of the standard MNIST-style file set."""
    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    return {
        role: FileSpec(name, md5, sha)
        for role, name, md5, sha in zip(FILE_ROLES, names, md5s, sha256s, strict=True)
    }


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=_four_files(
            (
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "9fb629c4189551a2d022fa330f9573f3",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
            (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
        mirrors=(
            # torchvision's mirror first: yann.lecun.com is often slow or refuses scripts.
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        description="MNIST handwritten digits 0-9 (60,000 train / 10,000 test)",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=_four_files(
            (
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79",
                "bb300cfdad3c16e7a12a480ee83cd310",
            )
        ),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        description="Fashion-MNIST: Zalando clothing images, 10 classes (60,000 / 10,000)",
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        files=_four_files(
            (
                "bdb82020997e1d708af4cf47b453dcf7",
                "e144d726b3acfaa3e44228e80efcd344",
                "5c965bf0a639b31b8f53240b1b52f4d7",
                "7320c461ea6c1c855c0b718fb2a4b134",
            )
        ),
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        description="Kuzushiji-MNIST: cursive Japanese characters, 10 classes (60,000 / 10,000)",
    ),
}

DEFAULT_DATASET = "mnist"


def get_spec(spec_or_name: DatasetSpec | str) -> DatasetSpec:
    """Return the spec for a registry key (case-insensitive, `_` accepted for `-`), or pass a spec
    through unchanged. Unknown names raise `DataError` listing the known ones."""
    if isinstance(spec_or_name, DatasetSpec):
        return spec_or_name
    key = str(spec_or_name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        known = ", ".join(DATASETS)
        raise DataError(f"unknown dataset {spec_or_name!r} (known: {known})")
    return DATASETS[key]


def user_mirrors(spec: DatasetSpec) -> tuple[str, ...]:
    """The dataset's folders on the mirrors that $ZSPACE_MIRROR names (tried first)."""
    urls = [url.strip() for url in os.environ.get(MIRROR_ENV, "").split(",") if url.strip()]
    return tuple(f"{url.rstrip('/')}/{spec.name}/" for url in urls)


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds one sub-folder per dataset.

    Look-up order: the `data_dir` argument, else ``$ZSPACE_DATA``, else the user cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``) + ``/zspace``. Empty strings count as unset, and a
    relative ``$XDG_CACHE_HOME`` is ignored, as the XDG spec asks. The folder need not exist.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if cache and Path(cache).is_absolute() else Path.home() / ".cache"
    return base / "zspace"
