"""Fetching dataset files from mirrors, checksum verification, and the "verified" marker.

Downloads go to a temporary file in the destination folder and are checksummed before an atomic
`os.replace`, so a dataset folder never holds a partial or corrupt file under its real name: an
interrupted or failed download leaves nothing behind.

Verification (see `registry` for the two kinds of checksum):

* a downloaded file must match the official MD5 of the compressed bytes, and ``sha256_raw`` when
  the registry knows it (a file from a mirror named in ``$ZSPACE_MIRROR`` is judged like a local
  file);
* a local file is checked by ``sha256_raw`` where known (it does not depend on the gzip wrapper),
  else by MD5.

Hashing and decompressing every file on every load would cost more than parsing it, so loads do
not verify checksums (the IDX parser's structural checks catch truncation and garbage). Instead, a
successful verification is recorded in a small marker file (``.zspace-verified.json``) holding
each file's size and mtime; `dataset_status` reports a file as "verified" while those still
match. The marker is best effort: in a read-only folder it is simply not written.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

from zspace.data.registry import (
    DatasetSpec,
    FileSpec,
    get_spec,
    resolve_data_dir,
    user_mirrors,
)
from zspace.errors import DataError
from zspace.version import __version__

#: Seconds to wait for a mirror to connect or send the next chunk.
DEFAULT_TIMEOUT = 30.0
MARKER_NAME = ".zspace-verified.json"
_CHUNK = 1 << 20


# --- checksums -----------------------------------------------------------------------------------


def md5_file(path: Path) -> str:
    """MD5 of a file's bytes as stored (for gzip files: of the compressed bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_gunzipped(path: Path) -> str:
    """SHA-256 of a gzip file's decompressed content. Raises `DataError` if it is not valid gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a valid gzip file ({error})") from None
    return digest.hexdigest()


def checksum_problem(path: Path, spec: FileSpec, *, downloaded: bool = False) -> str | None:
    """Why `path` does not match `spec`, or None if it does.

    A downloaded file must carry the official compressed MD5 (and sha256_raw when known); a local
    file is judged by sha256_raw when known, since its gzip wrapper may differ from the official
    one, else by MD5.
    """
    if downloaded or spec.sha256_raw is None:
        md5 = md5_file(path)
        if md5 != spec.md5:
            return f"md5 {md5} != expected {spec.md5}"
    if spec.sha256_raw is not None:
        try:
            sha = sha256_gunzipped(path)
        except DataError:
            return "not a valid gzip file"
        if sha != spec.sha256_raw:
            return f"sha256 of the decompressed data {sha[:16]}... != expected {spec.sha256_raw[:16]}..."
    return None


# --- verified marker -----------------------------------------------------------------------------


def _stamp(path: Path) -> list[int]:
    """A cheap identity of a file's current content: size and modification time."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_marker(folder: Path) -> dict:
    try:
        marker = json.loads((folder / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _read_only(folder: Path) -> bool:
    """True for a folder we may not write to, or one whose mode has no write bits at all: a
    shared copy marked read-only is respected even by root, whom the OS would let through."""
    try:
        return not (os.access(folder, os.W_OK) and folder.stat().st_mode & 0o222)
    except OSError:
        return True


def _publish(tmp: Path, final: Path) -> None:
    """Atomically move a finished temp file to its real name, readable by all like any download
    (mkstemp creates files private to the user)."""
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)


def _record_verified(folder: Path, names: list[str]) -> None:
    """Add files to the folder's verified marker (atomically; skipped in a read-only folder)."""
    if _read_only(folder):
        return
    marker = _read_marker(folder)
    for name in names:
        marker[name] = _stamp(folder / name)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MARKER_NAME}.", suffix=".part")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as stream:
            json.dump(marker, stream, indent=1, sort_keys=True)
        _publish(Path(tmp), folder / MARKER_NAME)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


# --- downloading ---------------------------------------------------------------------------------


def _describe(error: BaseException, timeout: float) -> str:
    """A short reason for one mirror's failure."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        # URLError wraps the real cause (refused connection, DNS failure, timeout) or a string.
        if not isinstance(error.reason, BaseException):
            return str(error.reason)
        error = error.reason
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}".rstrip(": ")


def _download_to(url: str, target: Path, label: str, progress: bool, timeout: float) -> None:
    """Stream `url` into the (already created) file `target`, with a progress bar named `label`."""
    request = urllib.request.Request(url, headers={"User-Agent": f"zspace/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
        total = response.headers.get("Content-Length")
        bar = tqdm(
            total=int(total) if total and total.isdigit() else None,
            unit="B",
            unit_scale=True,
            desc=label,
            leave=False,
            # Bars only make sense on a terminal; logs and CI get none.
            disable=not (progress and sys.stderr.isatty()),
        )
        with bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def download_file(
    spec: FileSpec,
    folder: Path,
    mirrors: tuple[str, ...],
    *,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    by_content: tuple[str, ...] = (),
) -> Path:
    """Download one file into `folder`, trying each mirror in turn until one gives a file with the
    right checksum. Returns its path; raises `DataError` naming every mirror's failure.

    Files from the mirrors in `by_content` (the user's own) are judged like local files, by the
    checksum of their decompressed content, since such a mirror may hold re-compressed copies."""
    final = folder / spec.name
    if _read_only(folder):
        raise DataError(f"cannot download {spec.name}: {folder} is read-only")
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + spec.name
        try:
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{spec.name}.", suffix=".part")
        except OSError as error:
            raise DataError(f"cannot write to {folder}: {error.strerror or error}") from None
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if progress:
                print(f"downloading {url}", file=sys.stderr)
            _download_to(url, tmp, spec.name, progress, timeout)
            problem = checksum_problem(tmp, spec, downloaded=mirror not in by_content)
            if problem is None:
                _publish(tmp, final)  # atomic: the real name only ever holds a verified file
                return final
            failures.append(f"{url}: checksum mismatch ({problem})")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            failures.append(f"{url}: {_describe(error, timeout)}")
        finally:
            tmp.unlink(missing_ok=True)
    if not failures:
        raise DataError(f"cannot download {spec.name}: no mirrors configured")
    raise DataError(f"cannot download {spec.name}: " + "; ".join(failures))


def fetch_dataset(
    spec_or_name: DatasetSpec | str,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    verify: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download the files of a dataset that are missing from its folder; return the folder.

    With ``verify=True`` the files already there are checksummed too, and any that do not match are
    downloaded again (replacing them atomically).
    """
    spec = get_spec(spec_or_name)
    folder = resolve_data_dir(data_dir) / spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create {folder}: {error.strerror or error}") from None
    verified = []
    for file_spec in spec.files.values():
        path = folder / file_spec.name
        if path.is_file():
            if not verify:
                continue
            if checksum_problem(path, file_spec) is None:
                verified.append(file_spec.name)
                continue
        mirrors = (*user_mirrors(spec), *spec.mirrors)
        download_file(
            file_spec,
            folder,
            mirrors,
            progress=progress,
            timeout=timeout,
            by_content=user_mirrors(spec),
        )
        verified.append(file_spec.name)
    if verified:
        _record_verified(folder, verified)
    return folder


# --- status --------------------------------------------------------------------------------------


def dataset_status(
    name: DatasetSpec | str, data_dir: str | os.PathLike | None = None, *, verify: bool = False
) -> dict:
    """Where a dataset lives and the state of each of its files.

    Returns ``{"name", "description", "folder", "files", "problems", "state"}``: ``files`` maps
    each file name to "missing", "present", "verified" or (only with ``verify=True``) "corrupt";
    ``problems`` maps corrupt files to the reason; ``state`` summarises the dataset as "missing",
    "partial", "present", "verified" or "corrupt".

    Without `verify`, "verified" comes from the cheap marker (a file verified before and unchanged
    since); with it, every present file is checksummed now and the marker is updated.
    """
    spec = get_spec(name)
    folder = resolve_data_dir(data_dir) / spec.name
    marker = _read_marker(folder)
    files, problems, newly_verified = {}, {}, []
    for file_spec in spec.files.values():
        path = folder / file_spec.name
        if not path.is_file():
            files[file_spec.name] = "missing"
        elif verify:
            problem = checksum_problem(path, file_spec)
            if problem is None:
                files[file_spec.name] = "verified"
                newly_verified.append(file_spec.name)
            else:
                files[file_spec.name] = "corrupt"
                problems[file_spec.name] = problem
        else:
            seen = marker.get(file_spec.name)
            files[file_spec.name] = "verified" if seen == _stamp(path) else "present"
    if newly_verified:
        _record_verified(folder, newly_verified)
    states = set(files.values())
    if "corrupt" in states:
        state = "corrupt"
    elif states == {"missing"}:
        state = "missing"
    elif "missing" in states:
        state = "partial"
    elif states == {"verified"}:
        state = "verified"
    else:
        state = "present"
    return {
        "name": spec.name,
        "description": spec.description,
        "folder": folder,
        "files": files,
        "problems": problems,
        "state": state,
    }
