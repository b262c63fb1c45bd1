"""Autoencoder presets side by side under one training budget.

Every preset is trained for the same epochs on the same images with the same batch size,
schedule and seed, then measured the same way: test reconstruction MSE, training seconds per
epoch, encode+decode images/s at batch 1,000, and the few-shot accuracy of encoder+MLP on its
codes (mean and 95% CI over repeated label draws). `benchmarks/bench_presets.py` and the
`ae-presets` stage of `zspace run` both call `compare_presets`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zspace.data import load_dataset
from zspace.data.registry import DEFAULT_DATASET
from zspace.errors import ZspaceError
from zspace.fewshot.report import REFERENCE_LABELS, interval_text
from zspace.fewshot.study import ENCODER, StudyConfig, run_study
from zspace.memory import release_memory
from zspace.models.encoders import AutoencoderConfig
from zspace.models.images import to_float_images
from zspace.models.presets import ae_config_for_preset, preset_names
from zspace.runs import RunDir
from zspace.training.autoencoder import AETrainingConfig, train_autoencoder

REFERENCE_HEAD = "(sigmoid,64)->(softmax,10)"
# MLP and convolution beside attention with and without position encodings.
DEFAULT_PRESETS = ("mlp", "conv", "transformer", "transformer-nopos")


@dataclass
class ComparisonSettings:
    presets: list[str] = field(default_factory=lambda: list(DEFAULT_PRESETS))
    epochs: int = 1
    limit: int | None = None  # first N training images
    batch_size: int = AETrainingConfig.batch_size
    latent_dim: int = AutoencoderConfig.latent_dim
    seed: int = 0
    labels: int = REFERENCE_LABELS
    draws: int = StudyConfig.draws  # 0 skips the few-shot column
    head: str = REFERENCE_HEAD
    dataset: str = DEFAULT_DATASET
    test_limit: int | None = None  # few-shot column on the first N test images (quick runs)

    def validate(self) -> None:
        known = preset_names()
        unknown = [p for p in self.presets if p not in known]
        if unknown:
            raise ZspaceError(f"unknown autoencoder preset {unknown[0]!r}; choose from {known}")
        if not self.presets:
            raise ZspaceError("name at least one autoencoder preset to compare")
        if self.epochs < 1 or self.labels < 1 or self.draws < 0:
            raise ZspaceError("epochs and labels must be at least 1, draws at least 0")


def _quiet(line: str) -> None:
    """A log that drops its lines."""


@torch.no_grad()
def encode_decode_rate(model, test_images, batch_size: int = 1000, repeats: int = 5) -> float:
    """Images per second through encode then decode, one batch of `batch_size` at a time."""
    device = next(model.parameters()).device
    batch = to_float_images(test_images[:batch_size].to(device))
    model.eval()
    _encode_decode_seconds(model, batch)  # warm-up: first-call allocations and kernel selection
    return len(batch) / statistics.median(
        _encode_decode_seconds(model, batch) for _ in range(repeats)
    )


@torch.no_grad()
def _encode_decode_seconds(model, batch: torch.Tensor) -> float:
    started = time.perf_counter()
    model.decode(model.encode(batch))
    if batch.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def fewshot_accuracy(run_dir: Path, settings: ComparisonSettings, data_dir, device) -> dict:
    """encoder+MLP accuracy with `settings.labels` labels over `settings.draws` draws."""
    config = StudyConfig(
        ae_run=str(run_dir),
        labels=[settings.labels],
        draws=settings.draws,
        seed=settings.seed,
        heads=[settings.head],
        pipelines=[ENCODER],
        dataset=settings.dataset,
        data_dir=data_dir,
        train_limit=settings.limit,  # draw labels from the images the autoencoder saw
        test_limit=settings.test_limit,
        device=device,
    )
    summary = run_study(config, out=None, progress=False, log=_quiet)
    (result,) = [r for r in summary["results"] if r["method"] == ENCODER]
    return {"mean": result["mean"], "ci95": result["ci95"], "draws": len(result["accuracies"])}


def measure_preset(
    preset: str, run_dir: Path, settings: ComparisonSettings, data_dir, device, progress: bool
) -> dict:
    """Train (or finish training) one preset in `run_dir` and measure it."""
    model = _train_preset(preset, run_dir, settings, data_dir, device, progress)
    test_images = load_dataset(settings.dataset, data_dir=data_dir).test_images
    metrics = RunDir(run_dir).read_metrics()
    return {
        "preset": preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "encoder_parameters": sum(p.numel() for p in model.encoder.parameters()),
        # Training measures the whole test set after every epoch; the last is the final model.
        "test_mse": metrics[-1]["test_mse"],
        "seconds_per_epoch": statistics.mean(m["seconds"] for m in metrics),
        "encode_decode_images_per_s": encode_decode_rate(model, test_images),
        "fewshot": (
            fewshot_accuracy(run_dir, settings, data_dir, device) if settings.draws else None
        ),
    }


def _train_preset(
    preset: str, run_dir: Path, settings: ComparisonSettings, data_dir, device, progress: bool
):
    training = AETrainingConfig(
        dataset=settings.dataset,
        limit=settings.limit,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=settings.seed,
    )
    return train_autoencoder(
        run_dir,
        ae_config_for_preset(preset, settings.latent_dim),
        training,
        data_dir=data_dir,
        device=device,
        resume=RunDir(run_dir).exists(),  # a comparison interrupted mid-way continues
        progress=progress,
    )


def compare_presets(
    settings: ComparisonSettings,
    runs_dir: str | Path,
    data_dir=None,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """One row per preset (see `measure_preset`); each preset's run is kept in runs_dir/NAME."""
    settings.validate()
    rows = []
    for preset in settings.presets:
        log(f"{preset}: training {settings.epochs} epoch(s)")
        row = measure_preset(preset, Path(runs_dir) / preset, settings, data_dir, device, progress)
        log(
            f"  test MSE {row['test_mse']:.4f}, {row['seconds_per_epoch']:.1f} s/epoch, "
            f"{row['encode_decode_images_per_s']:,.0f} img/s, few-shot {fewshot_cell(row)}"
        )
        rows.append(row)
        release_memory()  # each preset's training leaves freed heap behind
    return rows


def fewshot_cell(row: dict) -> str:
    result = row.get("fewshot")
    if result is None:
        return "–"
    return f"{100 * result['mean']:.1f}% {interval_text(result['ci95'], digits=1)}"


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the comparison table, formatted for Markdown or HTML."""
    headers = [
        "preset",
        "params (encoder)",
        "test MSE",
        "s/epoch",
        "enc+dec img/s (batch 1000)",
        "encoder+MLP (95% CI)",
    ]
    body = [
        [
            row["preset"],
            f"{row['parameters']:,} ({row['encoder_parameters']:,})",
            f"{row['test_mse']:.4f}",
            f"{row['seconds_per_epoch']:.1f}",
            f"{row['encode_decode_images_per_s']:,.0f}",
            fewshot_cell(row),
        ]
        for row in rows
    ]
    return headers, body


def markdown_table(rows: list[dict]) -> str:
    headers, body = table_rows(rows)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"
