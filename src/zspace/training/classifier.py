"""The classifier training loop: mini-batches drawn by index from tensors held in memory, a
per-batch transform (augmentation), the one-cycle learning-rate schedule and a seeded batch
order. The evaluation CNN and the self-trained few-shot CNN both train through it."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from zspace.training.loop import one_cycle_lr, progress_bar, set_learning_rate, shuffled_batches


def train_classifier(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    drop_last: bool = False,
    progress: bool = False,
    description: str = "classifier",
) -> list[float]:
    """Train `model` in place on cross-entropy between `model(inputs[i])` and `targets[i]`;
    returns the mean training loss of each epoch.

    Epoch e visits the permutation that (seed, e) fixes (`shuffled_batches`), `batch_size`
    items at a time, on the device of `inputs`; with `drop_last` a ragged last batch is
    skipped. The learning rate follows `one_cycle_lr` over all steps, peaking at
    `learning_rate`. `transform` maps each batch of inputs before the forward pass (an
    augmentation drawing from its own generator). Initial weights and dropout come from the
    global torch RNG, which the caller seeds. The model is left in eval mode.
    """
    count = len(inputs)
    steps_per_epoch = count // batch_size if drop_last else -(-count // batch_size)
    total_steps = steps_per_epoch * epochs
    min_batch = batch_size if drop_last else 1
    model.train()
    step = 0
    epoch_losses = []
    for epoch in range(1, epochs + 1):
        batches = shuffled_batches(count, batch_size, seed, epoch, inputs.device, min_batch)
        loss_sum = torch.zeros((), device=inputs.device)  # summed on the device: no sync per step
        seen = 0
        for indices in progress_bar(
            batches, steps_per_epoch, f"{description} {epoch}/{epochs}", progress
        ):
            set_learning_rate(optimizer, one_cycle_lr(step, total_steps, learning_rate))
            batch = inputs[indices]
            if transform is not None:
                batch = transform(batch)
            loss = F.cross_entropy(model(batch), targets[indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(indices)
            seen += len(indices)
            step += 1
        epoch_losses.append(loss_sum.item() / seen if seen else float("nan"))
    model.eval()
    return epoch_losses
