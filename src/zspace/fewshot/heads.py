"""Classifier heads written as `(activation,width)->...->(softmax,10)`.

Each `(activation,width)` is a linear layer of `width` units followed by `activation`; the last
one must be `(softmax,C)` with C the number of classes. `(softmax,10)` alone is multinomial
logistic regression. The softmax itself is folded into the cross-entropy loss, so a head's
network outputs logits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zspace.errors import ZspaceError

NOTATION = (
    "write a head as (activation,width) layers joined by '->' and ending in (softmax,10), "
    "e.g. (sigmoid,64)->(softmax,10)"
)

# name -> elementwise function; aliases users are likely to type map to the same function.
ACTIVATIONS = {
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,
    "leakyrelu": F.leaky_relu,
    "elu": F.elu,
    "selu": F.selu,
    "celu": F.celu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "mish": F.mish,
    "sigmoid": torch.sigmoid,
    "logsigmoid": F.logsigmoid,
    "hardsigmoid": F.hardsigmoid,
    "tanh": torch.tanh,
    "hardtanh": F.hardtanh,
    "hardswish": F.hardswish,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "tanhshrink": F.tanhshrink,
    "identity": lambda x: x,
    "linear": lambda x: x,
    "none": lambda x: x,
}
OUTPUT_ACTIVATION = "softmax"

DEFAULT_HEADS = (
    "(softmax,10)",
    "(relu,32)->(softmax,10)",
    "(sigmoid,32)->(softmax,10)",
    "(sigmoid,64)->(softmax,10)",
    "(sigmoid,64)->(sigmoid,64)->(softmax,10)",
)

_LAYER = re.compile(r"^\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*([^,()]*?)\s*\)$")


@dataclass(frozen=True)
class HeadSpec:
    """A parsed head: hidden layers as (activation, width) pairs, then a softmax over classes."""

    hidden: tuple[tuple[str, int], ...]
    num_classes: int

    @property
    def widths(self) -> list[int]:
        """Output width of every linear layer, the softmax layer included."""
        return [width for _, width in self.hidden] + [self.num_classes]

    def layer_dims(self, input_dim: int) -> list[tuple[int, int]]:
        """(in, out) of each linear layer for inputs of `input_dim` features."""
        dims = [input_dim, *self.widths]
        return list(zip(dims[:-1], dims[1:]))

    def __str__(self) -> str:
        layers = [f"({name},{width})" for name, width in self.hidden]
        return "->".join([*layers, f"({OUTPUT_ACTIVATION},{self.num_classes})"])


def activation(name: str):
    """The elementwise function for an activation name from `ACTIVATIONS`."""
    return ACTIVATIONS[name]


def parse_head(spec: str, num_classes: int = 10) -> HeadSpec:
    """Parse `(relu,32)->(softmax,10)` notation; a malformed spec raises ZspaceError."""
    if not isinstance(spec, str) or not spec.strip():
        raise ZspaceError(f"empty head spec; {NOTATION}")
    text = spec.strip()
    layers = []
    for position, part in enumerate(text.split("->"), start=1):
        match = _LAYER.match(part.strip())
        if match is None:
            raise ZspaceError(
                f"bad head spec {text!r}: layer {position} {part.strip()!r} is not (activation,width); {NOTATION}"
            )
        name, width_text = match.group(1).lower(), match.group(2)
        try:
            width = int(width_text)
        except ValueError:
            raise ZspaceError(
                f"bad head spec {text!r}: width {width_text!r} in layer {position} is not a whole number; {NOTATION}"
            ) from None
        if width < 1:
            raise ZspaceError(
                f"bad head spec {text!r}: width {width} in layer {position} must be at least 1; {NOTATION}"
            )
        if name != OUTPUT_ACTIVATION and name not in ACTIVATIONS:
            known = ", ".join(sorted(set(ACTIVATIONS) - {"leakyrelu", "swish", "none"}))
            raise ZspaceError(
                f"bad head spec {text!r}: unknown activation {name!r} (known: {known}); {NOTATION}"
            )
        layers.append((name, width))
    *hidden, (last_name, last_width) = layers
    if last_name != OUTPUT_ACTIVATION:
        raise ZspaceError(
            f"bad head spec {text!r}: the last layer must be (softmax,{num_classes}); {NOTATION}"
        )
    if any(name == OUTPUT_ACTIVATION for name, _ in hidden):
        raise ZspaceError(f"bad head spec {text!r}: softmax may only be the last layer; {NOTATION}")
    if last_width != num_classes:
        raise ZspaceError(
            f"bad head spec {text!r}: the softmax layer has {last_width} units but there are {num_classes} classes; {NOTATION}"
        )
    return HeadSpec(hidden=tuple(hidden), num_classes=num_classes)


def parse_heads(specs, num_classes: int = 10) -> list[HeadSpec]:
    """Parse a list of specs, or one string of specs separated by ';'."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(";") if s.strip()]
    if not specs:
        raise ZspaceError(f"no head given; {NOTATION}")
    return [parse_head(spec, num_classes) for spec in specs]
