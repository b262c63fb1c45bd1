"""Frechet distance, k-NN precision/recall, KL from uniform, diversity and evaluate_images."""

from __future__ import annotations

import torch


def test_training_reconstructions_draw_per_digit_and_repeat_by_seed(small_ae_run, mnist_dir):
    from zspace.data import load_dataset
    from zspace.evaluation.sources import reconstruct_training_sample
    from zspace.sampling.latent import load_autoencoder

    dataset = load_dataset("mnist", data_dir=mnist_dir, limit=2000)
    autoencoder = load_autoencoder(small_ae_run)
    images, labels = reconstruct_training_sample(
        autoencoder, dataset.train_images, dataset.train_labels, per_digit=5, seed=1
    )
    assert images.dtype == torch.uint8 and images.shape == (50, 28, 28)
    assert torch.equal(labels, torch.arange(10).repeat_interleave(5))
    again, _ = reconstruct_training_sample(
        autoencoder, dataset.train_images, dataset.train_labels, per_digit=5, seed=1
    )
    other, _ = reconstruct_training_sample(
        autoencoder, dataset.train_images, dataset.train_labels, per_digit=5, seed=2
    )
    assert torch.equal(images, again) and not torch.equal(images, other)
