"""What `zspace evaluate` evaluates: an `.npz` of samples or a run folder.

- `.npz` with `images` uint8 (N, 28, 28) and optional `labels` (the requested digits).
- An autoencoder run: its reconstructions of the test set (the decoder's ceiling).
- Any sampler run (latent or pixel GAN, gmm-baseline, ...): `per_digit` samples of each digit
  (conditional) or `10 * per_digit` samples (unconditional), drawn through the run's sampler.

Generated images are rounded to uint8 before they are judged, so evaluating a run and
evaluating the `.npz` that `zspace sample` writes for it give the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zspace.data import load_dataset
from zspace.data.npz import IMAGES, LABELS, read_npz
from zspace.errors import ZspaceError
from zspace.evaluation.classifier import load_eval_classifier
from zspace.evaluation.metrics import evaluate_images, reference_stats
from zspace.loading import load_sampler
from zspace.models.images import to_uint8_images
from zspace.runs import AUTOENCODER, RunDir, run_dataset_name
from zspace.sampling.latent import decode_codes, encode_images, load_autoencoder
from zspace.sampling.sampler import NUM_DIGITS

SAMPLES_PER_CALL = 1000  # below the samplers' per-call cap of 1024


def load_samples_npz(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images uint8 (N, 28, 28), requested labels int64 (N,) or None) from a samples `.npz`;
    its other arrays (codes, say) are not read."""
    path = Path(path)
    arrays = read_npz(path, {"images": IMAGES, "labels": LABELS}, ignore_others=True)
    if "images" not in arrays:
        raise ZspaceError(f"{path}: has no 'images' array")
    images, labels = arrays["images"], arrays.get("labels")
    if labels is not None:
        if labels.shape != (len(images),):
            raise ZspaceError(
                f"{path}: 'labels' has {len(labels)} entries but there are {len(images)} images"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= NUM_DIGITS):
            raise ZspaceError(f"{path}: 'labels' must lie in 0..{NUM_DIGITS - 1}")
        labels = torch.from_numpy(labels.astype(np.int64))
    return torch.from_numpy(images), labels


def draw_samples(sampler, per_digit: int, seed: int = 0):
    """uint8 (M, 28, 28) images and requested labels (or None), drawn in calls of <= 1000."""
    images, labels = [], []
    remaining, call = per_digit if sampler.conditional else per_digit * NUM_DIGITS, 0
    while remaining > 0:
        size = min(remaining, SAMPLES_PER_CALL)
        batch, batch_labels = sampler.sample_with_labels(digit=None, n=size, seed=seed + call)
        images.append(to_uint8_images(batch))
        if batch_labels is not None:
            labels.append(batch_labels.long().cpu())
        remaining -= size
        call += 1
    images = torch.cat(images)
    if not labels:
        return images, None
    # Conditional calls return digit-major blocks; order does not matter to the metrics.
    return images, torch.cat(labels)


def reconstruct_test_set(autoencoder, test_images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) reconstructions of the test images: what the decoder can do at best."""
    return to_uint8_images(decode_codes(autoencoder, encode_images(autoencoder, test_images)))


def reconstruct_training_sample(
    autoencoder,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    per_digit: int,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 reconstructions of `per_digit` random training images of each digit, and labels.

    This is what a perfect sampler of the training codes would produce: the fairest ceiling for
    a latent generator. (Test-set reconstructions are paired one to one with the reference
    images, so their FD, precision and recall carry no sampling error at all.)
    """
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for digit in range(NUM_DIGITS):
        rows = (train_labels == digit).nonzero().squeeze(1)  # fewer on a subset: all of them
        chosen.append(rows[torch.randperm(len(rows), generator=generator)[:per_digit]])
    rows = torch.cat(chosen)
    return reconstruct_test_set(autoencoder, train_images[rows]), train_labels[rows]


def evaluate_source(
    source: str | Path,
    per_digit: int = 1000,
    seed: int = 0,
    ae_run: str | Path | None = None,
    ceiling: bool = True,
    dataset: str | None = None,
    data_dir=None,
    device: str = "cpu",
    progress: bool = True,
    classifier=None,
    classifier_options: dict | None = None,
    sampling: dict | None = None,
) -> dict:
    """Evaluate an `.npz` of samples or a run folder; returns a JSON-able dict.

    Keys: source, kind, dataset, classifier (its key and test accuracy), samples (the
    `evaluate_images` report), ceiling (the same for test-set reconstructions of `ae_run`, or
    of the run's own autoencoder; None when there is none or `ceiling` is false).
    """
    if per_digit < 1:
        raise ZspaceError(f"-n must be at least 1, got {per_digit}")
    source = Path(source)
    opened = _open_source(source, dataset, device, sampling)
    kind, dataset, autoencoder = opened.kind, opened.dataset, opened.autoencoder
    if ae_run is not None:
        autoencoder = load_autoencoder(ae_run, device)
    data = load_dataset(dataset, data_dir=data_dir)
    if data.test_labels is None:
        raise ZspaceError(f"{dataset} has no test labels; evaluation needs a labelled test split")
    if classifier is None:
        options = classifier_options or {}
        classifier = load_eval_classifier(
            dataset, data_dir=data_dir, device=device, progress=progress, **options
        )
    reference = reference_stats(data.test_images, classifier)

    def judge(images, labels) -> dict:
        return evaluate_images(images, classifier, requested_labels=labels, reference=reference)

    if kind == "samples":
        images, labels = opened.images, opened.labels
    elif kind == AUTOENCODER:
        images, labels = reconstruct_test_set(autoencoder, data.test_images), data.test_labels
    else:
        images, labels = draw_samples(opened.sampler, per_digit, seed)
    samples = judge(images, labels)
    ceiling_report = None
    if ceiling and autoencoder is not None:
        ceiling_report = (
            samples
            if kind == AUTOENCODER
            else judge(reconstruct_test_set(autoencoder, data.test_images), data.test_labels)
        )
    return {
        "source": str(source),
        "kind": kind,
        "dataset": dataset,
        "classifier": {
            "key": classifier.info.get("key"),
            "test_accuracy": classifier.test_accuracy,
        },
        "samples": samples,
        "ceiling": ceiling_report,
    }


@dataclass
class _Source:
    """What is evaluated: samples from an `.npz`, an autoencoder, or a sampler run."""

    kind: str
    dataset: str
    sampler: object | None = None
    autoencoder: object | None = None
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None


def _open_source(source: Path, dataset: str | None, device, sampling=None) -> _Source:
    if source.suffix == ".npz" and not source.is_dir():
        images, labels = load_samples_npz(source)
        return _Source("samples", dataset or "mnist", images=images, labels=labels)
    config = RunDir(source).read_config()
    dataset = dataset or run_dataset_name(config)
    if config["kind"] == AUTOENCODER:
        return _Source(AUTOENCODER, dataset, autoencoder=load_autoencoder(source, device))
    sampler = load_sampler(source, device, action="be evaluated", sampling=sampling)
    return _Source(config["kind"], dataset, sampler, sampler.autoencoder)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}"


def format_report(result: dict) -> str:
    """A readable table: one row per metric, a column for the samples and one for the ceiling."""
    columns = [("samples", result["samples"])]
    if result.get("ceiling") is not None and result["kind"] != AUTOENCODER:
        columns.append(("AE ceiling", result["ceiling"]))
    if result["kind"] == AUTOENCODER:
        columns = [("test reconstructions", result["samples"])]
    rows = [
        ("images", "count"),
        ("judged as requested digit", "requested_accuracy"),
        ("Frechet distance (lower better)", "frechet_distance"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("KL(class histogram || uniform)", "kl_from_uniform"),
        ("diversity (vs real = 1)", "diversity"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    header = " " * width + "".join(f"{name:>22}" for name, _ in columns)
    lines = [
        f"{result['source']} ({result['kind']}), dataset {result['dataset']}, classifier test "
        f"accuracy {_cell(result['classifier']['test_accuracy'])}",
        header,
    ]
    for label, key in rows:
        lines.append(f"{label:<{width}}" + "".join(f"{_cell(r[key]):>22}" for _, r in columns))
    for name, report in columns:
        histogram = " ".join(
            f"{d}:{share:.3f}" for d, share in enumerate(report["class_histogram"])
        )
        lines.append(f"class histogram ({name}): {histogram}")
    return "\n".join(lines)
