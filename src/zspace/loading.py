"""`zspace.load`: any run folder, rebuilt by the loader its kind names in `zspace.runs`."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from zspace.errors import RunError
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


def load_sampler(run_dir: str | Path, device: str | torch.device = "cpu", action: str = "sample"):
    """A run that draws digits (a Sampler); one RunError line for any other kind."""
    kind = run_kind(RunDir(run_dir).read_config()["kind"])
    if not kind.sampler:
        raise RunError(
            f"{run_dir} holds a run of kind {kind.name}, which cannot {action}; "
            f"give a run of kind {' or '.join(SAMPLER_KINDS)}"
        )
    return load(run_dir, device)
