"""The one protocol every generator kind satisfies, and the request rules they share.

A Sampler draws digits from a trained run; the CLI, the report, the server and the evaluation
talk to this protocol, never to a concrete class:

    sampler = zspace.load("runs/cgan")
    images, labels = sampler.sample_with_labels(digit=7, n=16, seed=3)

Every sampler seeds each digit's draw from its own stream, (seed, digit), so the same call
gives the same images, and row d of `sample(n=16, seed=3)` on a conditional sampler equals
`sample(digit=d, n=16, seed=3)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from zspace.errors import ZspaceError
from zspace.figures import grid_image
from zspace.files import output_file, save_npz, save_png
from zspace.models.images import to_uint8_images

NUM_DIGITS = 10
MAX_SAMPLES = 1024  # per call (and per digit); larger sets are drawn in several calls
SAMPLE_SUFFIXES = (".png", ".npz")  # a grid of digits, or their arrays
MAX_SEED = 2**63 - 1  # seeds are int64 everywhere else


@runtime_checkable
class Sampler(Protocol):
    """What `zspace sample`, `evaluate`, `interpolate`, `serve` and the report rely on.

    Attributes:
        kind: the run kind (a row of `zspace.runs.RUN_KINDS`).
        conditional: whether a digit can be asked for.
        autoencoder: the decoder's autoencoder for a latent sampler, else None.
        has_noise: whether the sampler maps explicit noise to codes, so that noise-space
            operations (noise interpolation, inversion, restyles) apply.
    """

    kind: str
    conditional: bool
    autoencoder: object | None
    has_noise: bool

    def sample_codes(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(codes (M, data_dim) on CPU, labels int64 (M,) or None); M as in sample_with_labels."""

    def sample_with_labels(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images float (M, 1, 28, 28) in [0, 1] on CPU, labels int64 (M,) or None).

        Conditional: n images of `digit`, or without a digit n of each digit (M = 10n, in digit
        order). Unconditional: n images and labels None.
        """

    def sample(self, digit: int | None = None, n: int = 16, seed: int = 0) -> torch.Tensor:
        """The images of `sample_with_labels`."""


def check_sample_request(
    digit: int | None, n: int, conditional: bool, num_classes: int = NUM_DIGITS
) -> None:
    """One clear ZspaceError for a request a sampler cannot serve."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise ZspaceError(f"n must be a whole number from 1 to {MAX_SAMPLES}, got {n!r}")
    if digit is None:
        return
    if not conditional:
        raise ZspaceError("this run is unconditional; it cannot be asked for a digit")
    if isinstance(digit, bool) or not isinstance(digit, int) or not 0 <= digit < num_classes:
        raise ZspaceError(
            f"digit must be a whole number from 0 to {num_classes - 1}, got {digit!r}"
        )


def requested_digits(digit: int | None, conditional: bool) -> list[int | None]:
    """The digits one request draws, in order: [digit], all ten, or [None] (unconditional)."""
    if not conditional:
        return [None]
    return [digit] if digit is not None else list(range(NUM_DIGITS))


def labels_for(digits: list[int | None], n: int) -> torch.Tensor | None:
    """int64 labels (len(digits) * n,) in digit-major order, or None when unconditional."""
    if digits == [None]:
        return None
    return torch.tensor(digits, dtype=torch.int64).repeat_interleave(n)


def noise_stream(seed: int, digit: int | None = None) -> torch.Generator:
    """A CPU generator for (seed, digit), seed in 0..2**63-1.

    The stream number is seed * 11 + (digit + 1), taken modulo 2**64 (the range torch seeds
    take), so distinct pairs never share a stream below seed 1.6e18.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ZspaceError(f"seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    stream = seed * (NUM_DIGITS + 1) + (0 if digit is None else digit + 1)
    return torch.Generator().manual_seed(stream % 2**64)


def refuse_without_noise(sampler, action: str) -> None:
    """One line for a noise-space operation asked of a sampler that has no noise (a GMM)."""
    if not getattr(sampler, "has_noise", False):
        raise ZspaceError(
            f"a {getattr(sampler, 'kind', 'this')} run has no noise space; it cannot {action}"
        )


def save_samples(
    images: torch.Tensor, labels: torch.Tensor | None, out: str | Path, per_row: int
) -> Path:
    """Write drawn digits as a PNG grid (`per_row` images a row) or, for a `.npz` path, as
    arrays `images` uint8 (M, 28, 28) and `labels` (M,) when there are labels."""
    out = output_file(out, SAMPLE_SUFFIXES)
    if out.suffix.lower() == ".npz":
        arrays = {"images": to_uint8_images(images).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        return save_npz(out, arrays)
    return save_png(grid_image(images, ncols=per_row, scale=2), out)
