"""Atomic, pickle-free checkpoints: tensors in safetensors, everything else as JSON strings.

One file holds a whole training state (models, optimizers, RNG, progress), so a kill at any
moment leaves either the previous checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from zspace.errors import RunError

TEMPORARY_SUFFIX = ".tmp"
# mkstemp makes files only their owner may read; a finished file gets the permissions any
# new file would (0o666 less the umask), so that runs can be shared and served.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _temporary_beside(path: Path) -> str:
    """A new, hidden temporary file in `path`'s folder: ".NAME.<random>.tmp"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent
    )
    os.close(fd)
    os.chmod(tmp_name, 0o666 & ~_UMASK)
    return tmp_name


def _fsync_file(name: str) -> None:
    with open(name, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(tmp_name: str, path: Path) -> None:
    """fsync the finished temporary file, rename it over `path`, fsync the folder: a kill or
    a power cut leaves the old file or the new one, never a torn one."""
    _fsync_file(tmp_name)
    os.replace(tmp_name, path)
    _fsync_folder(path.parent)


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` when the block ends without an error
    (temp file in the same folder, fsync, rename); on an error `path` is left as it was."""
    path = Path(path)
    tmp_name = _temporary_beside(path)
    try:
        with open(tmp_name, "wb") as handle:
            yield handle
        _replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`."""
    with atomic_open(path) as handle:
        handle.write(data)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files that a killed atomic write left in `folder` or below.

    Only names of the form atomic writes make (".NAME.<8 random>.tmp") are touched. Call it
    when a command opens a folder zspace owns, before it writes there."""
    removed = []
    for candidate in Path(folder).rglob(f".*{TEMPORARY_SUFFIX}"):
        stem = candidate.name[1 : -len(TEMPORARY_SUFFIX)]
        name, dot, random_part = stem.rpartition(".")
        if dot and name and len(random_part) == 8 and candidate.is_file():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None):
    """Save tensors (moved to CPU, made contiguous) atomically as safetensors."""
    path = Path(path)
    tmp_name = _temporary_beside(path)
    try:
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        try:
            save_file(cpu, tmp_name, metadata={k: str(v) for k, v in (metadata or {}).items()})
        except SafetensorError as error:  # the Rust writer's I/O errors (a full disk, say)
            raise RunError(f"cannot write {path} ({error})") from None
        _replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_tensors(path: Path, device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Load (tensors, metadata) from a safetensors file; a damaged file is a RunError."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path} does not exist")
    try:
        tensors = load_file(str(path), device=str(device))
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise RunError(f"{path} is not a readable safetensors file ({error})") from error
    return tensors, metadata


def read_metadata(path: Path) -> dict:
    """A safetensors file's metadata alone (its header), without loading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise RunError(f"{path} is not a readable safetensors file ({error})") from error


def load_module_weights(module: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict, turning shape or key mismatches into one clear RunError."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise RunError(
            f"weights in {source} do not fit the saved config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise RunError(
                f"weights in {source} do not fit the saved config: {key} has shape "
                f"{tuple(tensors[key].shape)}, the model expects {tuple(value.shape)}"
            )
    damaged = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
    if damaged:
        # Such weights draw blank or noisy digits without any error: refuse them instead.
        raise RunError(
            f"weights in {source} hold NaN or infinite values ({damaged[0]}"
            f"{' and others' if len(damaged) > 1 else ''}); the file is damaged or training "
            "diverged"
        )
    module.load_state_dict(tensors)


def optimizer_to_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimizer state dict into tensors and a JSON-able remainder."""
    state = optimizer.state_dict()
    tensors, plain_state = {}, {}
    for param_id, param_state in state["state"].items():
        plain_state[str(param_id)] = {}
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{param_id}.{key}"] = value
            else:
                plain_state[str(param_id)][key] = value
    meta = {
        f"{prefix}.json": json.dumps({"param_groups": state["param_groups"], "state": plain_state})
    }
    return tensors, meta


def optimizer_from_tensors(
    optimizer: torch.optim.Optimizer, tensors: dict, metadata: dict, prefix: str
) -> None:
    """Inverse of optimizer_to_tensors."""
    try:
        plain = json.loads(metadata[f"{prefix}.json"])
    except KeyError as error:
        raise RunError(f"checkpoint has no state for optimizer {prefix!r}") from error
    state = {int(k): dict(v) for k, v in plain["state"].items()}
    head = f"{prefix}.state."
    for key, value in tensors.items():
        if key.startswith(head):
            param_id, name = key[len(head) :].split(".", 1)
            state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def rng_to_tensors() -> dict[str, torch.Tensor]:
    """The global torch RNG states (CPU, and CUDA when present) as uint8 tensors."""
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    return tensors


def rng_from_tensors(tensors: dict) -> None:
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"].cpu())
    if torch.cuda.is_available():
        states = [tensors[k].cpu() for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
