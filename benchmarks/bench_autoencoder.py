"""Autoencoder targets: test MSE within the training-time budget, encode+decode throughput,
peak memory of a default training run.

    python benchmarks/bench_autoencoder.py [--preset conv] [--epochs 5] [--json out.json]

Targets (this 2-core machine): test MSE per pixel <= 0.006 within 2 minutes of training,
encode+decode >= 20,000 images/s at batch 1,000 on CPU, peak memory <= 1.5 GB.
Run it alone on the machine: other busy processes distort every figure here.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from zspace.data import load_dataset
from zspace.models.autoencoder import config_for_preset, to_float_images
from zspace.sampling.latent import decode_codes, encode_images
from zspace.training.autoencoder import AETrainingConfig, train_autoencoder


def throughput(model, images_uint8: torch.Tensor, batch_size: int = 1000, repeats: int = 10):
    """Images per second through encode + decode at batch `batch_size`, uint8 in, float out:
    the plain modules, and zspace's bulk path (`encode_images` / `decode_codes`)."""
    batch = images_uint8[:batch_size]

    def modules():
        with torch.inference_mode():
            model.decode(model.encode(to_float_images(batch)))

    def library():
        decode_codes(model, encode_images(model, batch, batch_size), batch_size)

    rates = {}
    for name, work in (("modules", modules), ("library", library)):
        for _ in range(3):
            work()
        started = time.perf_counter()
        for _ in range(repeats):
            work()
        rates[name] = round(batch_size * repeats / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="conv")
    parser.add_argument("--epochs", type=int, default=AETrainingConfig().epochs)
    parser.add_argument("--loss", default=AETrainingConfig().loss)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="write the figures here as JSON")
    parser.add_argument("--keep", default=None, help="keep the trained run in this folder")
    args = parser.parse_args()

    dataset = load_dataset("mnist", data_dir=args.data_dir)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(args.keep) if args.keep else Path(folder) / "run"
        started = time.perf_counter()
        model = train_autoencoder(
            run_dir,
            config_for_preset(args.preset),
            AETrainingConfig(epochs=args.epochs, loss=args.loss),
            data_dir=args.data_dir,
            device="cpu",
        )
        wall = time.perf_counter() - started
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    figures = {
        "preset": args.preset,
        "epochs": args.epochs,
        "loss": args.loss,
        "threads": torch.get_num_threads(),
        "test_mse_per_pixel": metrics[-1]["test_mse"],
        "training_seconds": round(sum(m["seconds"] for m in metrics), 1),
        "wall_seconds_including_figures": round(wall, 1),
        "encode_decode_images_per_second": throughput(model, dataset.test_images),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "test_mse_per_epoch": [round(m["test_mse"], 5) for m in metrics],
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
