"""The velocity field of a latent flow: a network v(x, t, label) over standardised AE codes.

Flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023) learns a velocity field
whose ODE dx/dt = v(x, t) carries Gaussian noise at t = 0 to the data at t = 1. Here the data
are the autoencoder's codes, standardised per dimension (`CodeScaler`), so the field is a small
network over 64 numbers and trains in about a minute on two CPU cores.

Two architectures, chosen by measurement (README, "Latent flow"):
  - "adaln": a residual MLP whose blocks are modulated by the time and label embedding through
    adaptive layer norm with zero-initialised gates (DiT's adaLN-Zero, Peebles & Xie 2023);
  - "concat": a residual MLP that sees [x, time embedding, label embedding] at its input only.

The label enters as a one-hot row times a matrix, so an all-zero row is the "no label" input
that classifier-free guidance needs, and soft labels (a label path) mix the embeddings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from zspace import config_checks as check
from zspace.errors import ZspaceError

ARCHITECTURES = ("adaln", "concat")

# name -> architecture settings; "small" is the default: it meets the sampling-speed target
# with room to spare (README, "Latent flow").
FLOW_PRESETS: dict[str, dict] = {
    "small": {"architecture": "adaln", "hidden_dim": 256, "depth": 3},
    "base": {"architecture": "adaln", "hidden_dim": 512, "depth": 4},
    "concat": {"architecture": "concat", "hidden_dim": 256, "depth": 3},
}
DEFAULT_FLOW_PRESET = "small"


@dataclass
class FlowConfig:
    """The architecture of a velocity field: everything needed to rebuild it."""

    data_dim: int = 64
    conditional: bool = True
    num_classes: int = 10
    architecture: str = "adaln"
    hidden_dim: int = 256
    depth: int = 3
    time_features: int = 32  # sine/cosine pairs of the time embedding
    # Width of the time + label embedding. Narrower than the blocks, it keeps the adaLN
    # modulations (condition_dim x 3 hidden_dim a block) a small part of a training step.
    condition_dim: int = 64
    preset: str = DEFAULT_FLOW_PRESET

    def __post_init__(self):
        check.whole_number("data_dim", self.data_dim, 1, 1_000_000)
        check.flag("conditional", self.conditional)
        check.whole_number("num_classes", self.num_classes, 2, 10_000)
        check.choice("architecture", self.architecture, ARCHITECTURES)
        check.whole_number("hidden_dim", self.hidden_dim, 1, 65_536)
        check.whole_number("depth", self.depth, 1, 64)
        check.whole_number("time_features", self.time_features, 1, 4096)
        check.whole_number("condition_dim", self.condition_dim, 1, 65_536)
        check.text("preset", self.preset)

    @classmethod
    def for_preset(cls, name: str, data_dim: int, conditional: bool) -> FlowConfig:
        if name not in FLOW_PRESETS:
            raise ZspaceError(
                f"unknown flow preset {name!r}; choose from {', '.join(FLOW_PRESETS)}"
            )
        return cls(data_dim=data_dim, conditional=conditional, preset=name, **FLOW_PRESETS[name])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FlowConfig:
        return cls(**check.known_fields("flow model config", data, cls))


def time_embedding(t: torch.Tensor, features: int) -> torch.Tensor:
    """(N,) times in [0, 1] -> (N, 2 * features) sines and cosines at log-spaced frequencies."""
    frequencies = torch.exp(
        torch.linspace(0.0, math.log(1000.0), features, device=t.device, dtype=t.dtype)
    )
    angles = t[:, None] * frequencies[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class AdaptiveBlock(nn.Module):
    """x + gate * MLP(norm(x) * (1 + scale) + shift), with shift, scale, gate from the condition."""

    def __init__(self, width: int, condition_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width)
        )
        self.modulation = nn.Linear(condition_dim, 3 * width)
        nn.init.zeros_(self.modulation.weight)  # adaLN-Zero: each block starts as the identity
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(condition).chunk(3, dim=1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class ResidualBlock(nn.Module):
    """x + MLP(norm(x)): the "concat" architecture's block."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class VelocityField(nn.Module):
    """v(x, t, label): (N, data_dim), (N,) or scalar t, labels -> (N, data_dim).

    Labels are int64 (N,), float one-hots (N, num_classes) (all zeros: no label), or None
    (no label for every row; what an unconditional field always gets).
    """

    def __init__(self, config: FlowConfig):
        super().__init__()
        self.config = config
        width, condition = config.hidden_dim, config.condition_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(2 * config.time_features, condition),
            nn.SiLU(),
            nn.Linear(condition, condition),
        )
        self.label_embedding = (
            nn.Linear(config.num_classes, condition, bias=False) if config.conditional else None
        )
        if config.architecture == "adaln":
            self.input = nn.Linear(config.data_dim, width)
            self.blocks = nn.ModuleList(
                AdaptiveBlock(width, condition) for _ in range(config.depth)
            )
        else:
            self.input = nn.Linear(config.data_dim + condition, width)
            self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(config.depth))
        self.output_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, config.data_dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def condition(self, t: torch.Tensor, labels, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(N, condition_dim): the time embedding plus the label embedding."""
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        if t.dim() == 0:
            t = t.expand(batch)
        condition = self.time_mlp(time_embedding(t, self.config.time_features))
        if self.label_embedding is not None and labels is not None:
            condition = condition + self.label_embedding(self.one_hot(labels, like.dtype))
        return condition

    def one_hot(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Float (N, num_classes) rows; integer label num_classes means "no label" (zeros)."""
        if labels.dtype.is_floating_point:
            return labels.to(dtype)
        classes = self.config.num_classes
        return nn.functional.one_hot(labels, classes + 1)[:, :classes].to(dtype)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        shared_time = t.dim() == 0 or (t.dim() == 1 and len(t) > 0 and bool((t == t[0]).all()))
        if shared_time and (labels is None or not labels.dtype.is_floating_point):
            # An ODE step: one time for all rows and at most 11 distinct labels, so the
            # conditioning is computed once per distinct label and gathered (several times
            # faster than per row for the adaLN modulations).
            return self._forward_grouped(x, t.reshape(-1)[:1], labels)
        return self._forward_rows(x, self.condition(t, labels, len(x), x))

    def _forward_rows(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if self.config.architecture == "adaln":
            hidden = self.input(x)
            activated = nn.functional.silu(condition)
            for block in self.blocks:
                hidden = block(hidden, activated)
        else:
            hidden = self.input(torch.cat([x, condition], dim=1))
            for block in self.blocks:
                hidden = block(hidden)
        return self.output(self.output_norm(hidden))

    def _forward_grouped(self, x: torch.Tensor, t: torch.Tensor, labels) -> torch.Tensor:
        if labels is None or self.label_embedding is None:
            condition, index = self.condition(t, None, 1, x), None
        else:
            keys, index = torch.unique(labels, return_inverse=True)
            condition = self.condition(t.expand(len(keys)), keys, len(keys), x)
        if self.config.architecture != "adaln":
            rows = condition.expand(len(x), -1) if index is None else condition[index]
            return self._forward_rows(x, rows)
        hidden = self.input(x)
        activated = nn.functional.silu(condition)
        for block in self.blocks:
            shift, scale, gate = block.modulation(activated).chunk(3, dim=1)
            if index is not None:
                shift, scale, gate = shift[index], scale[index], gate[index]
            hidden = hidden + gate * block.mlp(block.norm(hidden) * (1 + scale) + shift)
        return self.output(self.output_norm(hidden))
