"""Autoencoder presets side by side on MNIST under the same training budget.

For each preset (default: mlp, conv, transformer, transformer-nopos) this trains an autoencoder
for the same number of epochs on the same images (same batch size, learning-rate schedule and
seed) and reports:

- test reconstruction MSE per pixel (the full 10,000-image test set, never used for training),
- training seconds per epoch (each epoch's time as logged in metrics.jsonl, which includes the
  per-epoch test-MSE evaluation),
- encode+decode throughput in images/s at batch size 1000 (median of repeats, after a warm-up),
- few-shot accuracy of encoder+MLP, head `(sigmoid,64)->(softmax,10)`, 50 labels, mean and 95%
  CI over 20 draws (`--draws 0` skips it), via the public API of `zspace.fewshot`.

    OMP_NUM_THREADS=2 python benchmarks/bench_presets.py --epochs 5 --out bench_out/presets
    OMP_NUM_THREADS=1 python benchmarks/bench_presets.py --epochs 1 --limit 10000 --out /tmp/p

Writes bench_presets.json and bench_presets.md into --out. The budget is equal epochs, not equal
wall-clock time: slower presets therefore spend more seconds on the same data.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from zspace.pipeline.presets_comparison import ComparisonSettings, compare_presets, markdown_table


def main() -> None:
    defaults = ComparisonSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=defaults.presets)
    parser.add_argument("--epochs", type=int, default=5, help="the same for every preset")
    parser.add_argument("--limit", type=int, default=defaults.limit, help="first N training images")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--labels", type=int, default=defaults.labels)
    parser.add_argument(
        "--draws", type=int, default=defaults.draws, help="0 skips the few-shot column"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--runs-dir", default=None, help="keep the trained runs here")
    parser.add_argument("--out", default="bench_out/presets", help="folder for JSON + Markdown")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = ComparisonSettings(
        presets=args.presets,
        epochs=args.epochs,
        limit=args.limit,
        seed=args.seed,
        labels=args.labels,
        draws=args.draws,
    )
    with tempfile.TemporaryDirectory() as scratch:
        rows = compare_presets(
            settings, args.runs_dir or scratch, args.data_dir, args.device, progress=False
        )
    described = {
        **vars(settings),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "budget": "equal epochs",
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    table = (
        f"Same budget: {settings.epochs} epochs on {settings.limit or 'all 60,000'} MNIST "
        f"training images, batch {settings.batch_size}, seed {settings.seed}; "
        f"{described['threads']} CPU thread(s), device {args.device}. Few-shot: "
        f"`{settings.head}`, {settings.labels} labels, {settings.draws} draws.\n\n"
        + markdown_table(rows)
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_presets.json").write_text(
        json.dumps({"settings": described, "rows": rows}, indent=2) + "\n"
    )
    (out / "bench_presets.md").write_text(table)
    print()
    print(table)
    print(f"wrote {out / 'bench_presets.json'} and {out / 'bench_presets.md'}")


if __name__ == "__main__":
    main()
