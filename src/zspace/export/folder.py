"""The folder an export is written to: never a user's files, and never half written.

An export is written into a hidden staging folder beside `--out`, checked there, and moved into
place. A new `--out` is the staging folder renamed (one atomic step). An existing one, which
must be empty or hold an earlier export, first gets a manifest marked incomplete that names
both the earlier files and the new ones, then each file is renamed over its old version, and
the complete manifest comes last; an interrupted export therefore leaves a folder that the next
export recognises as its own and finishes. Only files that an export's manifest names are ever
replaced or removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from zspace.checkpoint import atomic_write_json
from zspace.errors import ZspaceError

MANIFEST = "export.json"
WRITTEN_BY = "zspace export"


def _plain_name(name: object) -> bool:
    """A file name inside the folder: no separators, no '..', not hidden, not the manifest."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..", MANIFEST)
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
    )


def read_manifest(folder: Path) -> dict | None:
    """The export.json that zspace export wrote in `folder`, else None."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("written_by") != WRITTEN_BY:
        return None
    files = manifest.get("files")
    if not isinstance(files, list) or not all(_plain_name(name) for name in files):
        return None
    return manifest


class ExportFolder:
    """`--out` for one export: checked before the work starts, filled by `commit`."""

    def __init__(self, out: str | Path):
        self.path = Path(out)
        self.previous: list[str] = []  # files an earlier export wrote here
        self._inspect()

    def _inspect(self) -> None:
        if self.path.is_symlink() and not self.path.exists():
            raise ZspaceError(f"--out {self.path} is a link to nothing; give a folder")
        if self.path.exists() and not self.path.is_dir():
            raise ZspaceError(f"--out {self.path} is a file; give a folder for the export")
        if self.path.is_dir() and any(self.path.iterdir()):
            manifest = read_manifest(self.path)
            if manifest is None:
                raise ZspaceError(
                    f"--out {self.path} is a folder that is not empty and was not written by "
                    "zspace export; give a new or empty folder (zspace never overwrites other "
                    "files)"
                )
            self.previous = list(manifest["files"])

    def check_names(self, names: list[str]) -> None:
        """Refuse to write a file that is there already and that no earlier export wrote."""
        for name in names:
            target = self.path / name
            if name not in self.previous and (target.exists() or target.is_symlink()):
                raise ZspaceError(
                    f"--out {self.path} already holds {name}, which zspace export did not "
                    "write; give a new or empty folder"
                )

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A hidden folder beside `--out` to write into; removed when the export ends. Made
        with os.mkdir, not mkdtemp, so that it (and, renamed, `--out`) gets the umask's usual
        permissions: exported graphs are meant to be read by other services."""
        parent = self.path.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            stage = parent / f".{self.path.name}.export-{secrets.token_hex(4)}"
            try:
                stage.mkdir()
                break
            except FileExistsError:
                continue
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def commit(self, stage: Path, files: list[str], manifest: dict) -> None:
        """Move the staged `files` and `manifest` (which must list `files`) into `--out`."""
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if not self.path.exists():
            try:
                os.rename(stage, self.path)
                return
            except OSError:  # created meanwhile: go on as for an existing folder
                self._inspect()
                self.check_names(files)
        self.path.mkdir(parents=True, exist_ok=True)
        pending = {**manifest, "complete": False, "files": sorted({*self.previous, *files})}
        atomic_write_json(self.path / MANIFEST, pending)
        for name in files:
            os.replace(stage / name, self.path / name)
        os.replace(stage / MANIFEST, self.path / MANIFEST)
        for name in set(self.previous) - set(files):  # left from an earlier export of ours
            (self.path / name).unlink(missing_ok=True)
