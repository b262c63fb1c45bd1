"""`zspace train-translator` and `zspace translate`: class-to-class translators of AE codes."""

from __future__ import annotations

import argparse
import json

from zspace.cli.common import (
    add_data_arguments,
    add_training_arguments,
    positive_int,
    whole_number_in,
    with_settings,
)
from zspace.errors import ZspaceError

METHOD_CHOICES = ("regular", "cycle", "paired", "restyle", "shift")  # models.translator.METHODS
digit = whole_number_in(0, 9)


def target_digit(text: str) -> int | None:
    """--to: a digit 0-9, or "all" (None) for one model over every ordered pair."""
    if text == "all":
        return None
    try:
        return digit(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a digit 0-9 or 'all', got {text!r}") from None


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train-translator", help="train a class-to-class translator of AE codes (e.g. 4 -> 9)"
    )
    add_data_arguments(train)
    add_training_arguments(train)
    train.add_argument("--ae", default=None, help="autoencoder run whose codes are translated")
    train.add_argument(
        "--method", choices=METHOD_CHOICES, default=None, help="default cycle (on resume: saved)"
    )
    train.add_argument("--from", dest="source", type=digit, default=None, help="input digit")
    train.add_argument(
        "--to",
        dest="target",
        type=target_digit,
        default=argparse.SUPPRESS,
        help="output digit, or 'all' for one model over every ordered pair",
    )
    train.add_argument(
        "--generator",
        default=None,
        help="conditional latent GAN or flow run: the paired method's pairs, the restyle "
        "method's generator",
    )
    train.add_argument("--steps-per-epoch", type=positive_int, default=None)
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument("--pairs", type=positive_int, default=None, help="generated pairs (paired)")
    train.add_argument("--threads", type=whole_number_in(1, 1024), default=None)
    train.set_defaults(run=run_train_translator)

    translate = subparsers.add_parser(
        "translate", help="turn a digit image (or an .npz of them) into another digit"
    )
    translate.add_argument("run_dir", metavar="RUN", help="translator run folder")
    translate.add_argument(
        "image", metavar="IMAGE", help="PNG/JPEG of a digit, or .npz with `images` (N, 28, 28)"
    )
    translate.add_argument("--to", dest="target", type=digit, required=True, help="output digit")
    translate.add_argument(
        "--from", dest="source", type=digit, default=None, help="the input's digit (when needed)"
    )
    translate.add_argument("--out", required=True, help="out.png (a grid) or out.npz")
    translate.add_argument("--scale", type=whole_number_in(1, 16), default=4, help="PNG zoom")
    translate.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    translate.add_argument("--json", action="store_true", help="print a JSON summary")
    translate.set_defaults(run=run_translate)


def run_train_translator(args) -> int:
    from zspace.models.translator import TranslatorConfig
    from zspace.training.translator import (
        TRAINING_FLAGS,
        TranslatorTrainingConfig,
        read_saved_training,
        saved_method,
        train_translator,
    )

    config = None
    if not args.resume or hasattr(args, "target"):
        if not hasattr(args, "target"):
            raise ZspaceError("give --to (a digit, or 'all')")
        method = args.method or (saved_method(args.out) if args.resume else None) or "cycle"
        config = TranslatorConfig(method=method, source=args.source, target=args.target)
    elif args.source is not None:
        raise ZspaceError("--from without --to; give both, or neither to resume")
    training = None
    settings = {name: getattr(args, name) for name in TRAINING_FLAGS}
    if any(value is not None for value in settings.values()) or not args.resume:
        base = read_saved_training(args.out) if args.resume else TranslatorTrainingConfig()
        training = with_settings(base, **settings)
    translator = train_translator(
        args.out,
        config,
        training,
        ae_run=args.ae,
        generator_run=args.generator,
        data_dir=args.data_dir,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
    )
    print(f"trained {translator!r} -> {args.out}")
    return 0


def run_translate(args) -> int:
    import numpy as np

    from zspace.fewshot.classify import load_images_for_classification
    from zspace.figures import save_grid
    from zspace.files import output_file, save_npz
    from zspace.sampling.translator import load_translator

    out = output_file(args.out, (".png", ".npz"))  # checked before any work
    images, inverted = load_images_for_classification(args.image)
    if len(images) == 0:
        raise ZspaceError(f"{args.image} holds no images")
    translator = load_translator(args.run_dir, args.device)  # one line for any other kind
    translated = translator.translate_images(images, args.target, args.source)
    pixels = (translated.squeeze(1).clamp(0, 1) * 255).round().byte().numpy()
    if out.suffix.lower() == ".npz":
        save_npz(out, {"images": pixels, "targets": np.full(len(pixels), args.target)})
    else:
        save_grid(translated, out, ncols=min(len(pixels), 10), scale=args.scale)
    summary = {"images": len(pixels), "to": args.target, "method": translator.method}
    summary.update(out=str(out), inverted=any(inverted))
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"translated {len(pixels)} image(s) into {args.target} ({translator.method}) -> {out}"
        )
    return 0
