"""Single files zspace writes for users (grids, figures, arrays): atomically, tagged as
zspace's, and never over a file zspace did not write.

A PNG carries a "Software: zspace ..." text chunk, an .npz a `zspace_version` array and a JSON
object a "zspace_version" key, so a later command can tell its own output, which it may
replace, from a user's file, which it refuses to touch.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from zspace.checkpoint import atomic_open, atomic_write_json
from zspace.errors import ZspaceError
from zspace.version import __version__

SOFTWARE = f"zspace {__version__}"
NPZ_TAG = "zspace_version"


def written_by_zspace(path: str | Path) -> bool:
    """Whether an existing file carries zspace's tag (see the module docstring)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".png":
            with Image.open(path) as picture:
                return str(picture.info.get("Software", "")).startswith("zspace")
        if path.suffix.lower() == ".npz":
            with zipfile.ZipFile(path) as archive:
                return f"{NPZ_TAG}.npy" in archive.namelist()
        if path.suffix.lower() == ".json":
            saved = json.loads(path.read_text())
            return isinstance(saved, dict) and NPZ_TAG in saved
    except (OSError, UnidentifiedImageError, zipfile.BadZipFile, ValueError):
        return False
    return False


def output_file(path: str | Path, suffixes: tuple[str, ...], what: str = "--out") -> Path:
    """Check a file path the user asked zspace to write, before any work: the right suffix, not
    a folder, in a folder (or where one can be made), and not a file zspace did not write."""
    path = Path(path)
    if path.is_dir():
        example = path / ("out" + suffixes[0])
        raise ZspaceError(f"{what} {path} is a folder; name a file, e.g. {example}")
    if path.suffix.lower() not in suffixes:
        raise ZspaceError(f"{what} must end in {' or '.join(suffixes)}, got {path}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ZspaceError(f"{what} {path}: {parent} is a file, not a folder")
            break
    if path.exists() and not written_by_zspace(path):
        raise ZspaceError(
            f"{path} already exists and zspace did not write it; choose another name, or "
            "remove it first"
        )
    return path


def save_png(picture: Image.Image, path: str | Path) -> Path:
    """A PIL image as a tagged PNG, written atomically."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    with atomic_open(path) as handle:
        picture.save(handle, format="PNG", pnginfo=info)
    return path


def save_figure(figure, path: str | Path) -> Path:
    """A matplotlib figure as a tagged PNG, written atomically."""
    path = Path(path)
    with atomic_open(path) as handle:
        figure.savefig(handle, format="png", metadata={"Software": SOFTWARE})
    return path


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Arrays as a tagged .npz (no pickled objects), written atomically."""
    path = Path(path)
    with atomic_open(path) as handle:
        np.savez(handle, **arrays, **{NPZ_TAG: np.array(__version__)})
    return path


def save_json(path: str | Path, data: dict) -> Path:
    """A JSON object, tagged with "zspace_version", written atomically."""
    path = Path(path)
    atomic_write_json(path, {**data, NPZ_TAG: __version__})
    return path
