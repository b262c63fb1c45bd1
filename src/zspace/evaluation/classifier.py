"""The evaluation classifier: a small CNN trained on the training split only, cached on disk.

It never sees generated images or the test labels during training; the schedule is fixed
(no early stopping, no model selection), so its test accuracy is an honest held-out figure.
Its penultimate layer is the feature space for Frechet distance and precision/recall.

    clf = load_eval_classifier("mnist")        # trains once (about a minute on 2 cores), then loads
    labels, probs = clf.predict(images_uint8)  # (N,), (N, 10)
    feats = clf.features(images_uint8)         # (N, 128)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from zspace import config_checks as check
from zspace.checkpoint import atomic_write_json, load_module_weights, load_tensors, save_tensors
from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.errors import RunError, ZspaceError
from zspace.models.images import to_float_images
from zspace.training.classifier import train_classifier

# Bump when the architecture or training recipe changes meaning, so old caches are not reused.
RECIPE_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class EvalClassifierConfig:
    """Architecture: two conv blocks (28 -> 14 -> 7), a third conv at 7x7, then a dense layer."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    feature_dim: int = 128
    dropout: float = 0.3
    num_classes: int = 10

    def __post_init__(self):
        check.whole_numbers("channels", self.channels, 1, check.MAX_CHANNELS, range(3, 4))
        check.whole_number("feature_dim", self.feature_dim, 1, check.MAX_WIDTH)
        check.real_number("dropout", self.dropout, 0.0, 0.99)
        check.whole_number("num_classes", self.num_classes, 1, check.MAX_CLASSES)

    @classmethod
    def from_dict(cls, data: dict) -> EvalClassifierConfig:
        """The config from its JSON form (unknown keys are ignored); ZspaceError on a value
        of the wrong type or range."""
        return cls(**check.known_fields("evaluation classifier config", data, cls))


@dataclass
class EvalTrainingConfig:
    """The fixed training recipe (part of the cache key)."""

    dataset: str = "mnist"
    limit: int | None = None
    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    max_shift: int = 2  # random translations of up to this many pixels (augmentation)
    seed: int = 0

    def validate(self) -> None:
        if self.epochs < 1:
            raise ZspaceError(f"classifier epochs must be at least 1, got {self.epochs}")
        if self.limit is not None and self.limit < 10:
            raise ZspaceError(f"classifier limit must be at least 10, got {self.limit}")
        if self.batch_size < 1:
            raise ZspaceError(f"classifier batch size must be at least 1, got {self.batch_size}")


def conv_block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    layers = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class EvalCNN(nn.Module):
    """(B, 1, 28, 28) in [0, 1] -> logits (B, 10); `embed` gives the (B, feature_dim) features."""

    def __init__(self, config: EvalClassifierConfig):
        super().__init__()
        c1, c2, c3 = config.channels
        self.config = config
        self.convs = nn.Sequential(
            conv_block(1, c1, pool=True),  # 28 -> 14
            conv_block(c1, c2, pool=True),  # 14 -> 7
            conv_block(c2, c3, pool=False),  # 7x7: cheap extra depth
            nn.Flatten(),
        )
        self.embedding = nn.Sequential(
            nn.Linear(c3 * 7 * 7, config.feature_dim, bias=False),
            nn.BatchNorm1d(config.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.num_classes)
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.convs(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image of (B, 1, H, W) by its own random integer offset, filling with 0."""
    if max_shift <= 0:
        return images
    count, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, count), generator=generator)
    offsets = offsets.to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # (B, W)
    batch = torch.arange(count, device=images.device)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def _as_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) or float (N, 1, 28, 28) / (N, 28, 28) in [0, 1] -> float (N, 1, 28, 28)."""
    if not torch.is_tensor(images):
        images = torch.as_tensor(images)
    shape = tuple(images.shape)
    if shape[1:] not in ((28, 28), (1, 28, 28)):
        raise ZspaceError(f"images must be (N, 28, 28) or (N, 1, 28, 28), got shape {shape}")
    if images.dtype != torch.uint8:
        images = images.float()
    return to_float_images(images)


def _fused_embedding(model: EvalCNN) -> nn.Module:
    """An inference-only copy of model.embed with every BatchNorm folded into its conv/linear."""
    model = copy.deepcopy(model).eval()
    layers: list[nn.Module] = []
    for block in [*model.convs, model.embedding]:
        if not isinstance(block, nn.Sequential):  # the Flatten between convs and embedding
            layers.append(block)
            continue
        parts = list(block)
        first, norm, rest = parts[0], parts[1], parts[2:]
        fuse = fuse_conv_bn_eval if isinstance(first, nn.Conv2d) else fuse_linear_bn_eval
        layers += [fuse(first, norm), *rest]
    return nn.Sequential(*layers).requires_grad_(False)


class EvalClassifier:
    """A trained EvalCNN in eval mode plus its provenance (config, test accuracy)."""

    def __init__(
        self, model: EvalCNN, info: dict, device: torch.device, folder: Path | None = None
    ):
        self.model = model.to(device).eval()
        # Inference runs through a copy with each BatchNorm folded into the layer before it:
        # the same function (to float rounding) in 20% less time on a CPU.
        self._embed = _fused_embedding(self.model)
        self.info = info
        self.device = device
        self.folder = folder  # the cache entry, where derived data (reference features) may go

    def __repr__(self) -> str:
        accuracy = self.info.get("test_accuracy")
        return f"EvalClassifier({self.info.get('key')!r}, test_accuracy={accuracy})"

    @property
    def test_accuracy(self) -> float | None:
        return self.info.get("test_accuracy")

    @torch.no_grad()
    def _batched(self, images, fn, batch_size: int) -> torch.Tensor:
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = _as_model_input(images[start : start + batch_size]).to(self.device)
            chunks.append(fn(batch).float().cpu())
        return torch.cat(chunks)

    def logits(self, images, batch_size: int = 1000) -> torch.Tensor:
        """float (N, 10) logits on CPU."""
        if len(images) == 0:
            return torch.empty(0, self.model.config.num_classes)
        return self._batched(images, lambda batch: self.model.head(self._embed(batch)), batch_size)

    def predict(self, images, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (uint8 (N,28,28) or float (N,1,28,28) in [0,1]) -> (labels int64 (N,),
        probabilities float (N, 10)), both on CPU."""
        probs = self.logits(images, batch_size).softmax(dim=1)
        return probs.argmax(dim=1), probs

    def features(self, images, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate-layer features, float (N, feature_dim) on CPU."""
        if len(images) == 0:
            return torch.empty(0, self.model.config.feature_dim)
        return self._batched(images, self._embed, batch_size)

    @torch.no_grad()
    def predict_with_features(self, images, batch_size: int = 1000):
        """(labels (N,), probabilities (N, 10), features (N, feature_dim)) from one forward pass."""
        if len(images) == 0:
            features = torch.empty(0, self.model.config.feature_dim)
            return torch.empty(0, dtype=torch.long), torch.empty(0, 10), features
        features = self.features(images, batch_size)
        probs = self.model.head(features.to(self.device)).float().cpu().softmax(dim=1)
        return probs.argmax(dim=1), probs, features

    def accuracy(self, images, labels) -> float:
        predicted, _ = self.predict(images)
        return (predicted == labels.cpu()).float().mean().item()


def default_cache_dir() -> Path:
    """$ZSPACE_CACHE, else ~/.cache/zspace/models."""
    override = os.environ.get("ZSPACE_CACHE")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "zspace" / "models"


def cache_key(model_config: EvalClassifierConfig, training: EvalTrainingConfig) -> str:
    """A readable folder name that changes whenever any setting does."""
    settings = {"recipe": RECIPE_VERSION, "model": asdict(model_config), **asdict(training)}
    dataset_file = Path(training.dataset)
    if training.dataset.endswith(".npz") and dataset_file.is_file():
        # A user's .npz: a replaced file must not reuse a classifier trained on the old one.
        stat = dataset_file.stat()
        settings["file"] = [str(dataset_file.resolve()), stat.st_size, stat.st_mtime_ns]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    name = Path(training.dataset).stem if training.dataset.endswith(".npz") else training.dataset
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:40]
    limit = "all" if training.limit is None else str(training.limit)
    return f"eval-cnn-{name}-e{training.epochs}-n{limit}-s{training.seed}-{digest}"


def train_eval_classifier(
    training: EvalTrainingConfig,
    model_config: EvalClassifierConfig | None = None,
    data_dir=None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[EvalCNN, dict]:
    """Train on the training split with the fixed recipe; returns (model, info).

    The test split is used once, after training, to report accuracy; it never steers training.
    """
    model_config = model_config or EvalClassifierConfig()
    training.validate()
    torch_device = resolve_device(device) if isinstance(device, str) else device
    dataset = load_dataset(training.dataset, data_dir=data_dir, limit=training.limit)
    if dataset.train_labels is None:
        raise ZspaceError(f"{training.dataset} has no labels; the evaluation classifier needs them")

    torch.manual_seed(training.seed)
    model = EvalCNN(model_config).to(torch_device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    images = to_float_images(dataset.train_images.to(torch_device))
    labels = dataset.train_labels.to(torch_device)
    shift_generator = torch.Generator().manual_seed(training.seed + 1)
    started = time.perf_counter()
    train_classifier(
        model,
        optimizer,
        images,
        labels,
        epochs=training.epochs,
        batch_size=training.batch_size,
        learning_rate=training.learning_rate,
        seed=training.seed,
        transform=lambda batch: random_shift(batch, training.max_shift, shift_generator),
        progress=progress,
        description="evaluation classifier",
    )
    seconds = time.perf_counter() - started
    classifier = EvalClassifier(model, {}, torch_device)
    info = {
        "train_seconds": round(seconds, 2),
        "threads": torch.get_num_threads(),
        "device": str(torch_device),
        "train_count": len(images),
    }
    if dataset.test_labels is not None:
        info["test_accuracy"] = classifier.accuracy(dataset.test_images, dataset.test_labels)
    return model, info


def load_eval_classifier(
    dataset: str = "mnist",
    data_dir=None,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    limit: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
) -> EvalClassifier:
    """The cached evaluation classifier for `dataset`; trains and caches it on first use.

    `limit` (first N training images) and `epochs` give a quick, weaker classifier for tests;
    they are part of the cache key, so they never replace the full one.
    """
    defaults = EvalTrainingConfig()
    training = EvalTrainingConfig(
        dataset=str(dataset),
        limit=limit,
        epochs=defaults.epochs if epochs is None else epochs,
        seed=seed,
    )
    training.validate()
    model_config = EvalClassifierConfig()
    torch_device = resolve_device(device) if isinstance(device, str) else device
    key = cache_key(model_config, training)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = folder / key
    if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file():
        return _load_cached(folder, torch_device)

    # First use: minutes of work the caller did not ask for by name, so say what it is, that
    # it happens once, and where the result goes (stderr: stdout may be a command's JSON).
    images = "all" if limit is None else f"the first {limit}"
    print(
        f"zspace: training the evaluation classifier on {images} {dataset} training images "
        f"({training.epochs} epochs, a few minutes on a CPU; once only, cached in {folder})",
        file=sys.stderr,
        flush=True,
    )
    model, info = train_eval_classifier(training, model_config, data_dir, torch_device, progress)
    print(
        f"zspace: evaluation classifier trained in {info['train_seconds']:.0f} s"
        + (f", test accuracy {info['test_accuracy']:.4f}" if "test_accuracy" in info else ""),
        file=sys.stderr,
        flush=True,
    )
    record = {
        "kind": "eval-classifier",
        "key": key,
        "recipe": RECIPE_VERSION,
        "model": asdict(model_config),
        "training": asdict(training),
        **info,
    }
    # Weights first, config last: a folder with a config is a complete cache entry.
    save_tensors(folder / WEIGHTS_FILE, model.state_dict())
    atomic_write_json(folder / CONFIG_FILE, record)
    return EvalClassifier(model, record, torch_device, folder)


def _load_cached(folder: Path, device: torch.device) -> EvalClassifier:
    try:
        record = json.loads((folder / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{folder / CONFIG_FILE} is damaged ({error}); delete {folder}") from error
    if not isinstance(record, dict):
        raise RunError(f"{folder / CONFIG_FILE} is not a JSON object; delete {folder}")
    with check.reading(folder / CONFIG_FILE):
        model = EvalCNN(EvalClassifierConfig.from_dict(record.get("model", {})))
    tensors, _ = load_tensors(folder / WEIGHTS_FILE)
    load_module_weights(model, tensors, str(folder / WEIGHTS_FILE))
    return EvalClassifier(model, record, device, folder)
