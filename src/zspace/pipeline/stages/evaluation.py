"""Stages that judge: the evaluation classifier, and the table that measures every generator
against the test set (and, for choosing the model to serve, against training images)."""

from __future__ import annotations

import time

import torch

from zspace.evaluation.metrics import (
    classify_images,
    evaluate_features,
    frechet_distance_to,
    mean_and_covariance,
    reference_features,
    reference_stats,
)
from zspace.evaluation.sources import (
    draw_samples,
    reconstruct_test_set,
    reconstruct_training_sample,
)
from zspace.figures import save_point_panels
from zspace.loading import load_sampler
from zspace.pipeline.cache import StageContext
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    DISTILLED_FLOW_STAGE,
    EVALUATION_STAGE,
    FLOW_STAGE,
    GMM_STAGE,
    PIXEL_GAN_STAGE,
    eval_classifier,
    generator_stage_names,
    study_dataset,
)
from zspace.pipeline.stages.flows import distilled_train_seconds
from zspace.sampling.latent import load_autoencoder
from zspace.training.loop import training_seconds

TEST_RECONSTRUCTIONS = "reconstructions (ceiling)"
TRAIN_RECONSTRUCTIONS = "training reconstructions (perfect code sampler)"
# The training images that the serving choice's FD is measured against: never test images, so
# that choosing a model does not tune on test. A fixed draw (seed 0), the same 10,000 images as
# benchmarks/bench_flow.py's `fd_train`, whatever the study's seed.
TRAIN_REFERENCE_IMAGES = 10_000
TRAIN_REFERENCE_SEED = 0
SPEED_BATCH = 1000  # images per timed call: noise to pixels at batch 1,000
SPEED_CALLS = 3  # timed calls after one warm-up; the fastest counts (the machine is shared)


def eval_classifier_stage(context: StageContext) -> dict:
    classifier = eval_classifier(context)
    return {"test_accuracy": classifier.test_accuracy, "key": classifier.info.get("key")}


def evaluation_stage(context: StageContext) -> dict:
    """One row of metrics per generator, below two ceilings: the autoencoder's reconstructions
    of the test images and of a sample of training images. FD, precision and recall are
    against the test set; `fd_train` is the FD against training images, which the report's
    serving choice uses."""
    classifier = eval_classifier(context)
    dataset = study_dataset(context)
    references = (  # shared by every row; only the FD is measured against training images
        reference_stats(dataset.test_images, classifier),
        mean_and_covariance(reference_features(_train_reference(dataset), classifier)),
    )
    generators = _generator_rows(context, classifier, references)
    rows = {**_ceiling_rows(context, dataset, classifier, references), **generators}
    return {
        "samples_per_digit": context.config.evaluation.samples_per_digit,
        "classifier_test_accuracy": classifier.test_accuracy,
        "train_reference_images": min(TRAIN_REFERENCE_IMAGES, len(dataset.train_images)),
        "speed_batch": SPEED_BATCH,
        "rows": rows,
        "figures": {"cost": context.relative(_cost_figure(context, generators))},
    }


def _train_reference(dataset) -> torch.Tensor:
    """TRAIN_REFERENCE_IMAGES training images (all of them when there are fewer), drawn with a
    fixed seed."""
    generator = torch.Generator().manual_seed(TRAIN_REFERENCE_SEED)
    rows = torch.randperm(len(dataset.train_images), generator=generator)
    return dataset.train_images[rows[:TRAIN_REFERENCE_IMAGES]]


def _judge(images, labels, classifier, references: tuple) -> dict:
    """The row of `evaluate_images` against the test set, plus `fd_train`: the FD against the
    training images' (mean, covariance) of features."""
    test, train = references
    predicted, features = classify_images(images, classifier)
    row = evaluate_features(predicted, features, test, requested_labels=labels)
    row["fd_train"] = frechet_distance_to(features, train)
    return row


def _ceiling_rows(context: StageContext, dataset, classifier, references) -> dict:
    autoencoder = load_autoencoder(context.stage_dir(AUTOENCODER_STAGE), context.device)
    test_row = _judge(
        reconstruct_test_set(autoencoder, dataset.test_images),
        dataset.test_labels,
        classifier,
        references,
    )
    train_images, train_labels = reconstruct_training_sample(
        autoencoder,
        dataset.train_images,
        dataset.train_labels,
        context.config.evaluation.samples_per_digit,
        context.config.seed,
    )
    train_row = _judge(train_images, train_labels, classifier, references)
    return {TEST_RECONSTRUCTIONS: test_row, TRAIN_RECONSTRUCTIONS: train_row}


def _generator_rows(context: StageContext, classifier, references) -> dict:
    config = context.config
    rows = {}
    for name in generator_stage_names(config):
        sampler = load_sampler(context.stage_dir(name), context.device)
        images, labels = draw_samples(sampler, config.evaluation.samples_per_digit, config.seed)
        rows[name] = {
            **_judge(images, labels, classifier, references),
            "train_seconds": round(_train_seconds(context, name), 1),
            "images_per_second": round(images_per_second(sampler, config.seed)),
        }
    return rows


def _train_seconds(context: StageContext, name: str) -> float:
    """A generator's training seconds; the distilled flow's include its teacher's and the
    drawing of the teacher's pairs (what it costs from scratch)."""
    if name == DISTILLED_FLOW_STAGE:
        return distilled_train_seconds(context)
    return training_seconds(context.stage_dir(name))


def images_per_second(sampler, seed: int = 0) -> float:
    """Noise to pixels at batch 1,000 through `sample_with_labels` (10 x 100 digits from a
    conditional sampler, 1,000 images from an unconditional one): one warm-up call, then the
    fastest of SPEED_CALLS timed calls. The same measurement for every generator."""
    n = SPEED_BATCH // 10 if sampler.conditional else SPEED_BATCH
    sampler.sample_with_labels(digit=None, n=n, seed=seed)  # warm-up
    fastest = float("inf")
    for call in range(SPEED_CALLS):
        started = time.perf_counter()
        images, _ = sampler.sample_with_labels(digit=None, n=n, seed=seed + 1 + call)  # on CPU
        fastest = min(fastest, time.perf_counter() - started)
    return len(images) / fastest


def generator_family(name: str) -> str:
    """The family of a generator stage, as the cost figure groups them."""
    if name in (FLOW_STAGE, DISTILLED_FLOW_STAGE):
        return "latent flow"
    if name == GMM_STAGE:
        return "Gaussian mixture"
    if name == PIXEL_GAN_STAGE:
        return "pixel-space GAN"
    return "latent GAN"


def _cost_figure(context: StageContext, rows: dict):
    """FD and recall (against the test set) of every generator against its training seconds:
    GANs and flows on the same axes."""
    out = context.stage_dir(EVALUATION_STAGE)
    out.mkdir(parents=True, exist_ok=True)
    seconds = {name: max(row["train_seconds"], 0.1) for name, row in rows.items()}
    return save_point_panels(
        {
            "FD (test set, lower is better)": {
                name: (seconds[name], row["frechet_distance"]) for name, row in rows.items()
            },
            "recall (higher is better)": {
                name: (seconds[name], row["recall"]) for name, row in rows.items()
            },
        },
        {name: generator_family(name) for name in rows},
        out / "fd_recall_vs_training_seconds.png",
        xlabel="training seconds (log scale)",
        title="FD and recall against training seconds",
        logx=True,
        logy=("FD (test set, lower is better)",),
    )
