"""An encoder for a trained generator: from a data-space target to the noise that produces it.

Finding a GAN's noise for a given code by gradient descent alone takes hundreds of steps from
several random starts. A small MLP trained once per run ("amortised" inversion, as the
encoders of Zhu et al. 2016 and Donahue et al. 2017's BiGAN) gives a start close enough that a
few Levenberg-Marquardt steps (zspace.sampling.inversion) finish the job: on the default conditional
run, about 5 ms per digit on one core instead of 46 ms, and a closer match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from zspace.errors import RunError


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

    @classmethod
    def from_dict(cls, data: dict) -> InverterConfig:
        try:
            return cls(
                data_dim=int(data["data_dim"]),
                noise_dim=int(data["noise_dim"]),
                num_classes=int(data["num_classes"]),
                hidden_dims=[int(width) for width in data["hidden_dims"]],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"not a valid inverter config: {data!r}") from error


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
