"""Property-based fuzzing of zspace's parsers of untrusted input (hypothesis).

    python benchmarks/reliability_fuzz.py [--examples 10000] [--only idx,npz,config,upload]

Four parsers, each fed generated inputs, from random bytes to well-formed files with hostile
headers:

- idx: `read_idx_images` / `read_idx_labels` on raw bytes, gzipped bytes, and gzip IDX files
  with random magic numbers, dimensions, payload lengths, gzip bombs and damage;
- npz: the three `.npz` readers (`load_dataset`, `evaluate`'s samples, `classify`'s images) on
  random bytes and on zip archives whose `.npy` headers claim random dtypes and shapes;
- config: every config's `from_dict` and the run-folder readers on JSON-like values;
- upload: `open_upload` / `prepare_upload` on random bytes, on files that start like PNG, GIF,
  JPEG, BMP, TIFF, ICO or PNM, and on PNGs whose headers claim random sizes.

The property: any input gives either a valid result or a `ZspaceError` whose message is one
line; never another exception, and memory stays bounded (the peak RSS growth is reported).
The unit tests (tests/unit/test_fuzz_parsers.py) run the same properties with few examples.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import io
import json
import os
import resource
import struct
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from zspace.data import load_dataset
from zspace.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx_images, read_idx_labels
from zspace.errors import ZspaceError
from zspace.evaluation.classifier import EvalClassifierConfig
from zspace.evaluation.sources import load_samples_npz
from zspace.fewshot.classify import load_images_for_classification
from zspace.fewshot.cnn import DigitCNNConfig
from zspace.models.encoders import AutoencoderConfig
from zspace.models.gan import GANConfig
from zspace.models.inverter import InverterConfig
from zspace.models.transformer import TransformerOptions
from zspace.training import autoencoder as ae_training
from zspace.training import gan as gan_training
from zspace.web.imaging import open_upload, prepare_upload

PARSERS = ("idx", "npz", "config", "upload")
MEMORY_BOUND_MB = 200  # the most one input may add to the process's peak RSS


# --- outcomes and memory -----------------------------------------------------------------------


@dataclass
class Tally:
    """What one parser did with its inputs. `strict`: re-raise an unexpected exception (so
    hypothesis shrinks it to a minimal input) instead of counting it."""

    strict: bool = False
    inputs: int = 0
    valid: int = 0
    one_line_errors: int = 0
    unexpected: int = 0
    unexpected_examples: list[str] = field(default_factory=list)
    peak_rss_growth_mb: float = 0.0  # the most one input added to the peak RSS

    def run(self, call: Callable[[], object]) -> None:
        self.inputs += 1
        memory = PeakRss(collect=False)
        try:
            with memory:
                call()
        except ZspaceError as error:
            message = str(error)
            if "\n" in message or not message.strip():
                self._unexpected(AssertionError(f"not a one-line message: {message!r}"))
            else:
                self.one_line_errors += 1
        except Exception as error:  # noqa: BLE001 - what escapes is exactly what we count
            self._unexpected(error)
        else:
            self.valid += 1
        finally:
            self.peak_rss_growth_mb = max(self.peak_rss_growth_mb, memory.growth_mb)

    def _unexpected(self, error: Exception) -> None:
        if self.strict:
            raise error
        self.unexpected += 1
        if len(self.unexpected_examples) < 5:
            self.unexpected_examples.append(f"{type(error).__name__}: {error}"[:300])


def _status_kb(name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRss:
    """How far the process's peak resident memory rose inside a `with` block, in MB.

    On Linux the peak (VmHWM) is reset on entry through /proc/self/clear_refs, so the figure
    is this block's own; elsewhere it is the rise of the lifetime peak (ru_maxrss), which
    can only under-report."""

    def __init__(self, collect: bool = True):
        self.collect = collect  # collect garbage first (a slow, steadier baseline)
        self.growth_mb = 0.0

    def __enter__(self) -> PeakRss:
        if self.collect:
            gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._reset = True
        except OSError:
            self._reset = False
        self._start_kb = (_status_kb("VmRSS") if self._reset else None) or _max_rss_kb()
        return self

    def __exit__(self, *exc) -> None:
        peak_kb = (_status_kb("VmHWM") if self._reset else None) or _max_rss_kb()
        self.growth_mb = max(0.0, (peak_kb - self._start_kb) / 1024)


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- idx ---------------------------------------------------------------------------------------

_DIM = st.one_of(
    st.integers(0, 40),
    st.sampled_from([28, 60_000, 2**31, 2**32 - 1]),
    st.integers(0, 2**32 - 1),
)
_BOMB_MB = 32  # a member that inflates to this much from about 32 kB


def _gzip_bomb() -> bytes:
    if not hasattr(_gzip_bomb, "member"):
        _gzip_bomb.member = gzip.compress(bytes(_BOMB_MB << 20), compresslevel=9)
    return _gzip_bomb.member


def _damage(draw, data: bytes) -> bytes:
    """Sometimes flip a byte or cut the data short."""
    how = draw(st.sampled_from(["none", "none", "flip", "cut"]))
    if not data or how == "none":
        return data
    index = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return data[:index]
    return data[:index] + bytes([data[index] ^ draw(st.integers(1, 255))]) + data[index + 1 :]


@st.composite
def idx_files(draw, magic: int) -> bytes:
    """A gzip IDX file built around `magic` (or another magic number), with random dims,
    payload length, damage and, sometimes, a gzip bomb after it."""
    if draw(st.integers(0, 3)) == 0:
        magic = draw(
            st.one_of(st.sampled_from([0x0D03, 0x0804, 0x0800]), st.integers(0, 2**32 - 1))
        )
    if draw(st.booleans()):  # a plausible file: the dims its magic number asks for
        ndim = magic & 0xFF
        declared_dims = ([draw(st.integers(0, 12))] + [28] * (ndim - 1))[: min(ndim, 4)]
    else:
        declared_dims = draw(st.lists(_DIM, max_size=4))
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in declared_dims)
    declared = int(np.prod(declared_dims, dtype=object)) if declared_dims else 0
    length = draw(
        st.one_of(
            st.just(declared if declared <= 20_000 else 0),
            st.integers(0, 4096),
            st.integers(-3, 3).map(lambda delta: max(0, min(declared, 20_000) + delta)),
        )
    )
    payload = draw(st.binary(min_size=length, max_size=length)) if length < 64 else bytes(length)
    if draw(st.booleans()):  # mostly valid labels
        payload = bytes(b % 12 for b in payload)
    if draw(st.integers(0, 9)) == 0:
        return header + payload  # raw, never gzipped
    data = _damage(draw, gzip.compress(header + payload, compresslevel=1))
    if draw(st.integers(0, 9)) == 0:
        data += _gzip_bomb()  # a second gzip member that inflates to _BOMB_MB
    return data


@st.composite
def idx_inputs(draw) -> tuple[bytes, Callable]:
    reader, magic = draw(
        st.sampled_from([(read_idx_images, IMAGES_MAGIC), (read_idx_labels, LABELS_MAGIC)])
    )
    data = draw(
        st.one_of(
            st.binary(max_size=256),
            st.binary(max_size=256).map(gzip.compress),
            idx_files(magic),
            idx_files(magic),
        )
    )
    return data, reader


IDX_INPUTS = idx_inputs()


def idx_target(work: Path) -> Callable:
    path = work / "fuzz.gz"

    def parse(case) -> object:
        data, reader = case
        path.write_bytes(data)
        return reader(path)

    return parse


# --- npz ---------------------------------------------------------------------------------------

_DESCRS = ["|u1", "<i8", ">i4", "<i2", "|i1", "<u8", "<f4", "|b1", "|O", "<U5", "V8", "|S3"]
_SHAPES = st.one_of(
    st.tuples(st.integers(0, 12), st.just(28), st.just(28)),
    st.tuples(st.integers(0, 12)),
    st.tuples(st.just(28), st.just(28)),
    st.lists(
        st.one_of(st.integers(-2, 30), st.sampled_from([10**9, 2**40, 2**63])), max_size=4
    ).map(tuple),
)


@st.composite
def npy_members(draw) -> tuple[str, bytes]:
    name = draw(
        st.one_of(
            st.sampled_from(["images.npy", "labels.npy", "test_images.npy", "test_labels.npy"]),
            # zipfile cuts names at a NUL and strips leading slashes: keep them non-empty
            st.text(
                st.characters(exclude_characters="/\\\x00", exclude_categories=["Cs"]),
                min_size=1,
                max_size=12,
            ),
        )
    )
    descr = draw(st.one_of(st.sampled_from(_DESCRS), st.text(max_size=6)))
    shape = draw(_SHAPES)
    fortran = draw(st.booleans())
    if draw(st.integers(0, 9)) == 0:
        header_text = draw(st.text(max_size=80))
    else:
        header_text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    version = draw(st.sampled_from([(1, 0), (1, 0), (2, 0), (3, 0), (0, 7)]))
    encoded = header_text.encode("utf-8", "replace")
    length_format = "<H" if version[0] == 1 else "<I"
    padding = -(8 + struct.calcsize(length_format) + len(encoded) + 1) % 64
    encoded += b" " * padding + b"\n"
    length = len(encoded) if draw(st.integers(0, 9)) else draw(st.integers(0, 2**16 - 1))
    header = b"\x93NUMPY" + bytes(version) + struct.pack(length_format, length) + encoded
    try:
        itemsize = np.dtype(descr).itemsize if descr != "|O" else 8
        declared = int(np.prod(shape, dtype=object)) * itemsize if shape else itemsize
    except Exception:  # noqa: BLE001 - a descr numpy refuses: the member declares nothing
        declared = 0
    size = draw(
        st.one_of(
            st.just(declared if 0 <= declared <= 20_000 else 0),
            st.integers(0, 256),
        )
    )
    data = draw(st.binary(min_size=size, max_size=size)) if size < 64 else bytes(size)
    if descr in ("<i8", ">i4", "<i2", "|i1", "<u8") and draw(st.booleans()):
        data = bytes(b % 11 for b in data)  # mostly labels in range
    return name, header + data


@st.composite
def npz_files(draw) -> bytes:
    members = draw(st.lists(npy_members(), max_size=4))
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate member names are part of the test
        for name, data in members:
            archive.writestr(name, data)
    return _damage(draw, buffer.getvalue())


@st.composite
def valid_npz_files(draw) -> bytes:
    count = draw(st.integers(0, 14))
    arrays = {"images": np.full((count, 28, 28), draw(st.integers(0, 255)), np.uint8)}
    if draw(st.booleans()):
        arrays["labels"] = np.array(
            draw(st.lists(st.integers(-1, 10), min_size=count, max_size=count))
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


NPZ_INPUTS = st.tuples(
    st.one_of(st.binary(max_size=256), npz_files(), valid_npz_files()),
    st.sampled_from([load_dataset, load_samples_npz, load_images_for_classification]),
)


def npz_target(work: Path) -> Callable:
    counter = iter(range(10**9))

    def parse(case) -> object:
        data, reader = case
        # a new name each time: load_dataset caches by path, size and mtime
        path = work / f"fuzz{next(counter)}.npz"
        path.write_bytes(data)
        try:
            return reader(path)
        finally:
            path.unlink()

    return parse


# --- configs -----------------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from([-5, 0, 1, 64, 64.5, "64", 10**12, 2**70, -(2**63), 1e308, -0.0]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)
_FIELD_VALUES = st.one_of(
    _SCALARS,
    _JSON,
    st.sampled_from(
        [
            [-1, 48],
            [24, 48],
            [0],
            [512, 256],
            [[256, "relu"]],
            [[0, "tanh"]],
            [[64, "x"]],
            [0.5, 0.999],
            [2.0, 0.9],
        ]
    ),
    st.lists(st.integers(-2, 5000), max_size=10),
)


def _config_dicts(defaults: dict) -> st.SearchStrategy:
    """A config's default dict with some fields replaced, dropped or added."""
    keys = st.one_of(st.sampled_from(sorted(defaults)), st.text(max_size=8))

    @st.composite
    def build(draw) -> object:
        if draw(st.integers(0, 19)) == 0:
            return draw(_JSON)  # not even a dict, sometimes
        data = dict(defaults)
        for key in draw(st.lists(st.sampled_from(sorted(defaults)), max_size=2)):
            data.pop(key, None)
        data.update(draw(st.dictionaries(keys, _FIELD_VALUES, max_size=3)))
        return data

    return build()


def _defaults(config_class) -> dict:
    return json.loads(json.dumps(asdict(config_class())))


_CONFIG_BUILDERS = {
    "autoencoder": (AutoencoderConfig.from_dict, _defaults(AutoencoderConfig)),
    "gan": (GANConfig.from_dict, _defaults(GANConfig)),
    "inverter": (InverterConfig.from_dict, _defaults(InverterConfig)),
    "classifier": (DigitCNNConfig.from_dict, _defaults(DigitCNNConfig)),
    "eval-classifier": (EvalClassifierConfig.from_dict, _defaults(EvalClassifierConfig)),
    "ae-training": (
        ae_training.AETrainingConfig.from_dict,
        _defaults(ae_training.AETrainingConfig),
    ),
    "gan-training": (
        gan_training.GANTrainingConfig.from_dict,
        _defaults(gan_training.GANTrainingConfig),
    ),
    "transformer": (TransformerOptions.from_extra, _defaults(TransformerOptions)),
}


@st.composite
def run_configs(draw) -> tuple[str, object]:
    """A run folder's config.json: the kind, then model and training sections."""
    reader = draw(st.sampled_from(["autoencoder", "latent-gan"]))
    model, training = (
        ("autoencoder", "ae-training") if reader == "autoencoder" else ("gan", "gan-training")
    )
    config = {
        "kind": draw(st.one_of(st.just(reader), _SCALARS)),
        "model": draw(_config_dicts(_CONFIG_BUILDERS[model][1])),
        "training": draw(_config_dicts(_CONFIG_BUILDERS[training][1])),
    }
    for key in draw(st.lists(st.sampled_from(sorted(config)), max_size=1)):
        del config[key]
    text = json.dumps(config) if draw(st.integers(0, 19)) else draw(st.text(max_size=40))
    return reader, text


CONFIG_INPUTS = st.one_of(
    st.sampled_from(sorted(_CONFIG_BUILDERS)).flatmap(
        lambda name: st.tuples(st.just(name), _config_dicts(_CONFIG_BUILDERS[name][1]))
    ),
    run_configs().map(lambda case: ("run:" + case[0], case[1])),
)


def config_target(work: Path) -> Callable:
    run = work / "run"
    run.mkdir(exist_ok=True)

    def parse(case) -> object:
        name, data = case
        if name == "run:autoencoder":
            (run / "config.json").write_text(data)
            return ae_training.read_saved_configs(run)
        if name == "run:latent-gan":
            (run / "config.json").write_text(data)
            return gan_training.read_saved_configs(run)
        return _CONFIG_BUILDERS[name][0](data)

    return parse


# --- uploads -----------------------------------------------------------------------------------

_MAGICS = [b"GIF89a", b"GIF87a", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"MM\x00*",
           b"\x00\x00\x01\x00", b"RIFF", b"8BPS", b"P5\n", b"P6\n", b"\x89PNG\r\n\x1a\n"]  # fmt: skip


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def png_claims(draw) -> bytes:
    """A PNG whose header claims a random size and format, with little or no real data."""
    side = st.one_of(st.integers(0, 64), st.integers(0, 5000), st.integers(0, 2**31 - 1))
    width, height = draw(side), draw(side)
    depth = draw(st.sampled_from([1, 2, 4, 8, 16, 3]))
    colour = draw(st.sampled_from([0, 2, 3, 4, 6, 5]))
    interlace = draw(st.sampled_from([0, 1, 2]))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    raw = draw(
        st.one_of(
            st.binary(max_size=128),
            st.binary(max_size=128).map(zlib.compress),
            st.integers(0, 50_000).map(lambda n: zlib.compress(bytes(n))),
        )
    )
    chunks = [_png_chunk(b"IHDR", header)]
    if colour == 3 or draw(st.booleans()):
        chunks.append(_png_chunk(b"PLTE", draw(st.binary(max_size=48))))
    chunks += [_png_chunk(b"IDAT", raw), _png_chunk(b"IEND", b"")]
    return _damage(draw, b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


@st.composite
def real_images(draw) -> bytes:
    """A small image that decodes: noise, a bar, or a flat colour, in several modes."""
    side = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    fill = draw(st.sampled_from(["noise", "bar", "flat"]))
    seed = draw(st.integers(0, 2**16))
    array = np.random.default_rng(seed).integers(0, 256, (side[1], side[0], 4), dtype=np.uint8)
    if fill == "bar":
        array[:] = 255
        array[:, side[0] // 3 : side[0] // 3 + 1 + side[0] // 5, :3] = 0
    elif fill == "flat":
        array[:] = array[0, 0]
    mode = draw(st.sampled_from(["RGBA", "RGB", "L", "LA", "P", "1", "I", "CMYK"]))
    picture = Image.fromarray(array).convert(mode)  # (H, W, 4) uint8: RGBA
    buffer = io.BytesIO()
    try:
        picture.save(buffer, format=draw(st.sampled_from(["PNG", "GIF", "BMP", "TIFF", "JPEG"])))
    except (OSError, ValueError, KeyError):  # a mode that format cannot hold
        buffer = io.BytesIO()
        picture.save(buffer, format="TIFF")
    return _damage(draw, buffer.getvalue())


UPLOAD_INPUTS = st.tuples(
    st.one_of(
        st.binary(max_size=256),
        st.tuples(st.sampled_from(_MAGICS), st.binary(max_size=256)).map(b"".join),
        png_claims(),
        real_images(),
    ),
    st.sampled_from([open_upload, prepare_upload]),
)


def upload_target(work: Path) -> Callable:
    def parse(case) -> object:
        data, decoder = case
        return decoder(data)

    return parse


# --- running -----------------------------------------------------------------------------------

STRATEGIES = {
    "idx": IDX_INPUTS,
    "npz": NPZ_INPUTS,
    "config": CONFIG_INPUTS,
    "upload": UPLOAD_INPUTS,
}
TARGETS = {"idx": idx_target, "npz": npz_target, "config": config_target, "upload": upload_target}


def fuzz_settings(examples: int, shrink: bool) -> settings:
    """Deterministic (the same inputs each run), no deadline, no example database on disk."""
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.generate,)
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )


def fuzz_parser(name: str, examples: int, work: Path, strict: bool = False) -> dict:
    """Feed `examples` generated inputs to one parser: the tally, the most any one input added
    to the peak RSS, the process's lifetime peak RSS (hypothesis's own records included) and
    the time.

    `strict` (the tests): the first unexpected exception propagates, shrunk by hypothesis."""
    tally = Tally(strict=strict)
    work.mkdir(parents=True, exist_ok=True)
    target = TARGETS[name](work)

    @fuzz_settings(examples, shrink=strict)
    @given(STRATEGIES[name])
    def property_holds(case):
        tally.run(lambda: target(case))

    began = time.perf_counter()
    property_holds()
    result = asdict(tally)
    del result["strict"]
    result["peak_rss_growth_mb"] = round(tally.peak_rss_growth_mb, 1)
    result["process_peak_rss_mb"] = round(_max_rss_kb() / 1024, 1)
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def run_fuzz(examples_per_parser: int = 10_000, parsers=PARSERS) -> dict:
    """Every parser's figures, plus the totals and whether the targets were met (no
    unexpected exception, and each parser's peak RSS growth under MEMORY_BOUND_MB)."""
    with tempfile.TemporaryDirectory(prefix="zspace-fuzz-") as folder:
        results = {}
        for name in parsers:
            results[name] = fuzz_parser(name, examples_per_parser, Path(folder) / name)
            print(f"  {name}: {_summary(results[name])}", flush=True)
    return {
        "parsers": results,
        "unexpected": sum(r["unexpected"] for r in results.values()),
        "memory_bound_mb": MEMORY_BOUND_MB,
        "targets_met": all(
            r["unexpected"] == 0 and r["peak_rss_growth_mb"] <= MEMORY_BOUND_MB
            for r in results.values()
        ),
    }


def _summary(result: dict) -> str:
    return (
        f"{result['inputs']} inputs: {result['valid']} valid, {result['one_line_errors']} "
        f"one-line errors, {result['unexpected']} unexpected; peak RSS +"
        f"{result['peak_rss_growth_mb']} MB per input ({result['process_peak_rss_mb']} MB "
        f"process peak); {result['seconds']} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="inputs per parser (10000)")
    parser.add_argument("--only", default=",".join(PARSERS), help="parsers (comma-separated)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    parsers = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(parsers) - set(PARSERS))
    if unknown:
        parser.error(f"unknown parsers {unknown}; choose from {', '.join(PARSERS)}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results = run_fuzz(args.examples, parsers)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
