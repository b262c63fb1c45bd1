"""Pick the compute device: CUDA, then Apple's MPS, then CPU."""

from __future__ import annotations

import torch

from zspace.errors import ZspaceError


def resolve_device(name: str | None = "auto") -> torch.device:
    """Turn "auto", "cpu", "cuda", "cuda:1" or "mps" into a usable torch.device."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ZspaceError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ZspaceError("--device cuda was asked for but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ZspaceError("--device mps was asked for but MPS is not available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ZspaceError(f"unsupported device {name!r}; use auto, cpu, cuda or mps")
    return device
