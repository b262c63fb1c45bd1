"""Sampling from a latent flow run: the FlowSampler and its loader.

A latent flow draws a digit by solving dx/dt = v(x, t, label) from Gaussian noise at t = 0 to
a standardised code at t = 1, then unstandardising and decoding it:

    flow = zspace.load("runs/flow")
    images = flow.sample(digit=7, n=16, seed=3)                  # the run's default sampler
    sharper = flow.with_sampling(steps=8, guidance=2.0).sample(digit=7, n=16)

How the ODE is solved (solver, steps, guidance) is a sampling setting, not part of the model;
the run's config keeps the defaults it was trained with (`sampling`), chosen on training data.
A distilled run (`zspace distill-flow`) is a flow whose field was trained to jump from noise to
code in one Euler step; it samples with steps=1 only.

Because the map from noise to code is an ODE, it can be run backwards: `invert_codes` gives
the noise of a real digit's code without an optimiser, and `log_likelihood` its density.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.device import resolve_device
from zspace.errors import ZspaceError
from zspace.models.autoencoder import Autoencoder
from zspace.models.flow import FlowConfig, VelocityField
from zspace.models.gan import CodeScaler
from zspace.runs import LATENT_FLOW, RunDir, load_weights_into
from zspace.sampling.latent import LatentDecoder, load_carried_autoencoder
from zspace.sampling.ode import SOLVERS, guided, integrate, log_likelihood
from zspace.sampling.sampler import (
    check_sample_request,
    labels_for,
    noise_stream,
    requested_digits,
)

MAX_STEPS = 1000  # solver steps per sample; more only burns time at this state size
MAX_GUIDANCE = 100.0
WEIGHTS_FILE = "velocity_ema.safetensors"
# Fixed-point iterations that invert a one-step (distilled) flow: noise = code - v(noise, 0).
ONE_STEP_INVERSION_ITERATIONS = 50


@dataclass
class FlowSampling:
    """How a flow is sampled: the ODE solver, its number of steps, the guidance scale."""

    solver: str = "midpoint"
    steps: int = 4
    # Classifier-free guidance: 1 is plain conditional sampling, above 1 sharper digits at
    # some cost in variety, 0 ignores the label. 1.3 is the lowest FD against *training*
    # images among the scales that draw the requested digit >= 99% of the time
    # (benchmarks/bench_flow.py --parts sweep, and 1.3 / 1.35 / 1.4 on the same run).
    guidance: float = 1.3

    def __post_init__(self):
        check.choice("solver (--solver)", self.solver, SOLVERS)
        check.whole_number("steps (--steps)", self.steps, 1, MAX_STEPS)
        check.real_number("guidance (--guidance)", self.guidance, 0.0, MAX_GUIDANCE)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FlowSampling:
        return cls(**check.known_fields("flow sampling settings", data, cls))


class FlowSampler:
    """A trained velocity field plus what turns its codes into images (a Sampler)."""

    kind = LATENT_FLOW
    has_noise = True

    def __init__(
        self,
        config: FlowConfig,
        field: VelocityField,
        scaler: CodeScaler,
        autoencoder: Autoencoder | None,
        sampling: FlowSampling | None = None,
        one_step: bool = False,
    ):
        self.config = config
        self.field = field
        self.scaler = scaler
        self.autoencoder = autoencoder
        self.sampling = sampling or FlowSampling()
        self.one_step = one_step  # a distilled flow: one Euler step from noise to code
        self._decoder = LatentDecoder(autoencoder) if autoencoder is not None else None
        if one_step and (self.sampling.steps != 1 or self.sampling.solver != "euler"):
            raise ZspaceError("a distilled flow samples in one Euler step only (--steps 1)")

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    @property
    def noise_dim(self) -> int:
        return self.config.data_dim

    @property
    def device(self) -> torch.device:
        return next(self.field.parameters()).device

    def __repr__(self) -> str:
        mode = "conditional" if self.conditional else "unconditional"
        settings = self.sampling
        return (
            f"FlowSampler({mode}, preset={self.config.preset!r}, {settings.solver} x "
            f"{settings.steps}, guidance {settings.guidance:g}{', distilled' if self.one_step else ''})"
        )

    def with_sampling(self, **settings) -> FlowSampler:
        """The same model with other sampling settings (solver, steps, guidance); None keeps
        a setting. ZspaceError in one line for a setting out of range."""
        changes = {key: value for key, value in settings.items() if value is not None}
        if changes.get("guidance") is not None and not self.conditional:
            raise ZspaceError("this flow is unconditional; --guidance needs a conditional flow")
        twin = copy.copy(self)
        twin.sampling = replace(self.sampling, **changes)
        if self.one_step and (twin.sampling.steps != 1 or twin.sampling.solver != "euler"):
            raise ZspaceError("a distilled flow samples in one Euler step only (--steps 1)")
        return twin

    def noise(self, n: int, seed: int = 0, digit: int | None = None) -> torch.Tensor:
        """(n, noise_dim) standard normal noise on CPU, fixed by (seed, digit)."""
        return torch.randn(n, self.noise_dim, generator=noise_stream(seed, digit))

    def _labels_for_field(self, labels):
        if self.conditional and labels is None:
            raise ZspaceError("this run is a conditional flow; give a label for every noise row")
        if not self.conditional and labels is not None:
            raise ZspaceError("this run is an unconditional flow; it takes no labels")
        return labels

    def velocity(self, labels: torch.Tensor | None):
        """The guided velocity (x, t) -> dx/dt for these rows' labels, on the sampler's device."""
        guidance = self.sampling.guidance if self.conditional else 1.0
        return guided(self.field, labels, guidance, self.config.num_classes)

    @torch.no_grad()
    def generate_codes(
        self, noise: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 4096
    ) -> torch.Tensor:
        """Noise (N, noise_dim) [+ int labels (N,) or soft one-hots (N, 10)] -> AE codes
        (N, data_dim) on CPU, by solving the ODE forwards."""
        labels = self._labels_for_field(labels)
        self.field.eval()
        chunks = []
        for start in range(0, len(noise), batch_size):
            part = noise[start : start + batch_size].to(self.device)
            part_labels = (
                None if labels is None else labels[start : start + batch_size].to(self.device)
            )
            settings = self.sampling
            solved = integrate(self.velocity(part_labels), part, settings.steps, settings.solver)
            chunks.append(self.scaler.inverse(solved).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, self.config.data_dim)

    def codes_to_images(self, codes: torch.Tensor) -> torch.Tensor:
        """AE codes -> float (N, 1, 28, 28) images in [0, 1] on CPU."""
        return self._decoder(codes)

    def images(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Noise [+ labels] -> float (N, 1, 28, 28) images in [0, 1] on CPU (no size cap)."""
        return self.codes_to_images(self.generate_codes(noise, labels))

    @torch.no_grad()
    def invert_codes(
        self, codes: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise each code comes from, by solving the ODE backwards (no optimiser).

        Returns (noise (N, noise_dim) on CPU, error (N,)): the mean squared difference between
        the code the noise generates again and the target, in standardised units, as the GAN
        inverter reports it."""
        labels = self._labels_for_field(labels)
        self.field.eval()
        target = self.scaler(codes.to(self.device))
        part_labels = None if labels is None else labels.to(self.device)
        velocity = self.velocity(part_labels)
        if self.one_step:
            noise = _invert_one_step(velocity, target)
        else:
            settings = self.sampling
            noise = integrate(velocity, target, settings.steps, settings.solver, 1.0, 0.0)
        again = self.scaler(self.generate_codes(noise.cpu(), labels).to(self.device))
        error = ((again - target) ** 2).mean(dim=1)
        return noise.cpu(), error.cpu()

    def log_likelihood(
        self,
        codes: torch.Tensor,
        labels: torch.Tensor | None = None,
        steps: int = 32,
        exact: bool = False,
        seed: int = 0,
        batch_size: int = 2048,
    ) -> torch.Tensor:
        """log density (N,) of AE codes under the flow, in nats per code.

        Solved with `steps` midpoint steps of the unguided field (guidance bends the ODE away
        from the density the flow learned); the density of a standardised code is turned into
        that of the raw code by the scaler's Jacobian."""
        if self.one_step:
            raise ZspaceError("a distilled flow is a one-step map with no density; use its teacher")
        check.whole_number("steps", steps, 1, MAX_STEPS)
        labels = self._labels_for_field(labels)
        self.field.eval()
        log_scale = torch.log(self.scaler.scale).sum()
        values = []
        for start in range(0, len(codes), batch_size):
            part = self.scaler(codes[start : start + batch_size].to(self.device))
            rows = None if labels is None else labels[start : start + batch_size].to(self.device)
            velocity = guided(self.field, rows, 1.0, self.config.num_classes)
            values.append(
                (log_likelihood(velocity, part, steps, "midpoint", exact, seed) - log_scale)
                .detach()
                .cpu()
            )
        return torch.cat(values) if values else torch.empty(0)

    def _request(self, digit: int | None, n: int, seed: int):
        check_sample_request(digit, n, self.conditional)
        digits = requested_digits(digit, self.conditional)
        noise = torch.cat([self.noise(n, seed, d) for d in digits])
        return noise, labels_for(digits, n)

    def sample_codes(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        noise, labels = self._request(digit, n, seed)
        return self.generate_codes(noise, labels), labels

    def sample_with_labels(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images float (M, 1, 28, 28), labels int64 (M,) or None): n images of `digit`, or
        without a digit n of each digit (conditional, M = 10n, in digit order)."""
        noise, labels = self._request(digit, n, seed)
        return self.images(noise, labels), labels

    def sample(self, digit: int | None = None, n: int = 16, seed: int = 0) -> torch.Tensor:
        return self.sample_with_labels(digit=digit, n=n, seed=seed)[0]


def _invert_one_step(velocity, target: torch.Tensor) -> torch.Tensor:
    """Solve noise + v(noise, 0) = target by fixed-point iteration from noise = target -
    v(target, 0); a distilled field moves each point by much less than its own size, so the
    iteration contracts."""
    t = torch.zeros((), dtype=target.dtype, device=target.device)
    noise = target - velocity(target, t)
    for _ in range(ONE_STEP_INVERSION_ITERATIONS):
        noise = target - velocity(noise, t)
    return noise


def read_flow_config(
    run: RunDir, saved: dict | None = None
) -> tuple[FlowConfig, FlowSampling, bool]:
    """(architecture, default sampling, distilled) of a latent flow run's config (`saved`:
    the config already read)."""
    saved = saved if saved is not None else run.read_config(LATENT_FLOW)
    with check.reading(run.config_path):
        model = FlowConfig.from_dict(check.section(saved, "model"))
        sampling = FlowSampling.from_dict(check.section(saved, "sampling"))
        distilled = saved.get("distilled") is not None
    return model, sampling, distilled


def load_flow(run_dir: str | Path, device: str | torch.device = "cpu") -> FlowSampler:
    """Rebuild a latent-flow run (its autoencoder travels inside the run folder)."""
    run = RunDir(run_dir)
    saved = run.read_config(LATENT_FLOW)
    config, sampling, distilled = read_flow_config(run, saved)
    torch_device = resolve_device(device) if isinstance(device, str) else device
    field = VelocityField(config).to(torch_device)
    load_weights_into(field, run, WEIGHTS_FILE, torch_device)
    scaler = CodeScaler(config.data_dim).to(torch_device)
    load_weights_into(scaler, run, "scaler.safetensors", torch_device)
    autoencoder = load_carried_autoencoder(run, saved, torch_device)
    field.eval()
    return FlowSampler(config, field, scaler, autoencoder, sampling, one_step=distilled)


__all__ = ["FlowSampler", "FlowSampling", "load_flow", "read_flow_config"]
