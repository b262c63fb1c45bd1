"""Stages that judge: the evaluation classifier, and the table that measures every generator
against the test set."""

from __future__ import annotations

from zspace.evaluation.metrics import ReferenceStats, evaluate_images, reference_stats
from zspace.evaluation.sources import (
    draw_samples,
    reconstruct_test_set,
    reconstruct_training_sample,
)
from zspace.loading import load_sampler
from zspace.pipeline.cache import StageContext
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    GMM_STAGE,
    PIXEL_GAN_STAGE,
    eval_classifier,
    gan_stage_name,
    study_dataset,
)
from zspace.sampling.latent import load_autoencoder

TEST_RECONSTRUCTIONS = "reconstructions (ceiling)"
TRAIN_RECONSTRUCTIONS = "training reconstructions (perfect code sampler)"


def eval_classifier_stage(context: StageContext) -> dict:
    classifier = eval_classifier(context)
    return {"test_accuracy": classifier.test_accuracy, "key": classifier.info.get("key")}


def evaluation_stage(context: StageContext) -> dict:
    """One row of metrics per generator, below two ceilings: the autoencoder's reconstructions
    of the test images and of a sample of training images."""
    classifier = eval_classifier(context)
    dataset = study_dataset(context)
    reference = reference_stats(dataset.test_images, classifier)  # shared by every row
    rows = {
        **_ceiling_rows(context, dataset, classifier, reference),
        **_generator_rows(context, classifier, reference),
    }
    return {
        "samples_per_digit": context.config.evaluation.samples_per_digit,
        "classifier_test_accuracy": classifier.test_accuracy,
        "rows": rows,
    }


def _ceiling_rows(context: StageContext, dataset, classifier, reference: ReferenceStats) -> dict:
    autoencoder = load_autoencoder(context.stage_dir(AUTOENCODER_STAGE), context.device)
    test_row = evaluate_images(
        reconstruct_test_set(autoencoder, dataset.test_images),
        classifier,
        requested_labels=dataset.test_labels,
        reference=reference,
    )
    train_images, train_labels = reconstruct_training_sample(
        autoencoder,
        dataset.train_images,
        dataset.train_labels,
        context.config.evaluation.samples_per_digit,
        context.config.seed,
    )
    train_row = evaluate_images(
        train_images, classifier, requested_labels=train_labels, reference=reference
    )
    return {TEST_RECONSTRUCTIONS: test_row, TRAIN_RECONSTRUCTIONS: train_row}


def _generator_rows(context: StageContext, classifier, reference: ReferenceStats) -> dict:
    config = context.config
    gans = [gan_stage_name(p, c) for p in config.gan.presets for c in (True, False)]
    rows = {}
    for name in [*gans, GMM_STAGE, PIXEL_GAN_STAGE]:
        sampler = load_sampler(context.stage_dir(name), context.device)
        images, labels = draw_samples(sampler, config.evaluation.samples_per_digit, config.seed)
        rows[name] = evaluate_images(
            images, classifier, requested_labels=labels, reference=reference
        )
    return rows
