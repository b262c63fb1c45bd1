"""Reading users' `.npz` files safely: every array's header is checked before anything is
allocated, and nothing is ever unpickled.

`np.load` trusts an array's header: a few hundred bytes claiming shape (10^9, 28, 28) make it
try to allocate 784 GB. Here each member's `.npy` header is read first (at most
`MAX_HEADER_BYTES`), its dtype and shape are checked against what the caller expects, and its
size against both `MAX_ARRAY_BYTES` and the bytes the archive actually holds; only then is the
data read, in chunks, so memory follows the data that is really there. Every problem is one
`DataError` line naming the file.

    arrays = read_npz(path, {"images": IMAGES, "labels": LABELS})
"""

from __future__ import annotations

import io
import lzma
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError  # numpy's filter for Python 2 headers raises it

import numpy as np
from numpy.lib import format as npy_format

from zspace.data.registry import IMAGE_SHAPE
from zspace.errors import DataError

MAX_ARRAY_BYTES = 2**31  # 2 GiB: 2.7 million 28x28 images, far beyond any MNIST-style set
MAX_HEADER_BYTES = 10_000  # numpy's own limit for headers it parses without trusting the file
_CHUNK_BYTES = 1 << 22
_HEADER_LENGTH_FORMATS = {(1, 0): "<H", (2, 0): "<I"}
# What zipfile, zlib, bz2 and lzma raise on damaged or hostile archives.
_ARCHIVE_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
    OverflowError,
)


@dataclass(frozen=True)
class ArraySpec:
    """What one array must be: its element type and its shape after the leading count axis.

    `integers`: any integer dtype (labels); otherwise uint8 exactly (images).
    `single_ok`: a lone item without the count axis (one (28, 28) image) is accepted too.
    """

    item_shape: tuple[int, ...] = ()
    integers: bool = False
    single_ok: bool = False

    def accepts_dtype(self, dtype: np.dtype) -> bool:
        if self.integers:
            return dtype.fields is None and np.issubdtype(dtype, np.integer)
        return dtype == np.uint8

    def accepts_shape(self, shape: tuple[int, ...]) -> bool:
        full = len(shape) == 1 + len(self.item_shape) and shape[1:] == self.item_shape
        return full or (self.single_ok and shape == self.item_shape)

    def describe_dtype(self) -> str:
        return "integers" if self.integers else "uint8 (0..255)"

    def describe_shape(self) -> str:
        sizes = ", ".join(map(str, self.item_shape))
        full = f"(N, {sizes})" if sizes else "(N,)"
        return f"{full} or ({sizes})" if self.single_ok else full


IMAGES = ArraySpec(item_shape=IMAGE_SHAPE)
LABELS = ArraySpec(integers=True)


def read_npz(
    path: str | Path, wanted: dict[str, ArraySpec], ignore_others: bool = False
) -> dict[str, np.ndarray]:
    """The arrays of `wanted` that the `.npz` at `path` holds, each checked against its spec.

    Arrays not in `wanted` are refused (or, with `ignore_others`, skipped unread). Missing
    wanted arrays are simply absent from the result: the caller decides which it needs.
    DataError in one line for anything else.
    """
    path = Path(path)
    _check_is_zip(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members_by_key(archive, path, wanted, ignore_others)
            return {
                key: _read_member(archive, info, path, key, wanted[key])
                for key, info in members.items()
            }
    except DataError:
        raise
    except _ARCHIVE_ERRORS as error:
        raise DataError(f"{path}: not a valid .npz file ({_first_line(error)})") from None


def _check_is_zip(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if not is_zip:
        raise DataError(f"{path}: not a valid .npz file (not a zip archive)")


def _members_by_key(archive, path: Path, wanted, ignore_others: bool) -> dict:
    """key -> ZipInfo of each wanted array; refuses unexpected arrays unless ignored."""
    members, unexpected = {}, []
    for info in archive.infolist():
        key = info.filename.removesuffix(".npy")
        if key in wanted:
            members[key] = info
        elif not info.is_dir():
            unexpected.append(key)
    if unexpected and not ignore_others:
        listed = ", ".join(sorted(repr(key)[1:-1] for key in unexpected)[:10])
        raise DataError(f"{path}: unexpected arrays {listed} (allowed: {', '.join(wanted)})")
    return members


def _read_member(archive, info, path: Path, key: str, spec: ArraySpec) -> np.ndarray:
    with archive.open(info) as stream:
        shape, fortran_order, dtype, header_size = _read_header(stream, path, key)
        _check_header(shape, dtype, path, key, spec)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > MAX_ARRAY_BYTES:
            raise DataError(
                f"{path}: '{key}' declares shape {shape} ({nbytes} bytes), over the "
                f"{MAX_ARRAY_BYTES} byte limit"
            )
        if header_size + nbytes > info.file_size:
            raise DataError(
                f"{path}: '{key}' is truncated: its header declares shape {shape} "
                f"({nbytes} bytes) but the archive holds {info.file_size - header_size}"
            )
        flat = _read_exactly(stream, nbytes, dtype, path, key)
    if fortran_order:
        return np.ascontiguousarray(flat.reshape(shape[::-1]).T)
    return flat.reshape(shape)


def _read_header(stream, path: Path, key: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header bytes) of one `.npy` member, reading at most
    MAX_HEADER_BYTES of it."""
    magic = stream.read(npy_format.MAGIC_LEN)
    try:
        version = npy_format.read_magic(io.BytesIO(magic))
    except ValueError:
        raise DataError(f"{path}: '{key}' is not a .npy array") from None
    length_format = _HEADER_LENGTH_FORMATS.get(version)
    if length_format is None:
        raise DataError(f"{path}: '{key}' uses .npy format version {version}, not 1.0 or 2.0")
    length_bytes = stream.read(struct.calcsize(length_format))
    if len(length_bytes) != struct.calcsize(length_format):
        raise DataError(f"{path}: '{key}' has a truncated .npy header")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > MAX_HEADER_BYTES:
        raise DataError(f"{path}: '{key}' has a {length}-byte .npy header (at most 10000)")
    header = io.BytesIO(length_bytes + stream.read(length))
    read_header = (
        npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    )
    try:
        shape, fortran_order, dtype = read_header(header, max_header_size=MAX_HEADER_BYTES)
    except (ValueError, TypeError, SyntaxError, TokenError, RecursionError) as error:
        raise DataError(f"{path}: '{key}' has a bad .npy header ({_first_line(error)})") from None
    # bool is an int to Python: a shape of (True, 28, 28) would pass the header's own check
    if any(isinstance(size, bool) for size in shape):
        raise DataError(f"{path}: '{key}' has a bad .npy header (shape {shape})")
    return shape, fortran_order, dtype, len(magic) + len(length_bytes) + length


def _check_header(shape, dtype: np.dtype, path: Path, key: str, spec: ArraySpec) -> None:
    if dtype.hasobject:
        raise DataError(f"{path}: '{key}' holds objects (pickled data); only plain arrays load")
    if not spec.accepts_dtype(dtype):
        raise DataError(f"{path}: '{key}' has dtype {dtype}, expected {spec.describe_dtype()}")
    if any(size < 0 for size in shape) or not spec.accepts_shape(shape):
        raise DataError(f"{path}: '{key}' has shape {shape}, expected {spec.describe_shape()}")


def _read_exactly(stream, nbytes: int, dtype: np.dtype, path: Path, key: str) -> np.ndarray:
    """`nbytes` of data as a flat array, read in chunks: a member that stops early costs only
    what it held."""
    flat = np.empty(nbytes // dtype.itemsize, dtype=dtype)
    buffer = memoryview(flat.view(np.uint8))
    filled = 0
    while filled < nbytes:
        chunk = stream.read(min(_CHUNK_BYTES, nbytes - filled))
        if not chunk:
            raise DataError(f"{path}: '{key}' is truncated ({filled} of {nbytes} bytes of data)")
        buffer[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    return flat


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
