"""Images per second from an exported sampler in ONNX Runtime against PyTorch.

    python benchmarks/bench_export.py [--run CGAN_RUN] [--batches 1 16 1000] [--threads 1 2]

Exports the run's sampler (`zspace export`) to a temporary folder, then times, for each thread
count and batch size, noise + labels -> images through
  - PyTorch: `GANSampler.images` (on CPU its fused fast path: the scaler folded into G, the
    decoder as sub-pixel convolutions), with torch.set_num_threads(threads);
  - ONNX Runtime: sampler.onnx on the CPU provider, intra_op_num_threads = threads.
Without --run it builds the study's default conditional GAN (preset wide-r1 over a 64-d conv
autoencoder) with random weights: speed does not depend on the weights' values. The two
engines take turns; each figure is the median of --rounds rounds of at least --seconds each.
Prints JSON (and writes it to --json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import zspace
from zspace.checkpoint import save_tensors
from zspace.export import export_run
from zspace.export.onnx_export import onnxruntime_session
from zspace.models.autoencoder import Autoencoder
from zspace.models.gan import CodeScaler, Generator, config_for_preset
from zspace.models.presets import DEFAULT_GAN_PRESET, ae_config_for_preset
from zspace.runs import LATENT_GAN, RunDir


def random_cgan_run(folder: Path) -> Path:
    """A latent cGAN run folder with the default architecture and random weights."""
    torch.manual_seed(0)
    autoencoder = Autoencoder(ae_config_for_preset("conv", latent_dim=64))
    config = config_for_preset(DEFAULT_GAN_PRESET, data_dim=64, conditional=True)
    run = RunDir(folder)
    run.write_config(
        LATENT_GAN,
        {
            "model": config.to_dict(),
            "training": {"ema_decay": 0.0},
            "conditional": True,
            "autoencoder": {"model": autoencoder.config.to_dict(), "source": "random"},
        },
    )
    save_tensors(run.file("generator.safetensors"), Generator(config).state_dict())
    save_tensors(run.file("scaler.safetensors"), CodeScaler(64).state_dict())
    save_tensors(run.file("autoencoder.safetensors"), autoencoder.state_dict())
    return run.path


def images_per_second(function, batch: int, seconds: float) -> float:
    function()  # warm up
    calls, started = 0, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="latent-gan or pixel-gan run (default: random)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 1000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=0.5, help="per round (default 0.5)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        run = Path(args.run) if args.run else random_cgan_run(Path(work) / "run")
        manifest = export_run(run, Path(work) / "export")
        sampler = zspace.load(run)
        results = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            session = onnxruntime_session(Path(work) / "export" / "sampler.onnx", threads)
            for batch in args.batches:
                noise = sampler.noise(batch, seed=0)
                labels = torch.arange(batch) % 10 if sampler.conditional else None
                feeds = {"noise": noise.numpy()}
                if labels is not None:
                    feeds["label"] = labels.numpy()
                engines = {
                    "pytorch": lambda n=noise, y=labels: sampler.images(n, y),
                    "onnxruntime": lambda f=feeds, s=session: s.run(None, f),
                }
                rounds = {name: [] for name in engines}
                for _ in range(args.rounds):
                    for name, function in engines.items():
                        rounds[name].append(images_per_second(function, batch, args.seconds))
                speeds = {name: statistics.median(values) for name, values in rounds.items()}
                results.append(
                    {
                        "threads": threads,
                        "batch": batch,
                        "pytorch_images_per_s": round(speeds["pytorch"]),
                        "onnxruntime_images_per_s": round(speeds["onnxruntime"]),
                        "onnxruntime_over_pytorch": round(
                            speeds["onnxruntime"] / speeds["pytorch"], 2
                        ),
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    report = {
        "run": str(args.run or f"random {DEFAULT_GAN_PRESET} cGAN over a 64-d conv autoencoder"),
        "exporter": manifest["graphs"]["sampler"]["exporter"],
        "export_max_abs_error": manifest["graphs"]["sampler"]["check"]["max_abs_error"],
        "versions": {**manifest["versions"], "python": platform.python_version()},
        "cpu": platform.processor() or platform.machine(),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
