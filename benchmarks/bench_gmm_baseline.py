"""The class-conditional Gaussian-mixture baseline on an autoencoder run, evaluated like a GAN.

    python benchmarks/bench_gmm_baseline.py --ae AE_RUN [--components 4] [-n 1000] [--json out.json]

Fits a mixture of `--components` full-covariance Gaussians to each digit's training codes,
draws `-n` samples per digit (10,000 by default), decodes them and reports the share judged as
the requested digit, the Frechet distance against the test set, precision and recall, beside
the same figures for the autoencoder's test reconstructions (the decoder's ceiling). The latent
GAN presets must beat this baseline. Uses the cached evaluation classifier (trains it once).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from zspace.evaluation.gmm import fit_gmm_baseline
from zspace.evaluation.sources import evaluate_source

KEYS = (
    "requested_accuracy",
    "frechet_distance",
    "precision",
    "recall",
    "kl_from_uniform",
    "diversity",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ae", required=True, help="autoencoder run folder (read only)")
    parser.add_argument("--components", type=int, nargs="+", default=[4])
    parser.add_argument("-n", type=int, default=1000, help="samples per digit (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="write the figures here as JSON")
    args = parser.parse_args()

    results = {"ae_run": args.ae, "per_digit": args.n, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as folder:
        for components in args.components:
            run = Path(folder) / f"gmm-{components}"
            started = time.perf_counter()
            fit_gmm_baseline(
                args.ae, run, components=components, seed=args.seed, data_dir=args.data_dir
            )
            fit_seconds = time.perf_counter() - started
            started = time.perf_counter()
            report = evaluate_source(run, per_digit=args.n, seed=args.seed, data_dir=args.data_dir)
            results[f"gmm_{components}"] = {
                "fit_seconds": round(fit_seconds, 2),
                "evaluate_seconds": round(time.perf_counter() - started, 2),
                **{key: report["samples"][key] for key in KEYS},
                "per_digit_accuracy": report["samples"]["per_digit_accuracy"],
            }
            results["ceiling"] = {key: report["ceiling"][key] for key in KEYS}
            results["classifier_test_accuracy"] = report["classifier"]["test_accuracy"]
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
