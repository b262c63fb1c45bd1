"""Sampling from trained GAN runs: the GANSampler and its loader.

A latent GAN makes images as decoder(unstandardise(G(noise, label))); the pixel-space baseline
as unstandardise(G(noise, label)) reshaped to 28x28. `GANSampler` wraps both behind one API:

    model = zspace.load("runs/cgan")
    images = model.sample(digit=7, n=16, seed=3)        # float (16, 1, 28, 28) in [0, 1], CPU

Noise comes from a generator seeded by (seed, digit), so the same call gives the same images,
and row d of `sample(n=16, seed=3)` on a conditional run equals `sample(digit=d, n=16, seed=3)`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.device import resolve_device
from zspace.errors import RunError, ZspaceError
from zspace.models.autoencoder import Autoencoder
from zspace.models.fast_decode import FastGenerator
from zspace.models.gan import CodeScaler, GANConfig, Generator, split_legacy_gan_config
from zspace.runs import LATENT_GAN, PIXEL_GAN, RunDir, load_weights_into
from zspace.sampling.inversion import load_inverter
from zspace.sampling.latent import LatentDecoder, load_carried_autoencoder
from zspace.sampling.sampler import (
    check_sample_request,
    labels_for,
    noise_stream,
    requested_digits,
)


class GANSampler:
    """A trained generator plus what turns its output into images (a Sampler)."""

    has_noise = True

    def __init__(
        self,
        config: GANConfig,
        generator: Generator,
        scaler: CodeScaler,
        autoencoder: Autoencoder | None = None,
        kind: str = LATENT_GAN,
    ):
        self.config = config
        self.generator = generator
        self.scaler = scaler
        self.autoencoder = autoencoder
        self.kind = kind
        self._decoder = LatentDecoder(autoencoder) if autoencoder is not None else None
        self._frozen_generator = None  # set by freeze(): the fast path, built once
        # A fitted NoiseInverter (zspace.sampling.inversion), if the run has one: fast, close inversion.
        self.inverter = None

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    @property
    def noise_dim(self) -> int:
        return self.config.noise_dim

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def __repr__(self) -> str:
        mode = "conditional" if self.conditional else "unconditional"
        return f"GANSampler({self.kind}, {mode}, preset={self.config.preset!r})"

    def noise(self, n: int, seed: int = 0, digit: int | None = None) -> torch.Tensor:
        """(n, noise_dim) standard normal noise on CPU, fixed by (seed, digit)."""
        return torch.randn(n, self.noise_dim, generator=noise_stream(seed, digit))

    @torch.no_grad()
    def generate_codes(
        self, noise: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 4096
    ) -> torch.Tensor:
        """Noise (N, noise_dim) [+ int labels (N,) or soft one-hots (N, 10)] -> data-space
        outputs on CPU: AE codes (N, latent_dim), or flat pixels (N, 784) for a pixel GAN."""
        if self.conditional and labels is None:
            raise ZspaceError("this run is a conditional GAN; give a label for every noise row")
        if not self.conditional and labels is not None:
            raise ZspaceError("this run is an unconditional GAN; it takes no labels")
        self.generator.eval()
        device = self.device
        chunks = []
        for start in range(0, len(noise), batch_size):
            part = noise[start : start + batch_size].to(device)
            part_labels = None if labels is None else labels[start : start + batch_size].to(device)
            chunks.append(self.scaler.inverse(self.generator(part, part_labels)).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, self.config.data_dim)

    def codes_to_images(self, codes: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Data-space outputs -> float (N, 1, 28, 28) images in [0, 1] on CPU."""
        if self.autoencoder is None:  # pixel space: the outputs are the images
            return codes.clamp(0, 1).reshape(-1, 1, 28, 28)
        return self._decoder(codes, batch_size)

    def images(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Noise [+ labels] -> float (N, 1, 28, 28) images in [0, 1] on CPU (no size cap)."""
        fast = self._fast_generator(labels)
        if fast is None or len(noise) == 0:
            return self.codes_to_images(self.generate_codes(noise, labels))
        if self.conditional and labels is None:
            raise ZspaceError("this run is a conditional GAN; give a label for every noise row")
        if not self.conditional and labels is not None:
            raise ZspaceError("this run is an unconditional GAN; it takes no labels")
        decoder = self._decoder.module()
        with torch.inference_mode():
            return torch.cat(
                [
                    decoder(fast(noise[start : start + 4096], _part(labels, start, 4096)))
                    for start in range(0, len(noise), 4096)
                ]
            )

    def freeze(self) -> GANSampler:
        """Promise that the weights will not change again, so the fast sampling path is built
        once instead of per call (`load_gan` does this; training samplers stay unfrozen)."""
        self._frozen_generator = self._build_fast_generator()
        return self

    def _fast_generator(self, labels):
        """On CPU, for a latent GAN and integer labels (or none): G with the scaler folded in,
        rebuilt per call unless frozen, because training changes the weights; else None."""
        if labels is not None and labels.dtype.is_floating_point:
            return None
        if self._frozen_generator is not None:
            return self._frozen_generator
        return self._build_fast_generator()

    def _build_fast_generator(self):
        if self.autoencoder is None or self.device.type != "cpu":
            return None
        try:
            return FastGenerator(self.generator, self.scaler)
        except ValueError:  # an architecture the fast path does not cover
            return None

    def _request(self, digit: int | None, n: int, seed: int):
        """(noise (M, noise_dim), labels (M,) or None) for one sampling request."""
        check_sample_request(digit, n, self.conditional)
        digits = requested_digits(digit, self.conditional)
        noise = torch.cat([self.noise(n, seed, d) for d in digits])
        return noise, labels_for(digits, n)

    def sample_codes(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(data-space outputs (M, data_dim) on CPU, labels (M,) or None); see the images'
        layout in `sample_with_labels`."""
        noise, labels = self._request(digit, n, seed)
        return self.generate_codes(noise, labels), labels

    def sample_with_labels(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images float (M, 1, 28, 28), labels int64 (M,) or None).

        Conditional run: n images of `digit`, or without a digit n of each digit (M = 10n, in
        digit order). Unconditional run: n images and labels None.
        """
        noise, labels = self._request(digit, n, seed)
        return self.images(noise, labels), labels

    def sample(self, digit: int | None = None, n: int = 16, seed: int = 0) -> torch.Tensor:
        """float (M, 1, 28, 28) images in [0, 1] on CPU; see `sample_with_labels`."""
        return self.sample_with_labels(digit=digit, n=n, seed=seed)[0]


def _part(labels: torch.Tensor | None, start: int, size: int) -> torch.Tensor | None:
    return None if labels is None else labels[start : start + size]


def load_gan(run_dir: str | Path, device: str | torch.device = "cpu") -> GANSampler:
    """Rebuild a latent-gan or pixel-gan run (its autoencoder travels inside the run folder).

    Reads both layouts: zspace 0.2's (architecture in "model", optimisation in "training") and
    0.1.0's (both in "model")."""
    run = RunDir(run_dir)
    saved = run.read_config((LATENT_GAN, PIXEL_GAN))
    torch_device = resolve_device(device) if isinstance(device, str) else device
    try:
        with check.reading(run.config_path):
            model, legacy_training = split_legacy_gan_config(check.section(saved, "model"))
            config = GANConfig.from_dict(model)
        ema_decay = {**legacy_training, **saved.get("training", {})}.get("ema_decay", 0.0)
    except (KeyError, TypeError, AttributeError) as error:
        raise RunError(f"{run.config_path} has no valid GAN model config") from error
    generator = Generator(config).to(torch_device)
    # With a moving average of G's weights, that average is the generator to sample from.
    weights = "generator_ema.safetensors" if ema_decay > 0 else "generator.safetensors"
    load_weights_into(generator, run, weights, torch_device)
    scaler = CodeScaler(config.data_dim).to(torch_device)
    load_weights_into(scaler, run, "scaler.safetensors", torch_device)
    autoencoder = None
    if saved["kind"] == LATENT_GAN:
        autoencoder = load_carried_autoencoder(run, saved, torch_device)
    generator.eval()
    sampler = GANSampler(config, generator, scaler, autoencoder, kind=saved["kind"])
    sampler.inverter = load_inverter(run_dir, config, torch_device)
    return sampler.freeze()
