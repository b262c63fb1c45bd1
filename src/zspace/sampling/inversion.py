"""Finding the generator noise that produces a given target ("inverting" a GAN).

Two ways for a GAN, one entry point (`invert`), which hands a latent flow to its own exact
inversion instead (`FlowSampler.invert_codes`: the ODE solved backwards, no optimiser):
  - With a fitted NoiseInverter (zspace.models.inverter; `zspace fit-inverter RUN` or
    `train_gan` with inverter_steps > 0 writes one into the run), its guess is polished by a
    few Levenberg-Marquardt steps (`refine_noise`): about 5 ms per target on one CPU core.
  - Without, `invert_generator`: Adam from several random starts, keeping the best (Zhu et al.
    2016; Creswell & Bharath 2018), about 10 times slower for a looser match.

Both minimise the same objective, in the GAN's standardised data space:
    mean((G(z, y) - target)^2) + norm_weight * (|z| - sqrt(noise_dim))^2,
where the second term keeps the noise at the norm typical of Gaussian noise, where the
generator was trained. The returned error is the first term.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.autograd.forward_ad as forward_ad
import torch.nn.functional as F
from torch import nn

from zspace.checkpoint import load_module_weights, load_tensors
from zspace.errors import RunError
from zspace.models.inverter import InverterConfig, NoiseInverter
from zspace.runs import RunDir

INVERTER_FILE = "inverter.safetensors"
NORM_WEIGHT = 1e-3
# Levenberg-Marquardt steps after the inverter's guess, chosen on 100 training digits of the
# default conditional run (inverter fitted for 500 steps): the guess alone leaves error 0.194,
# 3 steps 0.087, 5 steps 0.079, 8 steps 0.077; Adam with 8 starts x 100 steps 0.104.
REFINE_ITERATIONS = 5


def inversion_objective(
    outputs: torch.Tensor, goal: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms every inversion minimises, per row: (mean squared error of G's outputs
    against the goal, squared distance of the noise norm from the typical sqrt(noise_dim)).
    The objective is error + NORM_WEIGHT * prior."""
    error = (outputs - goal).pow(2).mean(1)
    prior = (noise.norm(dim=1) - noise.shape[1] ** 0.5).pow(2)
    return error, prior


def load_inverter(run_dir: str | Path, gan, device="cpu") -> NoiseInverter | None:
    """The run's inverter, or None if it has none; RunError if it does not fit the GAN."""
    path = RunDir(run_dir).file(INVERTER_FILE)
    if not path.is_file():
        return None
    tensors, metadata = load_tensors(path, device)
    try:
        config = InverterConfig.from_dict(json.loads(metadata["inverter"]))
    except (KeyError, json.JSONDecodeError) as error:
        raise RunError(f"{path} does not describe its inverter") from error
    expected = (gan.data_dim, gan.noise_dim, gan.num_classes if gan.conditional else 0)
    if (config.data_dim, config.noise_dim, config.num_classes) != expected:
        raise RunError(f"{path} was fitted to a different GAN (refit it: zspace fit-inverter RUN)")
    inverter = NoiseInverter(config)
    load_module_weights(inverter, tensors, str(path))
    return inverter.to(device).eval()


# d(activation)/d(input) from the input and the output, for the MLP fast path.
_DERIVATIVES = {
    nn.LeakyReLU: lambda pre, post, module: torch.where(pre > 0, 1.0, module.negative_slope),
    nn.ReLU: lambda pre, post, module: (pre > 0).to(pre.dtype),
    nn.Tanh: lambda pre, post, module: 1 - post.pow(2),
    nn.Sigmoid: lambda pre, post, module: post * (1 - post),
}


def _outputs_and_jacobians(
    generator, noise: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """G(noise, labels) (B, D) and its Jacobians with respect to the noise (B, D, Z)."""
    plain_mlp = getattr(generator.config, "base", "none") == "none" and all(
        isinstance(module, nn.Linear) or type(module) in _DERIVATIVES for module in generator.layers
    )
    if plain_mlp:
        return _mlp_outputs_and_jacobians(generator, noise, labels)
    return _forward_mode_outputs_and_jacobians(generator, noise, labels)


def _mlp_outputs_and_jacobians(generator, noise, labels):
    # The chain rule written out, layer by layer: (B, width, Z) matrices instead of Z copies
    # of every activation with their tangents; 3.5 times faster than forward mode.
    hidden = generator._input(noise, labels)
    jacobians = None
    for module in generator.layers:
        if isinstance(module, nn.Linear):
            hidden = F.linear(hidden, module.weight, module.bias)
            if jacobians is None:  # only the noise columns; the label is held fixed
                jacobians = module.weight[:, : noise.shape[1]].expand(len(noise), -1, -1)
            else:
                jacobians = module.weight @ jacobians
        else:
            output = module(hidden)
            slopes = _DERIVATIVES[type(module)](hidden, output, module)
            jacobians = slopes.unsqueeze(2) * jacobians
            hidden = output
    return hidden, jacobians


def _forward_mode_outputs_and_jacobians(generator, noise, labels):
    # Any architecture (a Gaussian base, other layers): forward-mode differentiation of Z
    # copies of each row, one unit tangent per copy, in one batched pass.
    count, noise_dim = noise.shape
    rows = noise.repeat_interleave(noise_dim, 0)
    tangents = torch.eye(noise_dim, dtype=noise.dtype, device=noise.device).repeat(count, 1)
    row_labels = None if labels is None else labels.repeat_interleave(noise_dim, 0)
    with forward_ad.dual_level():
        output = generator(forward_ad.make_dual(rows, tangents), row_labels)
        primal, tangent = forward_ad.unpack_dual(output)
    data_dim = primal.shape[1]
    outputs = primal.view(count, noise_dim, data_dim)[:, 0]
    jacobians = tangent.view(count, noise_dim, data_dim).transpose(1, 2)
    return outputs, jacobians


@torch.no_grad()
def refine_noise(
    generator,
    noise: torch.Tensor,
    labels: torch.Tensor | None,
    goal: torch.Tensor,
    iterations: int = REFINE_ITERATIONS,
    norm_weight: float = NORM_WEIGHT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Levenberg-Marquardt from `noise` (B, Z) towards G(z, labels) = goal (B, D, standardised).

    Each row keeps its own damping: a step that lowers the objective is taken and the damping
    shrinks (towards Gauss-Newton); one that does not is refused and the damping grows
    (towards a short gradient step). Returns (noise (B, Z), error per row (B,)).
    """
    generator.eval()
    count, noise_dim = noise.shape
    data_dim = goal.shape[1]
    prior_scale = (data_dim * norm_weight) ** 0.5  # the prior as one more squared residual
    typical = noise_dim**0.5  # the norm of typical Gaussian noise
    identity = torch.eye(noise_dim, dtype=noise.dtype, device=noise.device)

    def objective(z, outputs):
        # The shared objective; the steps below solve it as least squares, scaled by data_dim.
        error, prior = inversion_objective(outputs, goal, z)
        return error + norm_weight * prior

    z = noise.clone()
    outputs, jacobians = _outputs_and_jacobians(generator, z, labels)
    value = objective(z, outputs)
    damping = torch.full((count,), 1e-2, dtype=noise.dtype, device=noise.device)
    for _ in range(iterations):
        norms = z.norm(dim=1, keepdim=True).clamp_min(1e-8)
        prior_residual = prior_scale * (norms - typical)  # (B, 1)
        prior_gradient = prior_scale * z / norms  # (B, Z)
        normal = jacobians.transpose(1, 2) @ jacobians
        normal += prior_gradient.unsqueeze(2) * prior_gradient.unsqueeze(1)
        normal += damping.view(-1, 1, 1) * identity
        gradient = (jacobians.transpose(1, 2) @ (outputs - goal).unsqueeze(2)).squeeze(2)
        gradient += prior_gradient * prior_residual
        candidate = z - torch.linalg.solve(normal, gradient)
        new_outputs, new_jacobians = _outputs_and_jacobians(generator, candidate, labels)
        new_value = objective(candidate, new_outputs)
        better = new_value < value
        keep = better.view(-1, 1)
        z = torch.where(keep, candidate, z)
        outputs = torch.where(keep, new_outputs, outputs)
        jacobians = torch.where(keep.unsqueeze(2), new_jacobians, jacobians)
        value = torch.where(better, new_value, value)
        damping = torch.where(better, damping * 0.3, damping * 10)
    return z, (outputs - goal).pow(2).mean(1)


def invert_generator(
    sampler,
    targets: torch.Tensor,
    labels: torch.Tensor | None = None,
    steps: int = 300,
    restarts: int = 8,
    seed: int = 0,
    norm_weight: float = NORM_WEIGHT,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise whose generated data is close to `targets` (data space, (N, data_dim)), found by
    gradient descent alone.

    Runs `restarts` random starts per target in one batch, `steps` of Adam on the squared
    error in the GAN's standardised space plus norm_weight * (|z| - sqrt(noise_dim))^2, and
    keeps the best start. Returns (noise (N, noise_dim) on CPU, final error per target (N,)).
    """
    generator, scaler = sampler.generator, sampler.scaler
    device = sampler.device
    count, noise_dim = len(targets), sampler.noise_dim
    goal = scaler(targets.to(device)).repeat_interleave(restarts, 0)
    goal_labels = None if labels is None else labels.to(device).repeat_interleave(restarts, 0)
    start = torch.randn(count * restarts, noise_dim, generator=torch.Generator().manual_seed(seed))
    noise = start.to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([noise], lr=0.05)
    generator.eval()
    generator.requires_grad_(False)
    try:
        for _ in range(steps):
            error, prior = inversion_objective(generator(noise, goal_labels), goal, noise)
            loss = (error + norm_weight * prior).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            error = (generator(noise, goal_labels) - goal).pow(2).mean(1).view(count, restarts)
            best = error.argmin(1)
            chosen = noise.detach().view(count, restarts, noise_dim)[torch.arange(count), best]
    finally:
        generator.requires_grad_(True)
    return chosen.cpu(), error.min(1).values.cpu()


def invert(
    sampler,
    targets: torch.Tensor,
    labels: torch.Tensor | None = None,
    seed: int = 0,
    steps: int = 300,
    restarts: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise whose generated data is closest to `targets` (data space, (N, data_dim)).

    With the sampler's fitted inverter: its guess plus REFINE_ITERATIONS Levenberg-Marquardt
    steps. Without: `invert_generator` (`steps` of Adam from `restarts` random starts, seeded).
    Returns (noise (N, noise_dim) on CPU, error per target (N,) in standardised space).
    """
    if hasattr(sampler, "invert_codes"):  # a flow: its ODE runs backwards, no optimiser
        return sampler.invert_codes(targets, labels)
    inverter = getattr(sampler, "inverter", None)
    if inverter is None:
        return invert_generator(sampler, targets, labels, steps=steps, restarts=restarts, seed=seed)
    device = sampler.device
    generator = sampler.generator
    labels = None if labels is None else labels.to(device)
    with torch.no_grad():
        goal = sampler.scaler(targets.to(device))
        start = inverter(goal, labels)
    noise, error = refine_noise(generator, start, labels, goal)
    return noise.cpu(), error.cpu()
