"""Train many copies of one small MLP head at once.

A study trains the same head architecture on many labelled draws. Instead of a Python loop
over them, the G copies keep their weights stacked along a leading dimension, every layer is
one batched matmul (`torch.baddbmm`), and one Adam optimizer steps all of them. Adam and weight
decay act elementwise and the loss is a sum of per-copy means, so each copy follows exactly the
trajectory it would follow if trained alone (up to float rounding of the batched matmul).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zspace.errors import ZspaceError
from zspace.fewshot.heads import HeadSpec, activation


@dataclass
class HeadTraining:
    """A fixed schedule for heads: full-batch Adam for `steps` steps.

    Fixed in advance, never tuned on the test set. The defaults are plain values checked on a
    validation split of the *training* images (heads trained on 50 of the first 50k, scored on
    the last 10k: benchmarks/bench_fewshot.py --validate); accuracy there is flat within about
    one point over 100-1000 steps, lr 0.003-0.03 and weight decay 0-0.01.
    """

    steps: int = 300
    learning_rate: float = 0.01
    weight_decay: float = 1e-3

    def validate(self) -> None:
        if self.steps < 1:
            raise ZspaceError(f"head training needs at least 1 step, got {self.steps}")
        if not self.learning_rate > 0:
            raise ZspaceError(f"head learning rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ZspaceError(f"weight decay must be >= 0, got {self.weight_decay}")

    def to_dict(self) -> dict:
        return asdict(self)


def initial_head_weights(spec: HeadSpec, input_dim: int, seed: int) -> list[torch.Tensor]:
    """[W1, b1, W2, b2, ...] for one head, W as (in, out), drawn like nn.Linear's default
    (uniform in +-1/sqrt(fan_in)) from a generator seeded with `seed`, on CPU so the same seed
    gives the same head on every device."""
    generator = torch.Generator().manual_seed(int(seed))
    tensors = []
    for fan_in, fan_out in spec.layer_dims(input_dim):
        bound = 1.0 / math.sqrt(fan_in)
        weight = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
        tensors += [weight, bias]
    return tensors


class BatchedHeads:
    """G independent heads of one architecture; weights are (G, in, out), biases (G, 1, out)."""

    def __init__(self, spec: HeadSpec, input_dim: int, seeds, device="cpu"):
        self.spec = spec
        self.input_dim = input_dim
        self.seeds = [int(s) for s in seeds]
        per_head = [initial_head_weights(spec, input_dim, s) for s in self.seeds]
        self.parameters: list[torch.Tensor] = []
        for position in range(len(per_head[0])):
            stacked = torch.stack([weights[position] for weights in per_head]).to(device)
            if stacked.dim() == 2:  # a bias: (G, out) -> (G, 1, out) for baddbmm
                stacked = stacked.unsqueeze(1)
            self.parameters.append(stacked.requires_grad_(True))
        self._activations = [activation(name) for name, _ in spec.hidden]

    @property
    def count(self) -> int:
        return len(self.seeds)

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (G, N, in) (one set per head) or (N, in) (shared) -> logits (G, N, classes)."""
        weights, biases = self.parameters[0::2], self.parameters[1::2]
        if inputs.dim() == 2:
            # Shared inputs: one (N, in) @ (in, G*out) matmul instead of G copies of the inputs.
            first = weights[0].permute(1, 0, 2).reshape(self.input_dim, -1)
            hidden = (inputs @ first).view(len(inputs), self.count, -1).transpose(0, 1)
            hidden = hidden + biases[0]
        else:
            hidden = torch.baddbmm(biases[0], inputs, weights[0])
        for layer in range(1, len(weights)):
            hidden = self._activations[layer - 1](hidden)
            hidden = torch.baddbmm(biases[layer], hidden, weights[layer])
        return hidden

    @torch.no_grad()
    def predict_proba(self, inputs: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """Class probabilities (G, N, classes) for shared inputs (N, in), in chunks."""
        chunks = [
            torch.softmax(self.logits(inputs[start : start + batch_size]), dim=-1)
            for start in range(0, len(inputs), batch_size)
        ]
        return torch.cat(chunks, dim=1)

    def head_weights(self, index: int) -> list[torch.Tensor]:
        """The weights of head `index` as [W1 (in, out), b1 (out,), ...] (detached copies)."""
        weights = [p[index].detach().clone() for p in self.parameters]
        return [w.reshape(-1) if position % 2 else w for position, w in enumerate(weights)]


def train_heads(
    spec: HeadSpec,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    seeds,
    training: HeadTraining | None = None,
) -> BatchedHeads:
    """Train G heads, head g on (inputs[g] (N, in), labels[g] (N,)), all in one batched loop."""
    training = training or HeadTraining()
    training.validate()
    if inputs.dim() != 3 or labels.shape != inputs.shape[:2]:
        raise ValueError(
            f"inputs must be (G, N, in) and labels (G, N), got {tuple(inputs.shape)} and {tuple(labels.shape)}"
        )
    heads = BatchedHeads(spec, inputs.shape[-1], seeds, device=inputs.device)
    optimizer = torch.optim.Adam(
        heads.parameters, lr=training.learning_rate, weight_decay=training.weight_decay
    )
    per_head = inputs.shape[1]
    flat_labels = labels.reshape(-1)
    for _ in range(training.steps):
        logits = heads.logits(inputs)
        # Sum of each head's mean loss: every head gets the gradient of its own loss only.
        loss = F.cross_entropy(logits.reshape(-1, spec.num_classes), flat_labels, reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        (loss / per_head).backward()
        optimizer.step()
    for parameter in heads.parameters:
        parameter.requires_grad_(False)
    return heads


class HeadModule(nn.Module):
    """One head as a plain nn.Module (for fine-tuning with an encoder and for saving)."""

    def __init__(self, spec: HeadSpec, input_dim: int):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in spec.layer_dims(input_dim))
        self._activations = [activation(name) for name, _ in spec.hidden]

    def load_initial_weights(self, weights: list[torch.Tensor]) -> HeadModule:
        """Copy [W (in, out), b, ...] as produced by `initial_head_weights`."""
        with torch.no_grad():
            for layer, weight, bias in zip(self.layers, weights[0::2], weights[1::2]):
                layer.weight.copy_(weight.T)
                layer.bias.copy_(bias.reshape(-1))
        return self

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (N, in) -> logits (N, classes)."""
        hidden = self.layers[0](inputs)
        for layer, act in zip(self.layers[1:], self._activations):
            hidden = layer(act(hidden))
        return hidden
