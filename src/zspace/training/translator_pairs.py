"""Pairs for the paired translator: one noise drawn by a conditional generator with two labels.

MNIST has no pairs of digits written by one hand. A conditional generator that separates style
from class comes close: its noise carries the style (slant, width, size) and its label the
class, so the same noise drawn as a 4 and as a 9 gives a 4 and a 9 in one style. Any
conditional sampler with noise works (a latent GAN, or a flow, whose ODE carries one noise to
nearby codes under every label).
"""

from __future__ import annotations

import torch

from zspace.errors import ZspaceError
from zspace.sampling.sampler import noise_stream

PAIR_NOISE_STREAM = 7_919  # keeps pair noise apart from the samplers' own seeded draws


@torch.no_grad()
def generated_pairs(sampler, classes: tuple[int, ...], count: int, seed: int) -> torch.Tensor:
    """(count, len(classes), latent_dim) codes on CPU: row i is noise i drawn with each class."""
    noise = torch.randn(
        count, sampler.noise_dim, generator=noise_stream(seed * PAIR_NOISE_STREAM + 1)
    )
    columns = [
        sampler.generate_codes(noise, torch.full((count,), digit, dtype=torch.long))
        for digit in classes
    ]
    return torch.stack(columns, dim=1)


def same_autoencoder(sampler, autoencoder, generator_run, ae_run) -> None:
    """Refuse a generator whose codes live in another autoencoder's latent space."""
    carried = getattr(sampler, "autoencoder", None)
    if carried is None:
        raise ZspaceError(f"{generator_run} does not draw AE codes; give a latent generator")
    theirs, ours = carried.state_dict(), autoencoder.state_dict()
    same = theirs.keys() == ours.keys() and all(
        theirs[key].shape == ours[key].shape and torch.equal(theirs[key].cpu(), ours[key].cpu())
        for key in ours
    )
    if not same:
        raise ZspaceError(
            f"{generator_run} was trained on another autoencoder than {ae_run}; "
            "give the generator trained on --ae"
        )
