"""How likely real codes are under a latent flow: training codes against test codes.

A GAN cannot say how probable a digit is; a flow can, by the change of variables along its
ODE (`FlowSampler.log_likelihood`). Comparing the log-likelihood of codes the flow trained on
with that of test codes it never saw is a memorisation check: a flow that memorised its
training set gives its own codes far more density than new ones.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from zspace.data import load_dataset
from zspace.errors import ZspaceError
from zspace.loading import load_sampler
from zspace.runs import RunDir, run_dataset_name
from zspace.sampling.latent import encode_images


def summary(values: torch.Tensor) -> dict:
    """Mean, standard deviation and a 95% normal interval of the mean, in nats per code."""
    mean = float(values.mean())
    spread = float(values.std()) if len(values) > 1 else 0.0
    half_width = 1.96 * spread / math.sqrt(len(values))
    return {
        "mean": round(mean, 3),
        "std": round(spread, 3),
        "ci95": [round(mean - half_width, 3), round(mean + half_width, 3)],
        "count": len(values),
    }


def split_likelihoods(
    run_dir: str | Path,
    per_split: int = 1000,
    steps: int = 32,
    exact: bool = False,
    seed: int = 0,
    data_dir=None,
    device: str = "cpu",
) -> dict:
    """Log-likelihood of `per_split` random training codes and as many test codes (each
    under its own label for a conditional flow); the gap train - test in nats per code."""
    flow = load_sampler(run_dir, device, action="give likelihoods")
    if not hasattr(flow, "log_likelihood"):
        raise ZspaceError(f"{run_dir} is a {flow.kind} run; only a latent flow has a likelihood")
    dataset = load_dataset(run_dataset_name(RunDir(run_dir).read_config()), data_dir=data_dir)
    generator = torch.Generator().manual_seed(seed)
    report = {"run": str(run_dir), "steps": steps, "divergence": "exact" if exact else "hutchinson"}
    started = time.perf_counter()
    for split, images, labels in (
        ("train", dataset.train_images, dataset.train_labels),
        ("test", dataset.test_images, dataset.test_labels),
    ):
        rows = torch.randperm(len(images), generator=generator)[:per_split]
        codes = encode_images(flow.autoencoder, images[rows])
        chosen = labels[rows] if flow.conditional and labels is not None else None
        values = flow.log_likelihood(codes, chosen, steps=steps, exact=exact, seed=seed)
        report[split] = summary(values)
    report["gap"] = round(report["train"]["mean"] - report["test"]["mean"], 3)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report
