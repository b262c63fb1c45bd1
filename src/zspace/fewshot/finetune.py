"""Fine-tuning: train the encoder together with the head on the labelled draw.

Unlike frozen heads these cannot share one batched loop cheaply (each draw owns a whole
encoder), so draws run one after another; it is an option of the study, not its default.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zspace.fewshot.batched import HeadModule, HeadTraining, initial_head_weights
from zspace.fewshot.heads import HeadSpec
from zspace.models.images import to_float_images


@dataclass
class FinetuneTraining:
    """Full-batch Adam; the pretrained encoder moves 10x more slowly than the fresh head."""

    steps: int = 300
    learning_rate: float = 0.01
    encoder_learning_rate: float = 0.001
    weight_decay: float = 1e-3

    @classmethod
    def from_heads(cls, heads: HeadTraining) -> FinetuneTraining:
        return cls(
            steps=heads.steps,
            learning_rate=heads.learning_rate,
            encoder_learning_rate=heads.learning_rate / 10,
            weight_decay=heads.weight_decay,
        )


def finetune_accuracies(
    context, spec: HeadSpec, draws: torch.Tensor, seeds: list[int], training: FinetuneTraining
) -> list[float]:
    """For each draw: copy the encoder, train it with a fresh head, return test accuracy."""
    codes = context.features("encoder")  # for the standardisation statistics
    return [
        _finetune_one(context, spec, indices, seeds[draw_index], training, codes)
        for draw_index, indices in enumerate(draws)
    ]


def _finetune_one(context, spec, indices, seed, training, codes) -> float:
    device = context.device
    encoder = copy.deepcopy(context.autoencoder.encoder).to(device).train()
    head = HeadModule(spec, codes.dim).to(device)
    head.load_initial_weights(initial_head_weights(spec, codes.dim, seed))
    optimizer = torch.optim.Adam(
        [
            {"params": head.parameters(), "lr": training.learning_rate},
            {"params": encoder.parameters(), "lr": training.encoder_learning_rate},
        ],
        weight_decay=training.weight_decay,
    )
    images = to_float_images(context.train_images[indices].to(device))
    labels = context.train_labels[indices].to(device)

    def classify(batch):
        return head((encoder(batch) - codes.mean) / codes.std)

    for _ in range(training.steps):
        loss = F.cross_entropy(classify(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    encoder.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(context.test_images), 2000):
            batch = to_float_images(context.test_images[start : start + 2000].to(device))
            expected = context.test_labels[start : start + 2000].to(device)
            correct += (classify(batch).argmax(1) == expected).sum().item()
    return correct / len(context.test_images)
