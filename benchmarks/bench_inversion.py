"""How closely and how fast each way of inverting a GAN finds the noise for real digits.

    python benchmarks/bench_inversion.py --run CGAN_RUN [--digits 200] [--json out.json]

For `--digits` test images (their AE codes, with their true labels for a conditional run), one
at a time on one CPU thread as `zspace serve` restyles them:
  - Adam from 8 random starts, 100 steps (the restyle without an inverter) and 300 steps
    (the interpolation default without one);
  - the run's fitted inverter alone, and followed by 3, 5 (the default) and 8
    Levenberg-Marquardt steps.
Reports the mean squared error in the GAN's standardised space (lower is closer) and the
milliseconds per digit. The run needs an inverter (`zspace fit-inverter RUN`). The step
counts were chosen on training digits; the test digits here are only measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import zspace
from zspace.data import load_dataset
from zspace.errors import ZspaceError
from zspace.models.images import to_float_images
from zspace.sampling.inversion import invert_generator, refine_noise
from zspace.sampling.latent import encode_images


def timed(function, targets, labels) -> tuple[float, float]:
    """(mean error, ms per target) of function(target (1, D), label (1,)) over all rows."""
    errors, started = [], time.perf_counter()
    for row in range(len(targets)):
        label = None if labels is None else labels[row : row + 1]
        errors.append(float(function(targets[row : row + 1], label)))
    seconds = time.perf_counter() - started
    return sum(errors) / len(errors), seconds / len(targets) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="latent-gan run with an inverter")
    parser.add_argument("--digits", type=int, default=200)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    sampler = zspace.load(args.run)
    if getattr(sampler, "inverter", None) is None:
        raise SystemExit(f"{args.run} has no inverter; run: zspace fit-inverter {args.run}")
    if sampler.autoencoder is None:
        raise ZspaceError("this benchmark needs a latent GAN run")
    dataset = load_dataset("mnist", data_dir=args.data_dir)
    images = dataset.test_images[: args.digits]
    targets = encode_images(sampler.autoencoder, to_float_images(images))
    labels = dataset.test_labels[: args.digits] if sampler.conditional else None

    def adam(steps):
        return lambda target, label: invert_generator(sampler, target, label, steps=steps)[1][0]

    def inverter(iterations):
        def run(target, label):
            goal = sampler.scaler(target)
            with torch.no_grad():
                guess = sampler.inverter(goal, label)
            return refine_noise(sampler.generator, guess, label, goal, iterations)[1][0]

        return run

    methods = {
        "adam 8 starts x 100 steps": adam(100),
        "adam 8 starts x 300 steps": adam(300),
        **{f"inverter + {k} LM steps": inverter(k) for k in (0, 3, 5, 8)},
    }
    for function in methods.values():  # warm-up: first calls pay for lazy initialisation
        function(targets[:1], None if labels is None else labels[:1])
    rows = {}
    print(f"{args.digits} test digits, one at a time, 1 thread; error in standardised space")
    print(f"{'method':<28} {'error':>8} {'ms/digit':>9}")
    for name, function in methods.items():
        error, ms = timed(function, targets, labels)
        rows[name] = {"error": round(error, 4), "ms_per_digit": round(ms, 2)}
        print(f"{name:<28} {error:>8.4f} {ms:>9.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"digits": args.digits, "methods": rows}, indent=2))


if __name__ == "__main__":
    main()
