"""The pieces of one GAN training step: the losses, the D and G updates, the EMA of G.

Each takes `config`, the run's `GANTrainingConfig`, for the loss and its weights; the networks
are plain modules (`zspace.models.gan`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(config, real_logits, fake_logits) -> torch.Tensor:
    if config.loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    real_target = torch.full_like(real_logits, config.real_label)
    return F.binary_cross_entropy_with_logits(
        real_logits, real_target
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(config, fake_logits) -> torch.Tensor:
    if config.loss == "hinge":
        return -fake_logits.mean()
    if config.loss == "minimax":  # minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0)
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_step(
    config, discriminator, optimizer, real, fake, labels, sync=None, step: int = 0
) -> tuple[torch.Tensor, dict]:
    """One D update on a real batch and a generated batch (`fake`, detached here) of the same
    labels. Returns the detached loss and the terms logged beside it: mean real and fake
    logits and, on steps with an R1 penalty, the mean squared gradient norm on real data."""
    fake = fake.detach()
    penalize = config.r1_weight > 0 and step % config.r1_interval == 0
    if penalize:
        real = real.detach().requires_grad_(True)
    real_logits, real_classes = discriminator.scores(real, labels)
    fake_logits, _ = discriminator.scores(fake, labels)
    loss = discriminator_loss(config, real_logits, fake_logits)
    if real_classes is not None:
        loss = loss + config.auxiliary_weight * F.cross_entropy(real_classes, labels)
    terms = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
    if penalize:
        (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        penalty = gradient.pow(2).sum(1).mean()
        loss = loss + 0.5 * config.r1_weight * config.r1_interval * penalty
        terms["r1"] = penalty.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        sync(discriminator)  # average gradients across data-parallel ranks
    optimizer.step()
    return loss.detach(), terms


def generator_step(
    config, discriminator, optimizer, fake, labels, sync=None, generator=None
) -> torch.Tensor:
    """One G update from a generated batch (with its graph); returns the detached loss."""
    discriminator.requires_grad_(False)  # G's step needs no gradients for D's weights
    judged_logits, judged_classes = discriminator.scores(fake, labels)
    loss = generator_loss(config, judged_logits)
    if judged_classes is not None:
        loss = loss + config.auxiliary_weight * F.cross_entropy(judged_classes, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        sync(generator)
    optimizer.step()
    discriminator.requires_grad_(True)
    return loss.detach()


@torch.no_grad()
def update_average(average, generator, decay: float, step: int) -> None:
    """average <- decay * average + (1 - decay) * generator, with a warm-up.

    The effective decay min(decay, (1 + step) / (10 + step)) keeps the first steps' random
    weights from lingering in the average of a short run.
    """
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(average.parameters()), list(generator.parameters()), 1 - decay)
