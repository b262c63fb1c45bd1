"""The mode-collapse check a GAN's training logs after each epoch.

A collapsed GAN piles its samples into a few classes, so the class histogram of generated
samples, as judged by the evaluation classifier, shows it at once; for a conditional GAN the
share judged as the requested digit shows whether the label is obeyed.

    monitor = CollapseMonitor.for_dataset(samples=1000, seed=0, data_dir=...)
    train_gan(out, model, training, monitor=monitor)
"""

from __future__ import annotations

import torch

from zspace.evaluation.classifier import load_eval_classifier
from zspace.evaluation.metrics import class_histogram, kl_from_uniform
from zspace.sampling.sampler import NUM_DIGITS


class CollapseMonitor:
    """(sampler, epoch) -> class_histogram, kl_from_uniform and, when conditional,
    requested_accuracy of `samples` generated images (fixed noise, so epochs compare)."""

    def __init__(self, classifier, samples: int = 1000, seed: int = 0):
        self.classifier = classifier
        self.samples = samples
        self.seed = seed

    @classmethod
    def for_dataset(
        cls, samples: int = 1000, seed: int = 0, dataset="mnist", data_dir=None, progress=True
    ) -> CollapseMonitor:
        """A monitor with the dataset's evaluation classifier (trained and cached on first use)."""
        classifier = load_eval_classifier(
            dataset=dataset, data_dir=data_dir, device="cpu", progress=progress
        )
        return cls(classifier, samples, seed)

    @torch.no_grad()
    def __call__(self, sampler, epoch: int) -> dict:
        # Seeded CPU streams: the global RNG, which resume restores, is untouched.
        noise = sampler.noise(self.samples, self.seed + 1)
        requested = torch.arange(self.samples) % NUM_DIGITS if sampler.conditional else None
        predicted, _ = self.classifier.predict(sampler.images(noise, requested))
        predicted = predicted.cpu()
        histogram = class_histogram(predicted)
        report = {
            "class_histogram": [round(float(v), 4) for v in histogram],
            "kl_from_uniform": round(kl_from_uniform(histogram), 5),
        }
        if requested is not None:
            report["requested_accuracy"] = float((predicted == requested).float().mean())
        return report
