"""Self-training: graph pseudo-labels for all 60k training images, then a CNN trained on them
with augmentation.

Poisson learning over the kNN graph of gradient histograms of the deskewed training images
labels every training image from the few true labels (about 98.5% of them correctly at 5 labels
per class). A CNN trained on those pseudo-labels, with random rotations, scalings and shifts,
generalises past part of the graph's mistakes; it is then the classifier applied to the test
images.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.errors import ZspaceError
from zspace.fewshot.classify import save_classifier
from zspace.fewshot.cluster import cluster_node_labels
from zspace.fewshot.cnn import DigitCNN, DigitCNNConfig
from zspace.fewshot.context import StudyContext
from zspace.fewshot.draws import draw_labelled
from zspace.fewshot.graph import poisson_learning
from zspace.models.augment import random_affine
from zspace.runs import CLASSIFIER, RunDir, check_claimable
from zspace.training.cards import Command, run_environment, setting_differences, write_card
from zspace.training.classifier import train_classifier

PSEUDO_LABEL_FEATURES = "hog-pca"
POISSON, CLUSTERS = "poisson-hog", "cluster-then-label"
LABEL_SOURCES = (POISSON, CLUSTERS)
# The saved classifier trains longer than the study's per-draw CNN: one model, trained once
# (4 epochs: 98.7% test accuracy from 5 labels per class, draw seed 0, in 116 s).
CLASSIFIER_EPOCHS = 4


@dataclass
class SelfTrainingConfig:
    """Fixed schedule of the CNN trained on pseudo-labels (not tuned on the test set)."""

    epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 2e-3

    def to_dict(self) -> dict:
        return asdict(self)


def pseudo_labels(
    context: StudyContext, labelled: torch.Tensor, source: str = POISSON
) -> torch.Tensor:
    """Labels for every training image, from Poisson learning on the HOG graph (`source`
    "poisson-hog") or from the HOG graph's named clusters ("cluster-then-label"); the
    labelled images keep their true labels."""
    labels = context.train_labels.to(context.device)[labelled]
    if source == CLUSTERS:
        guessed = cluster_node_labels(context, labelled).to(context.device)
    else:
        scores = poisson_learning(context.graph(PSEUDO_LABEL_FEATURES), labelled, labels)
        guessed = scores.argmax(1)
    guessed[labelled] = labels
    return guessed


def default_label_source(per_class: int) -> str:
    """The method whose labels the saved classifier learns: with one label per class the
    clusters (98.8% on every draw; Poisson learning fell to 87.8% on one), else Poisson."""
    return CLUSTERS if per_class == 1 else POISSON


def train_cnn(
    images: torch.Tensor,
    targets: torch.Tensor,
    seed: int,
    config: SelfTrainingConfig | None = None,
    model_config: DigitCNNConfig | None = None,
    progress: bool = False,
) -> DigitCNN:
    """Train a DigitCNN on (already deskewed when the config says so) float images
    (N, 1, 28, 28) and integer targets (N,), with random affine augmentation."""
    config = config or SelfTrainingConfig()
    torch.manual_seed(seed)
    model = DigitCNN(model_config or DigitCNNConfig()).to(images.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    train_classifier(
        model,
        optimizer,
        images,
        targets,
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=seed,
        transform=lambda batch: random_affine(batch, generator),
        drop_last=True,  # a ragged last batch would weigh a few images heavily
        progress=progress,
        description="self-training CNN",
    )
    return model


@torch.no_grad()
def predict_logits(model: DigitCNN, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    return torch.cat(
        [model(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    )


def train_self_trained_cnn(
    context: StudyContext,
    labelled: torch.Tensor,
    config: SelfTrainingConfig | None = None,
    source: str = POISSON,
) -> DigitCNN:
    """The whole method for one labelled draw: pseudo-labels, then the CNN."""
    train_images, _ = context.cached("deskewed", context.deskewed)
    targets = pseudo_labels(context, labelled, source)
    seed = context.seed * 1_000_003 + int(labelled[0])
    return train_cnn(train_images, targets, seed, config, progress=context.progress)


def self_training_predict(context: StudyContext, labelled: torch.Tensor) -> torch.Tensor:
    """Test labels predicted by the self-trained CNN of this draw."""
    model = train_self_trained_cnn(context, labelled)
    _, test_images = context.cached("deskewed", context.deskewed)
    return predict_logits(model, test_images).argmax(1)


def train_and_save_classifier(
    out,
    per_class: int = 5,
    seed: int = 0,
    config: SelfTrainingConfig | None = None,
    dataset: str = "mnist",
    data_dir=None,
    limit: int | None = None,
    device: str = "auto",
    labels_from: str | None = None,
) -> dict:
    """Draw `per_class` labels per class, self-train the CNN on the labels `labels_from`
    (default: `default_label_source`) gives every training image, save it as a classifier
    run; returns {"labels", "test_accuracy"} (the test set is only measured, never used)."""
    labels_from = labels_from or default_label_source(per_class)
    if labels_from not in LABEL_SOURCES:
        raise ZspaceError(
            f"unknown label source {labels_from!r}; choose from {', '.join(LABEL_SOURCES)}"
        )
    if RunDir(out).exists():
        raise ZspaceError(f"{out} already holds a run; choose another --out")
    check_claimable(out, CLASSIFIER)  # before any work: never into a folder of a user's files
    config = config or SelfTrainingConfig(epochs=CLASSIFIER_EPOCHS)
    data = load_dataset(dataset, data_dir=data_dir, limit=limit)
    if data.train_labels is None:
        raise ZspaceError(f"{dataset} has no labels to draw from")
    torch_device = resolve_device(device)
    context = StudyContext(
        train_images=data.train_images,
        train_labels=data.train_labels,
        test_images=data.test_images,
        test_labels=data.test_labels,
        autoencoder=None,
        device=torch_device,
        seed=seed,
    )
    labelled = draw_labelled(data.train_labels, per_class=per_class, seed=seed).to(torch_device)
    started = time.perf_counter()
    model = train_self_trained_cnn(context, labelled, config, labels_from)
    seconds = time.perf_counter() - started
    report = {"labels": len(labelled), "test_accuracy": None}
    if data.test_labels is not None:
        _, test_images = context.cached("deskewed", context.deskewed)
        predicted = predict_logits(model, test_images).argmax(1).cpu()
        report["test_accuracy"] = (predicted == data.test_labels).float().mean().item()
    save_classifier(
        out,
        model.cpu(),
        {
            "method": "selftrain-cnn",
            "dataset": dataset,
            "per_class": per_class,
            "labels_from": labels_from,
            "labelled_indices": labelled.cpu().tolist(),
            "seed": seed,
            "limit": limit,
            **config.to_dict(),
            "test_accuracy": report["test_accuracy"],
        },
        environment=run_environment(torch_device),
    )
    # Pseudo-labelling and the CNN's epochs, and the test accuracy, for the model card.
    RunDir(out).append_metrics(
        {"test_accuracy": report["test_accuracy"], "seconds": round(seconds, 3)}
    )
    write_card(out)
    return report


def command_for_run(run: RunDir, config: dict) -> Command:
    """The `zspace train-classifier` command that makes this run (for its model card)."""
    training = config["training"]
    args = ["train-classifier", "--per-class", training["per_class"], "--seed", training["seed"]]
    args += ["--epochs", training["epochs"]]
    labels_from = training.get("labels_from", POISSON)  # runs before it was a choice: Poisson
    if labels_from != default_label_source(training["per_class"]):
        args += ["--labels-from", labels_from]
    if training.get("limit") is not None:
        args += ["--limit", training["limit"]]
    if training["dataset"] != "mnist":
        args += ["--dataset", training["dataset"]]
    args += ["--out", run.path]
    # The command sets the epochs; the rest of the schedule and the network are its defaults.
    schedule = SelfTrainingConfig(epochs=training["epochs"]).to_dict()
    saved = {key: training.get(key) for key in ("method", *schedule)}
    differences = setting_differences(
        {"model": config["model"], "training": saved},
        {"model": DigitCNNConfig().to_dict(), "training": {"method": "selftrain-cnn", **schedule}},
    )
    return Command(args, differences)
