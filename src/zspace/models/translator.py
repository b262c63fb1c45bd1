"""Networks of the class-to-class translators: a map from AE codes of one digit to codes of
another, and the critic that judges its outputs.

Both work on standardised codes (`CodeScaler`). A translator has one of two scopes:
  - per pair: one small network per target class it can map to (a regular or paired translator
    maps A -> B only; a cycle translator also has the way back, B -> A), chosen by the rows'
    target class;
  - all pairs (StarGAN-style, Choi et al. 2018): one network that sees the target class as a
    one-hot input beside the code.
The critic mirrors the scope: one network per class it judges, or one that sees the class.

The map is residual, x + f(x, target), with f's last layer zero-initialised, so training
starts from the identity: every method begins by keeping the whole input and learns only what
it must change. All learned methods share this architecture, so they differ in their losses only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from zspace import config_checks as check
from zspace.errors import ZspaceError

NUM_CLASSES = 10
LEARNED_METHODS = ("regular", "cycle", "paired")
METHODS = (*LEARNED_METHODS, "restyle", "shift")


@dataclass
class TranslatorConfig:
    """What a translator run translates and, for a learned method, its networks' shape.

    `source`/`target` are digits for a per-pair run; `target` None means all pairs (the map
    takes the target class as an input). `source` None with a target is not allowed.
    """

    method: str = "cycle"
    source: int | None = 4
    target: int | None = 9
    data_dim: int = 64
    num_classes: int = NUM_CLASSES
    hidden_dim: int = 256
    depth: int = 2
    critic_hidden_dim: int = 256
    critic_depth: int = 2

    def __post_init__(self):
        check.choice("method (--method)", self.method, METHODS)
        check.whole_number("num_classes", self.num_classes, 2, 10_000)
        if self.target is None and self.source is not None:
            raise ZspaceError("a translator for all pairs takes no --from (give --to all alone)")
        for name, digit in (("--from", self.source), ("--to", self.target)):
            if digit is not None:
                check.whole_number(name, digit, 0, self.num_classes - 1)
        if self.target is not None and self.source is None:
            raise ZspaceError("a translator for one pair needs --from (the digit it translates)")
        if self.source is not None and self.source == self.target:
            raise ZspaceError(f"--from and --to are both {self.source}; give two different digits")
        check.whole_number("data_dim", self.data_dim, 1, 1_000_000)
        check.whole_number("hidden_dim", self.hidden_dim, 1, 65_536)
        check.whole_number("depth", self.depth, 1, 64)
        check.whole_number("critic_hidden_dim", self.critic_hidden_dim, 1, 65_536)
        check.whole_number("critic_depth", self.critic_depth, 1, 64)

    @property
    def all_pairs(self) -> bool:
        return self.target is None

    @property
    def learned(self) -> bool:
        return self.method in LEARNED_METHODS

    @property
    def target_classes(self) -> tuple[int, ...]:
        """The classes this run can translate into (a cycle run also goes back to its source)."""
        if self.all_pairs:
            return tuple(range(self.num_classes))
        if self.method in ("cycle", "shift", "restyle"):
            return (self.target, self.source)
        return (self.target,)

    @property
    def critic_classes(self) -> tuple[int, ...]:
        """The classes whose real codes a critic learns (per-pair runs: one critic each)."""
        if self.all_pairs:
            return tuple(range(self.num_classes))
        return (self.target, self.source) if self.method == "cycle" else (self.target,)

    @property
    def pair_critic(self) -> bool:
        """The paired method's critic sees (input, output), pix2pix's conditional critic."""
        return self.method == "paired"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TranslatorConfig:
        return cls(**check.known_fields("translator model config", data, cls))


def _mlp(in_dim: int, hidden_dim: int, depth: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden_dim), nn.LeakyReLU(0.2)]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def class_inputs(classes: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """(B,) int classes -> (B, num_classes) one-hot rows of `like`'s dtype and device."""
    return nn.functional.one_hot(classes.long(), num_classes).to(like)


class _ClassRouted(nn.Module):
    """One network per class (per-pair scope) or one network that sees the class (all pairs).

    Subclasses build `self.nets` (keys "to_C" / "of_C") or `self.net`; `route` runs every row
    through the network of its class.
    """

    def __init__(self, config: TranslatorConfig, classes: tuple[int, ...], prefix: str):
        super().__init__()
        self.config = config
        self.classes = classes
        self.prefix = prefix

    def _net_input(self, inputs: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        if self.config.all_pairs:
            return torch.cat([inputs, class_inputs(classes, self.config.num_classes, inputs)], 1)
        return inputs

    def route(self, inputs: torch.Tensor, classes: torch.Tensor, out_dim: int) -> torch.Tensor:
        if self.config.all_pairs:
            return self.net(self._net_input(inputs, classes))
        unknown = set(classes.unique().tolist()) - set(self.classes)
        if unknown:
            raise ZspaceError(
                f"this translator maps to {', '.join(map(str, self.classes))} only, "
                f"not {', '.join(map(str, sorted(unknown)))}"
            )
        output = inputs.new_empty(len(inputs), out_dim)
        for digit in classes.unique().tolist():
            rows = classes == digit
            output[rows] = self.nets[f"{self.prefix}{digit}"](inputs[rows])
        return output


class CodeTranslator(_ClassRouted):
    """(B, data_dim) standardised codes + (B,) target classes -> (B, data_dim) codes."""

    def __init__(self, config: TranslatorConfig):
        super().__init__(config, config.target_classes, "to_")
        extra = config.num_classes if config.all_pairs else 0

        def build():
            net = _mlp(config.data_dim + extra, config.hidden_dim, config.depth, config.data_dim)
            nn.init.zeros_(net[-1].weight)  # the map starts as the identity
            nn.init.zeros_(net[-1].bias)
            return net

        if config.all_pairs:
            self.net = build()
        else:
            self.nets = nn.ModuleDict({f"to_{digit}": build() for digit in self.classes})

    def forward(self, codes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return codes + self.route(codes, targets, self.config.data_dim)


class CodeCritic(_ClassRouted):
    """Real/fake logits (B,) for codes of the given classes; the paired method's critic also
    sees the input code each output was made from."""

    def __init__(self, config: TranslatorConfig):
        super().__init__(config, config.critic_classes, "of_")
        width = config.data_dim * (2 if config.pair_critic else 1)
        extra = config.num_classes if config.all_pairs else 0

        def build():
            return _mlp(width + extra, config.critic_hidden_dim, config.critic_depth, 1)

        if config.all_pairs:
            self.net = build()
        else:
            self.nets = nn.ModuleDict({f"of_{digit}": build() for digit in self.classes})

    def forward(
        self, codes: torch.Tensor, classes: torch.Tensor, inputs: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.config.pair_critic:
            if inputs is None:
                raise ZspaceError("the paired critic judges (input, output) pairs; give inputs")
            codes = torch.cat([inputs, codes], 1)
        return self.route(codes, classes, 1).squeeze(1)
