"""Compare conditional latent GAN variants by measurement, choosing on training data only.

    python benchmarks/sweep_gan.py --ae AE --work runs/sweep --preset wide-r1 \
        --variant base '{"base": "gaussian"}' --variant r1-1 '{"r1_weight": 1.0}' \
        [--epochs 20] [--device cuda] [--json sweep.json]

Each variant is a preset plus JSON overrides of its `GANConfig` (and optionally "epochs"); the plain preset runs first
as the baseline. Every variant is trained with the same seed and epochs, then 10,000 samples
(1,000 per digit) are judged by the evaluation classifier. Model selection uses the Frechet
distance against 10,000 *training* images ("fd_train"); the test-set figure ("fd_test") is
printed beside it for the record only, never to choose.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from zspace.data import load_dataset
from zspace.evaluation.classifier import load_eval_classifier
from zspace.evaluation.metrics import ReferenceStats, evaluate_images, reference_stats
from zspace.evaluation.sources import draw_samples
from zspace.models.gan import config_for_preset
from zspace.training.gan import GANTrainingConfig, train_gan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ae", required=True, help="autoencoder run folder")
    parser.add_argument("--work", required=True, help="folder for the GAN runs (overwritten)")
    parser.add_argument("--preset", default="wide-r1")
    parser.add_argument("--variant", nargs=2, action="append", default=[], metavar=("NAME", "JSON"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--per-digit", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here as well")
    args = parser.parse_args()

    classifier = load_eval_classifier("mnist", data_dir=args.data_dir, device=args.device)
    dataset = load_dataset("mnist", data_dir=args.data_dir)
    generator = torch.Generator().manual_seed(args.seed)
    train_rows = torch.randperm(len(dataset.train_images), generator=generator)[:10_000]
    train_reference = ReferenceStats.from_images(dataset.train_images[train_rows], classifier)
    test_reference = reference_stats(dataset.test_images, classifier)
    work = Path(args.work)
    results = []
    for name, overrides in [("baseline", "{}"), *args.variant]:
        out = work / name
        shutil.rmtree(out, ignore_errors=True)
        settings = json.loads(overrides)
        epochs = settings.pop("epochs", args.epochs)  # the one override that is not a GANConfig key
        config = config_for_preset(args.preset, 64, True, **settings)
        began = time.perf_counter()
        sampler = train_gan(
            out,
            config,
            GANTrainingConfig(epochs=epochs, seed=args.seed, monitor_samples=0, inverter_steps=0),
            ae_run=args.ae,
            data_dir=args.data_dir,
            device=args.device,
            progress=False,
        )
        seconds = time.perf_counter() - began
        images, labels = draw_samples(sampler, args.per_digit, args.seed)
        on_train = evaluate_images(
            images, classifier, requested_labels=labels, reference=train_reference
        )
        on_test = evaluate_images(
            images, classifier, requested_labels=labels, reference=test_reference
        )
        row = {
            "variant": name,
            "overrides": json.loads(overrides),
            "epochs": epochs,
            "train_seconds": round(seconds, 1),
            "accuracy": on_train["requested_accuracy"],
            "fd_train": on_train["frechet_distance"],
            "fd_test": on_test["frechet_distance"],
            "precision": on_train["precision"],
            "recall": on_train["recall"],
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
