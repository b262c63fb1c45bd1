"""The part every zspace training procedure shares: deterministic batches, a learning-rate
schedule that is a pure function of the step, and an epoch driver that checkpoints atomically
and resumes exactly where a killed run stopped."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from zspace.checkpoint import (
    load_tensors,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_metadata,
    rng_from_tensors,
    rng_to_tensors,
    save_tensors,
)
from zspace.errors import RunError, ZspaceError
from zspace.runs import RunDir


def shuffled_batches(
    num_items: int,
    batch_size: int,
    seed: int,
    epoch: int,
    device: torch.device | str = "cpu",
    min_batch: int = 1,
) -> Iterator[torch.Tensor]:
    """Index tensors of a fresh permutation that depends only on (seed, epoch).

    Deriving the order from the epoch number, not from a running RNG, is what makes a resumed
    run see exactly the batches an uninterrupted run would have seen, and gives every
    data-parallel rank the same global batches to split. A last batch smaller than `min_batch`
    is dropped (under DDP, pass the world size so no rank gets an empty share).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_items, generator=generator).to(device)
    for start in range(0, num_items, batch_size):
        batch = order[start : start + batch_size]
        if len(batch) >= min_batch:
            yield batch


def one_cycle_lr(
    step: int, total_steps: int, max_lr: float, warmup_fraction: float = 0.15
) -> float:
    """Linear warm-up from max_lr/25 to max_lr, then cosine decay towards zero."""
    warmup = max(1, int(total_steps * warmup_fraction))
    if step < warmup:
        return max_lr * (0.04 + 0.96 * step / warmup)
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return max_lr * (0.5 * (1.0 + math.cos(math.pi * progress)) * 0.999 + 0.001)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def progress_bar(iterable, total: int, description: str, enabled: bool = True):
    """tqdm on stderr; silent when disabled or when stderr is not a terminal."""
    return tqdm(
        iterable, total=total, desc=description, leave=False, disable=None if enabled else True
    )


@dataclass
class TrainingParts:
    """What a checkpoint holds: named modules (each also saved as NAME.safetensors) and
    optimizers."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)


def save_checkpoint(run: RunDir, parts: TrainingParts, epoch: int, write_weights: bool = True):
    """One atomic file with everything needed to resume, plus plain weight files for users."""
    tensors: dict[str, torch.Tensor] = {}
    metadata = {"epoch": str(epoch)}
    for name, module in parts.modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value
    for name, optimizer in parts.optimizers.items():
        optim_tensors, optim_meta = optimizer_to_tensors(optimizer, f"optim.{name}")
        tensors.update(optim_tensors)
        metadata.update(optim_meta)
    tensors.update(rng_to_tensors())
    save_tensors(run.checkpoint_path, tensors, metadata)
    if write_weights:
        for name, module in parts.modules.items():
            save_tensors(run.file(f"{name}.safetensors"), module.state_dict(), {"epoch": epoch})


def load_checkpoint(run: RunDir, parts: TrainingParts, device) -> int:
    """Restore modules, optimizers and RNG from the run's checkpoint; returns its epoch."""
    tensors, metadata = load_tensors(run.checkpoint_path, device=device)
    for name, module in parts.modules.items():
        head = f"module.{name}."
        state = {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}
        if not state:
            raise RunError(f"checkpoint in {run.path} has no weights for {name!r}")
        try:
            module.load_state_dict(state)
        except RuntimeError as error:
            raise RunError(
                f"checkpoint in {run.path} does not fit the saved config ({str(error)[:120]})"
            ) from error
    for name, optimizer in parts.optimizers.items():
        optimizer_from_tensors(optimizer, tensors, metadata, f"optim.{name}")
    rng_from_tensors(tensors)
    return int(metadata.get("epoch", 0))


def checkpoint_epoch(run: RunDir) -> int:
    """The last epoch the run's checkpoint holds (0 without a checkpoint); reads only the
    file's header."""
    if not run.checkpoint_path.is_file():
        return 0
    return int(read_metadata(run.checkpoint_path).get("epoch", 0))


def run_epochs(
    run: RunDir,
    parts: TrainingParts,
    epochs: int,
    train_epoch: Callable[[int], dict],
    device,
    resume: bool = False,
    stop_after: Callable[[int, dict], bool] | None = None,
    is_main_process: bool = True,
) -> list[dict]:
    """Drive epochs 1..epochs, logging metrics and checkpointing after each one.

    With resume=True and a checkpoint present, training continues after the checkpoint's
    epoch; metric lines a killed run wrote past that epoch are dropped. `stop_after(epoch,
    record)` returning True ends training after that epoch's checkpoint (a time budget).
    """
    start_epoch = 0
    if resume and run.checkpoint_path.is_file():
        start_epoch = load_checkpoint(run, parts, device)
    if resume and is_main_process:
        # Also without a checkpoint: a run killed between its first metric line and its
        # first checkpoint starts again from epoch 1, and must not log epoch 1 twice.
        run.keep_metrics_through(start_epoch)
    for epoch in range(start_epoch + 1, epochs + 1):
        started = time.perf_counter()
        metrics = train_epoch(epoch)
        record = {"epoch": epoch, **metrics, "seconds": round(time.perf_counter() - started, 3)}
        if is_main_process:
            run.append_metrics(record)
            save_checkpoint(run, parts, epoch)
        if stop_after is not None and stop_after(epoch, record):
            break
    return run.read_metrics()


def training_seconds(run_dir) -> float:
    """Wall-clock seconds of training recorded in a run's metrics (all sessions)."""
    return sum(r.get("seconds", 0.0) for r in RunDir(run_dir).read_metrics())


def _flatten(settings: dict | None, prefix: str = "") -> dict:
    flat = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resume_configs(run_path, saved_model, saved_training, model, training, flags: dict[str, str]):
    """(model, training) to resume a run with: the saved configs (dataclasses). A given config
    that differs from them is refused in one line, except that a given training config may
    change the number of epochs, to extend a finished run."""
    if training is not None:
        done = checkpoint_epoch(RunDir(run_path))
        if training.epochs < done:
            # Saving the smaller number would make the config disagree with the weights.
            raise ZspaceError(
                f"{run_path} has already trained {done} epochs; --epochs {training.epochs} "
                f"would not extend it (give more than {done}, or drop --epochs)"
            )
        saved_training.epochs = training.epochs
    check_resume_settings(
        run_path,
        {"model": asdict(saved_model), "training": asdict(saved_training)},
        {
            "model": None if model is None else asdict(model),
            "training": None if training is None else asdict(training),
        },
        flags,
    )
    return saved_model, saved_training


def check_resume_settings(run_path, saved: dict, requested: dict, flags: dict[str, str]) -> None:
    """On resume the saved settings win: a requested setting that differs is a mistake.

    `saved` and `requested` are nested dicts of settings (a part given as None is not
    checked); `flags` names the command-line flag of a dotted setting, for the message.
    The one line reads "RUN was trained with --seed 0; drop --seed to resume it".
    """
    stored = _flatten(saved)
    for key, value in _flatten({k: v for k, v in requested.items() if v is not None}).items():
        if stored.get(key) != value:
            flag = flags.get(key, key)
            raise ZspaceError(
                f"{run_path} was trained with {flag} {stored.get(key)}; drop {flag} to resume it"
            )
