"""Autoencoder presets side by side on MNIST under the same training budget.

For each preset (default: mlp, conv, transformer, transformer-nopos) this trains an autoencoder
for the same number of epochs on the same images (same batch size, learning-rate schedule and
seed) and reports:

- test reconstruction MSE per pixel (the full 10,000-image test set, never used for training),
- training seconds per epoch (each epoch's time as logged in metrics.jsonl, which includes the
  per-epoch test-MSE evaluation),
- encode+decode throughput in images/s at batch size 1000 (median of repeats, after a warm-up),
- few-shot accuracy of encoder+MLP, head `(sigmoid,64)->(softmax,10)`, 50 labels, mean and 95%
  CI over 20 draws, via the public API of `zspace.fewshot` (skipped with a note when that
  package is not importable).

    OMP_NUM_THREADS=2 python benchmarks/bench_presets.py --epochs 5 --out bench_out/presets
    OMP_NUM_THREADS=1 python benchmarks/bench_presets.py --epochs 1 --limit 10000 --out /tmp/p

Writes bench_presets.json and bench_presets.md into --out. The budget is equal epochs, not equal
wall-clock time: slower presets therefore spend more seconds on the same data.
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

from zspace.data import load_dataset
from zspace.models.autoencoder import config_for_preset, to_float_images
from zspace.training.autoencoder import AETrainingConfig, reconstruction_mse, train_autoencoder

DEFAULT_PRESETS = ["mlp", "conv", "transformer", "transformer-nopos"]
FEWSHOT_HEAD = "(sigmoid,64)->(softmax,10)"


@torch.no_grad()
def encode_decode_rate(model, test_images, batch_size: int = 1000, repeats: int = 5) -> float:
    """Images per second through encode then decode, one batch of `batch_size` at a time."""
    device = next(model.parameters()).device
    batch = to_float_images(test_images[:batch_size].to(device))
    model.eval()

    def once() -> float:
        started = time.perf_counter()
        model.decode(model.encode(batch))
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    once()  # warm-up: first-call allocations and kernel selection
    return len(batch) / statistics.median(once() for _ in range(repeats))


def fewshot_accuracy(run_dir: Path, args) -> dict | None:
    """encoder+MLP accuracy at `args.labels` labels over `args.draws` draws, or None when the
    few-shot package is not available."""
    try:
        from zspace.fewshot.study import ENCODER, StudyConfig, run_study
    except ImportError as error:
        print(f"  few-shot column skipped: zspace.fewshot not importable ({error})")
        return None
    config = StudyConfig(
        ae_run=str(run_dir),
        labels=[args.labels],
        draws=args.draws,
        seed=args.seed,
        heads=[FEWSHOT_HEAD],
        pipelines=[ENCODER],
        data_dir=args.data_dir,
        train_limit=args.limit,  # draw labels from the images the autoencoder saw
        device=args.device,
    )
    summary = run_study(config, out=None, progress=False, log=lambda line: None)
    (result,) = [r for r in summary["results"] if r["method"] == ENCODER]
    return {"mean": result["mean"], "ci95": result["ci95"], "draws": len(result["accuracies"])}


def bench_preset(preset: str, runs_dir: Path, test_images, args) -> dict:
    run_dir = runs_dir / preset
    training = AETrainingConfig(limit=args.limit, epochs=args.epochs, seed=args.seed)
    model = train_autoencoder(
        run_dir,
        config_for_preset(preset),
        training,
        data_dir=args.data_dir,
        device=args.device,
        progress=False,
    )
    epoch_seconds = [m["seconds"] for m in json_lines(run_dir / "metrics.jsonl")]
    row = {
        "preset": preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "encoder_parameters": sum(p.numel() for p in model.encoder.parameters()),
        "test_mse": reconstruction_mse(model, test_images),
        "seconds_per_epoch": statistics.mean(epoch_seconds),
        "encode_decode_images_per_s": encode_decode_rate(model, test_images),
        "fewshot": fewshot_accuracy(run_dir, args) if args.draws else None,
        "run": str(run_dir) if args.runs_dir else None,
    }
    return row


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fewshot_cell(result: dict | None) -> str:
    if result is None:
        return "TODO (zspace.fewshot not available)"
    low, high = result["ci95"]
    return f"{100 * result['mean']:.1f}% ± {100 * (high - low) / 2:.1f}"


def markdown_table(rows: list[dict], settings: dict) -> str:
    lines = [
        f"Same budget: {settings['epochs']} epochs on "
        f"{settings['limit'] or 'all 60,000'} MNIST training images, batch 128, seed "
        f"{settings['seed']}; {settings['threads']} CPU thread(s), device {settings['device']}.",
        "",
        "| preset | params (encoder) | test MSE | s/epoch | enc+dec img/s (batch 1000) "
        f"| encoder+MLP, {settings['labels']} labels (95% CI, {settings['draws']} draws) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row['parameters']:,} ({row['encoder_parameters']:,}) "
            f"| {row['test_mse']:.4f} | {row['seconds_per_epoch']:.1f} "
            f"| {row['encode_decode_images_per_s']:,.0f} | {fewshot_cell(row['fewshot'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=DEFAULT_PRESETS)
    parser.add_argument("--epochs", type=int, default=5, help="the same for every preset")
    parser.add_argument("--limit", type=int, default=None, help="first N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--draws", type=int, default=20, help="0 skips the few-shot column")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--runs-dir", default=None, help="keep the trained runs here")
    parser.add_argument("--out", default="bench_out/presets", help="folder for JSON + Markdown")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    test_images = load_dataset("mnist", data_dir=args.data_dir).test_images
    settings = {
        "epochs": args.epochs,
        "limit": args.limit,
        "seed": args.seed,
        "labels": args.labels,
        "draws": args.draws,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "budget": "equal epochs",
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = Path(args.runs_dir or scratch)
        for preset in args.presets:
            print(f"{preset}: training {args.epochs} epoch(s)...", flush=True)
            row = bench_preset(preset, runs_dir, test_images, args)
            print(
                f"  test MSE {row['test_mse']:.4f}, {row['seconds_per_epoch']:.1f} s/epoch, "
                f"{row['encode_decode_images_per_s']:,.0f} img/s, "
                f"few-shot {fewshot_cell(row['fewshot'])}",
                flush=True,
            )
            rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, settings)
    (out / "bench_presets.json").write_text(
        json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n"
    )
    (out / "bench_presets.md").write_text(table)
    print()
    print(table)
    print(f"wrote {out / 'bench_presets.json'} and {out / 'bench_presets.md'}")


if __name__ == "__main__":
    main()
