"""The zero-label run behind `zspace cluster`: cluster the training images, assign the test
images, evaluate both against the digits, and write cluster.json, cluster_assignments.npz and
clusters.png.

    from zspace.fewshot.cluster_report import ClusterConfig, run_clustering
    summary = run_clustering(ClusterConfig(ae_run="runs/ae"), out="runs/cluster")
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from zspace.errors import ZspaceError
from zspace.fewshot.cluster import (
    CLUSTER_FEATURES,
    CLUSTER_NEIGHBOURS,
    accuracy_under,
    assign_test,
    cluster_training_images,
    matched_accuracy,
    normalized_mutual_information,
)
from zspace.fewshot.study import StudyConfig, load_context
from zspace.figures import save_grid
from zspace.files import save_json, save_npz
from zspace.runs import claim_folder

# The kind a clustering's output folder is claimed as (zspace.runs.claim_folder).
CLUSTER_OUTPUT = "cluster-study"
FEATURE_NAMES = ("hog-pca", "encoder", "deskewed-pca", "pixels")
# Published unsupervised accuracy on the MNIST training images (McConville et al., N2D 2019).
REFERENCE = {"N2D": 0.979}
SAMPLES_PER_CLUSTER = 16  # images per row of clusters.png


@dataclass
class ClusterConfig:
    """Everything a clustering needs; saved into cluster.json."""

    ae_run: str
    features: str = CLUSTER_FEATURES
    clusters: int = 10
    seed: int = 0
    dataset: str | None = None  # default: the dataset the autoencoder was trained on
    data_dir: str | None = None
    train_limit: int | None = None  # first N training images only (smoke tests)
    test_limit: int | None = None
    device: str = "auto"

    def validate(self) -> None:
        if self.features not in FEATURE_NAMES:
            raise ZspaceError(
                f"unknown features {self.features!r}; choose from {', '.join(FEATURE_NAMES)}"
            )
        if self.clusters < 2:
            raise ZspaceError(f"--clusters must be at least 2, got {self.clusters}")
        if self.train_limit is not None and self.train_limit <= self.clusters:
            raise ZspaceError(
                f"{self.train_limit} training images are too few for {self.clusters} clusters"
            )


def run_clustering(config: ClusterConfig, out: str | Path, log=print) -> dict:
    """Cluster the training images of `config` without labels, evaluate the clusters and write
    them into folder `out`; returns the summary written to cluster.json."""
    config.validate()
    out = claim_folder(out, CLUSTER_OUTPUT)  # refused before any work, never over a user's files
    context = load_context(
        StudyConfig(
            ae_run=config.ae_run,
            seed=config.seed,
            dataset=config.dataset,
            data_dir=config.data_dir,
            train_limit=config.train_limit,
            test_limit=config.test_limit,
            device=config.device,
        )
    )
    started = time.perf_counter()
    train = cluster_training_images(context, config.features, config.clusters, config.seed).cpu()
    test = assign_test(context, config.features, train).cpu()
    seconds = time.perf_counter() - started
    train_labels, test_labels = context.train_labels.cpu(), context.test_labels.cpu()
    accuracy, mapping = matched_accuracy(train, train_labels)
    summary = {
        "config": asdict(config),
        "features": config.features,
        "clusters": config.clusters,
        "graph_neighbours": CLUSTER_NEIGHBOURS,
        "train_images": len(train),
        "test_images": len(test),
        "train": {
            "accuracy": accuracy,
            "nmi": normalized_mutual_information(train, train_labels),
        },
        # The test images keep the training images' matching: they are only ever classified.
        "test": {
            "accuracy": accuracy_under(mapping, test, test_labels),
            "nmi": normalized_mutual_information(test, test_labels),
        },
        "reference": REFERENCE,
        "seconds": round(seconds, 2),
        "timings": {key: round(value, 2) for key, value in context.timings.items()},
        "mapping": {str(cluster): digit for cluster, digit in sorted(mapping.items())},
    }
    save_json(out / "cluster.json", summary)
    save_npz(
        out / "cluster_assignments.npz",
        {"train": train.numpy(), "test": test.numpy(), "mapping": mapping_array(mapping, config)},
    )
    save_cluster_samples(context.train_images, train, mapping, config, out / "clusters.png")
    return summary


def mapping_array(mapping: dict[int, int], config: ClusterConfig) -> np.ndarray:
    """The matched digit of each cluster (clusters,), -1 where a cluster has none."""
    digits = np.full(config.clusters, -1, dtype=np.int64)
    for cluster, digit in mapping.items():
        digits[cluster] = digit
    return digits


def save_cluster_samples(
    images: torch.Tensor,
    assignments: torch.Tensor,
    mapping: dict[int, int],
    config: ClusterConfig,
    path: Path,
) -> Path:
    """One row of random members per cluster, rows in the order of the matched digits (then
    the unmatched clusters); a cluster with fewer members leaves its row's end blank."""
    generator = torch.Generator().manual_seed(config.seed)
    order = sorted(range(config.clusters), key=lambda c: (c not in mapping, mapping.get(c, c), c))
    rows = torch.zeros(config.clusters, SAMPLES_PER_CLUSTER, *images.shape[1:], dtype=torch.uint8)
    for row, cluster in enumerate(order):
        members = (assignments == cluster).nonzero()[:, 0]
        chosen = members[torch.randperm(len(members), generator=generator)[:SAMPLES_PER_CLUSTER]]
        rows[row, : len(chosen)] = images[chosen]
    return save_grid(rows, path)
