"""Class-to-class translation targets (issue 14): quality on six class pairs, training and
translation time; JSON.

    python benchmarks/bench_translation.py --ae AE --generator CGAN [--work runs/bench_translation]
        [--pairs-per-end 3] [--epochs 8] [--all-pairs-epochs 24] [--parts study speed]
        [--json out.json] [--smoke]

Parts:
  study   the translation study (zspace.pipeline.stages.translation.translation_study): every
          method on the `--pairs-per-end` most and least similar class pairs, per pair, and
          cycle and paired as one model for all 90 ordered pairs; every test digit of A
          translated and judged (accuracy, FD against real test B beside the test
          reconstructions', style correlations, cycle error); the hypotheses' verdicts.
  tradeoff  per-pair cycle translators with cycle-loss weights 1, 3, 10, 30 on the most and
          least similar pair: accuracy against cycle error and style kept.
  speed   seconds to translate 10,000 codes with each learned method (best of 5), and the
          training seconds of the per-pair and all-pairs runs (from their metrics).
`--generator` is a conditional latent GAN (or flow) trained on `--ae`: the paired method's pairs
and the restyle method's generator. Run it alone on the machine (`--threads`, default 2).

Targets: the best learned translator (regular, cycle or paired) reaches >= 97% accuracy with a
realism FD <= 2x the test reconstructions' of B and keeps style better than `shift` and
`regular`; each per-pair translator trains in <= 30 s; the all-pairs cycle model in <= 180 s;
10,000 codes translate in <= 1 s.

Measured (conv AE of 5 epochs, its default cGAN, 2 threads, alone on the 2-core machine; means
over the pairs 4-9, 7-9, 3-5, 0-7, 6-7, 0-1; README, "Translation"):

                          acc    FD/recon  FD/sampler  style  train s
    regular (pair)      0.986      5.96      1.98     0.567     36
    cycle (pair)        0.967     11.9       4.04     0.667     61
    paired (pair)       0.968     13.2       4.38     0.711     40
    restyle (pair)      0.993     14.2       4.58     0.632      -
    shift (pair)        0.310    257        87.7      0.757      -
    cycle (all)         0.786     73.2      25.7      0.744    137
    paired (all)        0.979     17.3       5.73     0.690    114

Met: accuracy (regular), the all-pairs cycle's 3 min, translation speed (0.024-0.035 s).
Not met: FD <= 2x the test reconstructions' (1.98x a perfect code sampler's), style above
shift's, per-pair training <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import torch

from zspace.data import load_dataset
from zspace.evaluation.classifier import load_eval_classifier
from zspace.loading import load
from zspace.pipeline.stages.translation import TranslationPlan, translation_study
from zspace.training.translator import TranslatorTrainingConfig

TARGETS = {
    "accuracy": 0.97,
    "fd_ratio": 2.0,
    "pair_train_seconds": 30,
    "all_pairs_cycle_train_seconds": 180,
    "translate_10k_seconds": 1.0,
}


def _mean(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else None


def study_part(args, dataset, classifier) -> dict:
    training = TranslatorTrainingConfig(
        epochs=1 if args.smoke else args.epochs,
        steps_per_epoch=20 if args.smoke else TranslatorTrainingConfig.steps_per_epoch,
        threads=args.threads,
    )
    plan = TranslationPlan(
        pairs_per_end=1 if args.smoke else args.pairs_per_end,
        training=training,
        all_pairs_epochs=1 if args.smoke else args.all_pairs_epochs,
        test_per_class=200 if args.smoke else None,
    )
    summary = translation_study(
        Path(args.work), Path(args.ae), Path(args.generator), dataset, classifier, plan
    )
    rows = summary["rows"]
    by_method = {}
    for row in rows:
        key = f"{row['method']} ({row['scope']})"
        by_method.setdefault(key, []).append(row)
    table = {
        key: {
            measure: _mean(r[measure] for r in chosen)
            for measure in (
                "accuracy",
                "fd_ratio",
                "fd_sampler_ratio",
                "style_kept",
                "cycle_error",
                "train_seconds",
            )
        }
        for key, chosen in by_method.items()
    }
    header = ["acc", "FD/recon", "FD/sampler", "style", "cycle", "train s"]
    print(f"{'method':18} " + " ".join(f"{h:>8}" for h in header))
    for key, means in table.items():
        cells = [
            f"{means['accuracy']:.4f}",
            f"{means['fd_ratio']:.2f}",
            f"{means['fd_sampler_ratio']:.2f}",
            f"{means['style_kept']:.3f}",
            "-" if means["cycle_error"] is None else f"{means['cycle_error']:.4f}",
            f"{means['train_seconds']:.1f}",
        ]
        print(f"{key:18} " + " ".join(f"{c:>8}" for c in cells))
    for hypothesis in summary["hypotheses"]:
        print(f"[{hypothesis['verdict']}] {hypothesis['statement']}\n    {hypothesis['evidence']}")
    summary["means"] = table
    summary["figures"] = json.loads(json.dumps(summary["figures"], default=str))
    return summary


def tradeoff_part(args, dataset, classifier, pairs: list[dict]) -> list[dict]:
    """The cycle hypothesis's trade-off, directly: per-pair cycle translators trained with
    several cycle-loss weights on the most and the least similar pair; accuracy (landing in
    B) against cycle error and style kept (keeping the input)."""
    from zspace.evaluation.translation import TranslationJudge
    from zspace.models.translator import TranslatorConfig
    from zspace.sampling.latent import load_autoencoder
    from zspace.training.translator import train_translator

    judge = TranslationJudge(
        classifier, load_autoencoder(args.ae), dataset.test_images, dataset.test_labels
    )
    results = []
    for pair in (pairs[0], pairs[-1]):
        source, target = pair["pair"]
        for weight in (1.0, 3.0, 10.0, 30.0):
            out = Path(args.work) / "tradeoff" / f"{source}-{target}-w{weight:g}"
            training = TranslatorTrainingConfig(
                epochs=1 if args.smoke else args.epochs,
                steps_per_epoch=20 if args.smoke else TranslatorTrainingConfig.steps_per_epoch,
                cycle_weight=weight,
                threads=args.threads,
            )
            if not (out / "config.json").is_file():
                config = TranslatorConfig(method="cycle", source=source, target=target)
                train_translator(out, config, training, ae_run=args.ae, progress=False)
            row = judge.judge(load(out), source, target)
            results.append(
                {
                    "pair": [source, target],
                    "group": pair["group"],
                    "cycle_weight": weight,
                    **{k: row[k] for k in ("accuracy", "fd_ratio", "style_kept", "cycle_error")},
                }
            )
            print(json.dumps(results[-1]))
    return results


def speed_part(args) -> dict:
    """Seconds to translate 10,000 codes, best of five, for every learned run of the study."""
    work = Path(args.work)
    codes = torch.randn(10_000, 64)
    result = {}
    for folder in sorted(work.glob("*/*/config.json")):
        run = folder.parent
        translator = load(run)
        if translator.method not in ("regular", "cycle", "paired"):
            continue
        target = translator.target if translator.target is not None else 9
        source = translator.default_source(target)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            translator.translate_codes(codes, target, source)
            times.append(time.perf_counter() - started)
        result[str(run.relative_to(work))] = min(times)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ae", required=True)
    parser.add_argument("--generator", required=True, help="conditional GAN or flow on --ae")
    parser.add_argument("--work", default="runs/bench_translation")
    parser.add_argument("--pairs-per-end", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=TranslatorTrainingConfig.epochs)
    parser.add_argument("--all-pairs-epochs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["study", "tradeoff", "speed"])
    parser.add_argument("--fresh", action="store_true", help="delete --work first")
    parser.add_argument("--smoke", action="store_true", help="tiny settings, end to end")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    dataset = load_dataset("mnist")
    classifier = load_eval_classifier("mnist")
    results: dict = {"targets": TARGETS}
    if "study" in args.parts:
        results["study"] = study_part(args, dataset, classifier)
    if "tradeoff" in args.parts:
        pairs = results["study"]["pairs"] if "study" in results else None
        if pairs is None:
            raise SystemExit("--parts tradeoff needs the study part (its class pairs)")
        results["tradeoff"] = tradeoff_part(args, dataset, classifier, pairs)
    if "speed" in args.parts:
        results["translate_10k_seconds"] = speed_part(args)
        print("translate 10,000 codes (s):", json.dumps(results["translate_10k_seconds"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
