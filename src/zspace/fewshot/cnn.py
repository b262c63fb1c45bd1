"""A small CNN for 28x28 digits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from zspace import config_checks as check


@dataclass
class DigitCNNConfig:
    """Two 3x3 conv layers with 2x2 max-pooling (28 -> 14 -> 7), one hidden linear layer.

    `deskew`: inputs are deskewed first (the classifier does it itself, so callers pass plain
    images)."""

    channels: list[int] = field(default_factory=lambda: [16, 32])
    hidden: int = 128
    num_classes: int = 10
    deskew: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        check.whole_numbers("channels", self.channels, 1, check.MAX_CHANNELS, range(2, 3))
        check.whole_number("hidden", self.hidden, 1, check.MAX_WIDTH)
        check.whole_number("num_classes", self.num_classes, 1, check.MAX_CLASSES)
        check.flag("deskew", self.deskew)

    @classmethod
    def from_dict(cls, data: dict) -> DigitCNNConfig:
        """The config from its JSON form; ZspaceError on unknown keys or bad values."""
        return cls(**check.known_keys_only("classifier config", data, cls))


class DigitCNN(nn.Module):
    """(B, 1, 28, 28) images in [0, 1] -> (B, num_classes) logits."""

    def __init__(self, config: DigitCNNConfig):
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, config.hidden),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(config.hidden, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
