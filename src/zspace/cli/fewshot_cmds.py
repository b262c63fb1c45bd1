"""`zspace fewshot`, `zspace train-classifier`, `zspace classify`."""

from __future__ import annotations

import argparse
import json
import time

from zspace.cli.common import (
    add_data_arguments,
    learning_rate_float,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from zspace.errors import ZspaceError
from zspace.files import output_file, save_npz


def label_list(text: str) -> list[int]:
    """ "50" or "10,20,50" (or "[10,20,50]") -> [50] / [10, 20, 50]."""
    try:
        values = [int(part) for part in text.strip().strip("[]").split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected label counts like 50 or 10,20,50, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"label counts must be whole numbers >= 1, got {text!r}")
    return values


def register(subparsers) -> None:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.fewshot.beyond import BEST_METHOD, BEYOND_METHODS
    from zspace.fewshot.curve import CURVE_HEAD, DEFAULT_LABELS, FIRST_DRAWS
    from zspace.fewshot.heads import NOTATION

    study = subparsers.add_parser(
        "fewshot", help="few-label study: pixels+MLP vs encoder+MLP, and methods beyond"
    )
    study.add_argument("--ae", required=True, metavar="RUN", help="autoencoder run folder")
    study.add_argument("--out", required=True, help="folder for table.md, fewshot.json/csv, plots")
    draw = study.add_mutually_exclusive_group()
    draw.add_argument(
        "--labels",
        type=label_list,
        default=None,
        help="labelled images drawn at random (default 50; a list like 10,20,50 sweeps)",
    )
    draw.add_argument(
        "--per-class", type=positive_int, default=None, help="balanced draws of K per class instead"
    )
    draw.add_argument(
        "--curve",
        type=label_list,
        nargs="?",
        const=list(DEFAULT_LABELS),
        default=None,
        metavar="COUNTS",
        help="learning curve over label counts (default "
        f"{','.join(map(str, DEFAULT_LABELS))}): the encoder with {CURVE_HEAD} (or --heads) and "
        "--methods, drawing more until every 95%% CI is narrow enough; counts that are multiples "
        "of 10 are drawn balanced per class",
    )
    study.add_argument(
        "--draws",
        type=positive_int,
        default=None,
        help=f"repeated draws (default 20; with --curve the first batch, default {FIRST_DRAWS})",
    )
    study.add_argument(
        "--target-halfwidth",
        type=positive_float,
        default=None,
        metavar="POINTS",
        help="--curve: draw until every 95%% CI half-width is at most this (default 0.5 points)",
    )
    study.add_argument(
        "--max-draws",
        type=positive_int,
        default=None,
        help="--curve: at most this many draws per label count (default 100)",
    )
    study.add_argument(
        "--validation",
        action="store_true",
        help="evaluate on training images 50,000-59,999 (the last 1/6 with --limit) and draw "
        "labels and unlabelled data from the rest; the test set is not used. Choose "
        "hyperparameters this way, then report on the test set",
    )
    study.add_argument("--seed", type=non_negative_int, default=0)
    study.add_argument(
        "--heads",
        nargs="+",
        default=None,
        metavar="SPEC",
        help=f"head specs (default: the 5 reference heads); {NOTATION}",
    )
    study.add_argument(
        "--finetune", action="store_true", help="also fine-tune the encoder with each head"
    )
    study.add_argument(
        "--methods",
        default="",
        help=f"comma-separated methods using the unlabelled images: {', '.join(BEYOND_METHODS)}, or 'all'",
    )
    study.add_argument("--no-heads", action="store_true", help="skip the pixels/encoder head table")
    study.add_argument("--steps", type=positive_int, default=None, help="head training steps")
    study.add_argument("--lr", type=learning_rate_float, default=None, help="head learning rate")
    study.add_argument("--weight-decay", type=non_negative_float, default=None)
    study.add_argument(
        "--test-limit",
        type=positive_int,
        default=None,
        help="use only the first N test (or validation) images",
    )
    study.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N training images"
    )
    study.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    add_data_arguments(study)
    study.set_defaults(run=run_fewshot)

    train = subparsers.add_parser(
        "train-classifier",
        help=f"train and save a CNN from K labels per class, self-trained on {BEST_METHOD} pseudo-labels",
    )
    train.add_argument("--out", required=True, help="classifier run folder to create")
    train.add_argument(
        "--labels-from",
        choices=["poisson-hog", "cluster-then-label"],
        default=None,
        help="the method that labels every training image for the CNN (default: "
        "cluster-then-label with --per-class 1, poisson-hog otherwise)",
    )
    train.add_argument(
        "--per-class", type=positive_int, default=5, help="labels per class (default 5)"
    )
    train.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the labelled draw and training"
    )
    train.add_argument("--epochs", type=positive_int, default=None, help="CNN epochs (default 4)")
    train.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N training images"
    )
    train.add_argument("--device", default="auto")
    add_data_arguments(train)
    train.set_defaults(run=run_train_classifier)

    classify = subparsers.add_parser("classify", help="predict the digit in a PNG/JPEG or .npz")
    classify.add_argument(
        "image", metavar="IMAGE", help="PNG/JPEG of any size, or .npz with images"
    )
    classify.add_argument("--model", required=True, metavar="RUN", help="classifier run folder")
    classify.add_argument("--json", action="store_true", help="print JSON instead of text")
    classify.add_argument(
        "--out",
        default=None,
        metavar="PREDICTIONS.npz",
        help="batch mode for an .npz IMAGE: write `predictions` (N,), `probabilities` (N, 10) "
        "(and the file's `labels`) here, and print the count and, with labels, the accuracy",
    )
    classify.add_argument("--device", default="cpu")
    classify.set_defaults(run=run_classify)


def run_fewshot(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.fewshot.batched import HeadTraining
    from zspace.fewshot.beyond import BEYOND_METHODS
    from zspace.fewshot.curve import CURVE_HEAD, FIRST_DRAWS, CurveConfig, run_curve
    from zspace.fewshot.heads import DEFAULT_HEADS
    from zspace.fewshot.study import ENCODER, PIXELS, StudyConfig, run_study

    curve = args.curve is not None
    if not curve and (args.target_halfwidth is not None or args.max_draws is not None):
        raise ZspaceError("--target-halfwidth and --max-draws go with --curve")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if methods == ["all"]:
        methods = list(BEYOND_METHODS)
    defaults = HeadTraining()
    training = HeadTraining(
        steps=args.steps or defaults.steps,
        learning_rate=args.lr or defaults.learning_rate,
        weight_decay=defaults.weight_decay if args.weight_decay is None else args.weight_decay,
    )
    pipelines = [ENCODER] if curve else [PIXELS, ENCODER]
    config = StudyConfig(
        ae_run=args.ae,
        labels=args.labels or [50],
        per_class=args.per_class,
        draws=args.draws or (FIRST_DRAWS if curve else 20),
        seed=args.seed,
        heads=args.heads or ([CURVE_HEAD] if curve else list(DEFAULT_HEADS)),
        pipelines=[] if args.no_heads else pipelines,
        finetune=args.finetune and not args.no_heads,
        methods=methods,
        head_training=training,
        dataset=args.dataset,
        data_dir=args.data_dir,
        train_limit=args.limit,
        test_limit=args.test_limit,
        validation=args.validation,
        device=args.device,
    )
    if curve:
        curve_config = CurveConfig(config, labels=args.curve)
        if args.target_halfwidth is not None:
            curve_config.target_halfwidth_points = args.target_halfwidth
        if args.max_draws is not None:
            curve_config.max_draws = args.max_draws
        summary = run_curve(curve_config, out=args.out)
        written = "table.md, fewshot.json, fewshot.csv and learning_curve.png"
    else:
        summary = run_study(config, out=args.out)
        written = "table.md, fewshot.json, fewshot.csv and plots"
    print(f"wrote {written} to {args.out} ({summary['timings']['total']:.1f} s)")
    return 0


def run_train_classifier(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.fewshot.selftrain import (
        CLASSIFIER_EPOCHS,
        SelfTrainingConfig,
        train_and_save_classifier,
    )

    config = SelfTrainingConfig(epochs=args.epochs or CLASSIFIER_EPOCHS)
    report = train_and_save_classifier(
        args.out,
        labels_from=args.labels_from,
        per_class=args.per_class,
        seed=args.seed,
        config=config,
        dataset=args.dataset or "mnist",
        data_dir=args.data_dir,
        limit=args.limit,
        device=args.device,
    )
    print(
        f"trained a classifier from {report['labels']} labels: test accuracy "
        f"{report['test_accuracy']:.4f} -> {args.out}"
    )
    return 0


def run_classify(args) -> int:
    if args.out is not None:
        return _classify_batch(args)
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.fewshot.classify import load_classifier, load_images_for_classification

    # The image first: a bad file is refused before the model is loaded.
    images, inverted = load_images_for_classification(args.image)
    classifier = load_classifier(args.model, args.device)
    labels, probs = classifier.classify(images)
    records = [
        {
            "digit": int(label),
            "probabilities": [round(float(p), 4) for p in row],
            "inverted": flag,
        }
        for label, row, flag in zip(labels, probs, inverted)
    ]
    if args.json:
        print(json.dumps(records[0] if len(records) == 1 else records))
        return 0
    if inverted[0] and len(records) == 1:
        print(
            "the image looks like dark ink on light paper: inverted it to light on dark (as MNIST)"
        )
    for index, record in enumerate(records):
        prefix = f"image {index}: " if len(records) > 1 else ""
        listing = " ".join(f"{d}:{p:.3f}" for d, p in enumerate(record["probabilities"]))
        print(
            f"{prefix}digit {record['digit']} (p={max(record['probabilities']):.3f})  [{listing}]"
        )
    if not records:
        raise ZspaceError(f"{args.image} holds no images")
    return 0


def _classify_batch(args) -> int:
    """`zspace classify RUN images.npz --out predictions.npz`: a whole file, one summary."""
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.fewshot.classify import classify_batch, load_classifier, read_labelled_npz

    out = output_file(args.out, (".npz",))  # checked before any work, like the input
    images, labels = read_labelled_npz(args.image)
    classifier = load_classifier(args.model, args.device)
    started = time.perf_counter()
    result = classify_batch(classifier, images, labels)
    seconds = time.perf_counter() - started
    save_npz(out, result.arrays())
    summary = {"images": len(images), "accuracy": result.accuracy, "out": str(out)}
    summary["seconds"] = round(seconds, 3)
    if args.json:
        print(json.dumps(summary))
    else:
        accuracy = "" if result.accuracy is None else f", accuracy {result.accuracy:.4f}"
        print(f"classified {len(images)} images in {seconds:.2f} s{accuracy} -> {out}")
    return 0
