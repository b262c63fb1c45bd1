"""Latent GAN targets (issue 4): quality, training time, sampling speed; prints JSON.

    python benchmarks/bench_gan.py --ae runs/ae --work runs/bench_gan [--presets reference wide]

For each preset a conditional latent GAN is trained on the AE's training codes (timed), then
evaluated on 10,000 samples (1,000 per digit) with the evaluation classifier: accuracy on the
requested digit, Frechet distance against the test set, precision/recall. Beside them: the
AE's test-set reconstructions (the decoder's ceiling), the class-conditional Gaussian mixture,
and the pixel-space conditional GAN trained with `--pixel-factor` (default 5) times the
default preset's wall-clock training time. Sampling speed: noise -> pixels at batch 1,000.

Targets: requested-digit accuracy >= 0.99; FD <= 1.5x the reconstructions' FD and below the
pixel baseline; training <= 120 s on 2 cores; sampling >= 50,000 images/s on CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from zspace.evaluation.classifier import load_eval_classifier
from zspace.evaluation.sources import evaluate_source
from zspace.generation import load_gan
from zspace.models.gan import DEFAULT_PRESET, config_for_preset
from zspace.runs import RunDir
from zspace.training.gan import GANTrainingConfig, train_gan, training_seconds

TARGETS = {"accuracy": 0.99, "fd_ratio": 1.5, "train_seconds": 120, "images_per_second": 50_000}


def summarize(report: dict) -> dict:
    keys = ("requested_accuracy", "frechet_distance", "precision", "recall", "kl_from_uniform")
    return {k: report.get(k) for k in keys}


def train_conditional(
    out: Path, preset: str, ae: str | None, space: str, data_dir, epochs=None, budget=None
) -> float:
    """Train a conditional GAN into `out` (replacing it); returns its training seconds."""
    shutil.rmtree(out, ignore_errors=True)
    data_dim = 784 if space == "pixels" else RunDir(ae).read_config()["model"]["latent_dim"]
    overrides = {"generator_output": "tanh"} if space == "pixels" else {}
    config = config_for_preset(preset, data_dim, conditional=True, **overrides)
    defaults = GANTrainingConfig()
    training = GANTrainingConfig(
        space=space,
        epochs=epochs or (10_000 if budget else defaults.epochs),
        time_budget=budget,
        monitor_samples=0,  # the check costs time; the benchmark measures quality at the end
    )
    started = time.perf_counter()
    train_gan(out, config, training, ae_run=ae, data_dir=data_dir, device="cpu", progress=False)
    wall = time.perf_counter() - started
    return round(wall, 1)  # includes encoding the training set once


@torch.inference_mode()
def sampling_speed(run: Path, batch: int = 1000, repeats: int = 20) -> float:
    model = load_gan(run, "cpu")
    noise = model.noise(batch, seed=0)
    labels = torch.arange(batch) % 10 if model.conditional else None
    for _ in range(3):
        model.images(noise, labels)
    started = time.perf_counter()
    for _ in range(repeats):
        model.images(noise, labels)
    return round(batch * repeats / (time.perf_counter() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ae", required=True, help="trained autoencoder run")
    parser.add_argument("--work", default="runs/bench_gan", help="folder for the trained runs")
    parser.add_argument("--presets", nargs="+", default=["reference", DEFAULT_PRESET])
    parser.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    parser.add_argument("--pixel-factor", type=float, default=5.0, help="0 skips the baseline")
    parser.add_argument("--gmm-components", type=int, default=4)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None, help="evaluation classifier cache")
    parser.add_argument("--per-digit", type=int, default=1000)
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()

    work = Path(args.work)
    classifier = load_eval_classifier(data_dir=args.data_dir, cache_dir=args.cache_dir)
    evaluate = dict(
        per_digit=args.per_digit, data_dir=args.data_dir, classifier=classifier, progress=False
    )
    result: dict = {"threads": torch.get_num_threads(), "targets": TARGETS, "presets": {}}
    ceiling = None
    for preset in args.presets:
        run = work / f"cgan-{preset}"
        seconds = train_conditional(run, preset, args.ae, "latent", args.data_dir, args.epochs)
        report = evaluate_source(run, ceiling=ceiling is None, **evaluate)
        ceiling = ceiling or report["ceiling"]
        epochs = RunDir(run).read_metrics()[-1]["epoch"]
        result["presets"][preset] = {
            "train_seconds": seconds,
            "epochs": epochs,
            **summarize(report["samples"]),
        }
        print(json.dumps({preset: result["presets"][preset]}), flush=True)
    result["reconstructions"] = summarize(ceiling)

    from zspace.evaluation.gmm import fit_gmm_baseline

    gmm_run = work / "gmm"
    shutil.rmtree(gmm_run, ignore_errors=True)
    fit_gmm_baseline(args.ae, gmm_run, components=args.gmm_components, data_dir=args.data_dir)
    result["gmm"] = summarize(evaluate_source(gmm_run, ceiling=False, **evaluate)["samples"])

    default = result["presets"].get(DEFAULT_PRESET) or next(iter(result["presets"].values()))
    if args.pixel_factor > 0:
        budget = args.pixel_factor * default["train_seconds"]
        pixel_run = work / "pixel-cgan"
        train_conditional(pixel_run, DEFAULT_PRESET, None, "pixels", args.data_dir, budget=budget)
        result["pixel_gan"] = {
            "time_budget": round(budget, 1),
            "train_seconds": round(training_seconds(pixel_run), 1),
            **summarize(evaluate_source(pixel_run, ceiling=False, **evaluate)["samples"]),
        }

    default_run = work / f"cgan-{DEFAULT_PRESET}"
    if not default_run.exists():
        default_run = work / f"cgan-{args.presets[-1]}"
    result["images_per_second"] = sampling_speed(default_run)
    fd_ceiling = result["reconstructions"]["frechet_distance"]
    result["checks"] = {
        "accuracy": default["requested_accuracy"] >= TARGETS["accuracy"],
        "fd_vs_reconstructions": default["frechet_distance"] <= TARGETS["fd_ratio"] * fd_ceiling,
        "beats_gmm": default["frechet_distance"] < result["gmm"]["frechet_distance"],
        "train_seconds": default["train_seconds"] <= TARGETS["train_seconds"],
        "images_per_second": result["images_per_second"] >= TARGETS["images_per_second"],
    }
    if "pixel_gan" in result:
        result["checks"]["beats_pixel_gan"] = (
            default["frechet_distance"] < result["pixel_gan"]["frechet_distance"]
        )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
