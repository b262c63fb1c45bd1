"""`zspace.load`: any run folder, rebuilt by the loader its kind names in `zspace.runs`."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from zspace.errors import RunError, ZspaceError
from zspace.runs import SAMPLER_KINDS, RunDir, run_kind


def load(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Load any zspace run folder by its kind: an Autoencoder, a Sampler (latent-gan,
    pixel-gan, gmm-baseline, ...) or a few-shot classifier."""
    kind = run_kind(RunDir(run_dir).read_config()["kind"])
    if kind.loader is None:
        raise RunError(
            f"{run_dir} holds a run of kind {kind.name} ({kind.description}); it has no model"
        )
    module_name, function_name = kind.loader.split(":")
    loader = getattr(importlib.import_module(module_name), function_name)
    return loader(run_dir, device)


def load_sampler(
    run_dir: str | Path,
    device: str | torch.device = "cpu",
    action: str = "sample",
    sampling: dict | None = None,
):
    """A run that draws digits (a Sampler); one RunError line for any other kind.

    `sampling` (solver, steps, guidance; None values ignored) overrides a flow run's default
    sampler; given to any other kind, it is refused in one line."""
    kind = run_kind(RunDir(run_dir).read_config()["kind"])
    if not kind.sampler:
        raise RunError(
            f"{run_dir} holds a run of kind {kind.name}, which cannot {action}; "
            f"give a run of kind {' or '.join(SAMPLER_KINDS)}"
        )
    sampler = load(run_dir, device)
    given = {key: value for key, value in (sampling or {}).items() if value is not None}
    if not given:
        return sampler
    if not hasattr(sampler, "with_sampling"):
        flags = ", ".join(f"--{key.replace('_', '-')}" for key in given)
        raise ZspaceError(
            f"{flags}: sampling settings of latent-flow runs; {run_dir} is a {kind.name} run"
        )
    return sampler.with_sampling(**given)
