"""Fit a NoiseInverter to a trained GAN and keep it in the run folder (inverter.safetensors).

Each step trains on two batches: the generator's own samples (noise drawn, labels uniform) and,
when given, the run's training data (AE codes of training images). Both use the loss the
inversion itself minimises (see zspace.sampling.inversion): the squared error between the generator's
output at the inverter's guess and the target, plus the pull towards the typical noise norm.
Only the error is used, never a regression onto the drawn noise: a generator maps many noises
to nearly the same code, and regressing onto them pulls every guess towards the mean noise
(measured in a trial: noise norms of 3.5 instead of 8, and a worse match). The real batch
helps because uploads are real digits, which the generator's samples only approximate: on 100
held-out training codes of the default cGAN, 500 steps, the guess's error is 0.242 from
samples alone and 0.195 with the real batch (0.081 and 0.080 after the refinement).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from zspace.checkpoint import save_tensors
from zspace.errors import ZspaceError
from zspace.models.inverter import InverterConfig, NoiseInverter
from zspace.runs import RunDir
from zspace.sampling.inversion import INVERTER_FILE, NORM_WEIGHT, inversion_objective
from zspace.training.loop import one_cycle_lr, progress_bar, set_learning_rate


@dataclass
class InverterTrainingConfig:
    """How an inverter was fitted (saved beside its weights)."""

    steps: int = 500
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0

    def validate(self) -> None:
        if self.steps < 1:
            raise ZspaceError(f"inverter steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise ZspaceError(f"inverter batch size must be at least 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ZspaceError(f"inverter learning rate must be positive, got {self.learning_rate}")


def _inversion_loss(generator, inverter, targets, labels) -> torch.Tensor:
    guess = inverter(targets, labels)
    error, prior = inversion_objective(generator(guess, labels), targets, guess)
    return (error + NORM_WEIGHT * prior).mean()


def fit_inverter(
    sampler,
    data: torch.Tensor | None = None,
    data_labels: torch.Tensor | None = None,
    config: InverterTrainingConfig | None = None,
    progress: bool = True,
) -> NoiseInverter:
    """A NoiseInverter for `sampler`'s generator, fitted on its own samples and, if given,
    on `data` (data space, (N, data_dim)) with `data_labels` (N,) for a conditional run."""
    config = config or InverterTrainingConfig()
    config.validate()
    generator, scaler, gan = sampler.generator, sampler.scaler, sampler.config
    if gan.conditional and data is not None and data_labels is None:
        raise ZspaceError("a conditional run's inverter needs the labels of its data")
    device = sampler.device
    inverter_config = InverterConfig(
        data_dim=gan.data_dim,
        noise_dim=gan.noise_dim,
        num_classes=gan.num_classes if gan.conditional else 0,
    )
    random = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):  # seeded initial weights; the global RNG untouched
        torch.manual_seed(config.seed)
        inverter = NoiseInverter(inverter_config).to(device)
    optimizer = torch.optim.Adam(inverter.parameters(), lr=config.learning_rate)
    standardised = None if data is None else scaler(data.to(device)).detach()
    real_labels = None if data_labels is None or not gan.conditional else data_labels.to(device)
    batch = config.batch_size
    generator.eval()
    generator.requires_grad_(False)
    try:
        for step in progress_bar(range(config.steps), config.steps, "inverter", progress):
            set_learning_rate(optimizer, one_cycle_lr(step, config.steps, config.learning_rate))
            noise = torch.randn(batch, gan.noise_dim, generator=random).to(device)
            labels = None
            if gan.conditional:
                labels = torch.randint(0, gan.num_classes, (batch,), generator=random).to(device)
            with torch.no_grad():
                samples = generator(noise, labels)
            loss = _inversion_loss(generator, inverter, samples, labels)
            if standardised is not None:
                rows = torch.randint(0, len(standardised), (batch,), generator=random).to(device)
                row_labels = None if real_labels is None else real_labels[rows]
                loss = loss + _inversion_loss(generator, inverter, standardised[rows], row_labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        generator.requires_grad_(True)
    return inverter.eval()


def save_inverter(
    run_dir: str | Path, inverter: NoiseInverter, config: InverterTrainingConfig
) -> Path:
    """Write the inverter into the run folder (atomically; replaces an older one)."""
    path = RunDir(run_dir).file(INVERTER_FILE)
    metadata = {
        "inverter": json.dumps(inverter.config.to_dict()),
        "training": json.dumps(asdict(config)),
    }
    save_tensors(path, inverter.state_dict(), metadata)
    return path


def has_inverter(run_dir: str | Path) -> bool:
    return RunDir(run_dir).file(INVERTER_FILE).is_file()
