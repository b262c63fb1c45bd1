"""`zspace train-ae`, `zspace encode`, `zspace reconstruct`."""

from __future__ import annotations

import json

import torch

from zspace.cli.common import (
    add_data_arguments,
    add_training_arguments,
    latent_dim_int,
    learning_rate_float,
    non_negative_float,
    positive_float,
    positive_int,
    with_settings,
)
from zspace.data import load_dataset
from zspace.distributed import finish_process_group
from zspace.errors import ZspaceError
from zspace.figures import save_grid
from zspace.files import output_file, save_npz
from zspace.models.images import to_float_images
from zspace.models.presets import (
    DEFAULT_AE_PRESET,
    ae_config_for_preset,
    ae_training_defaults,
    is_transformer_preset,
    transformer_config,
)
from zspace.models.transformer import POSITIONAL_KINDS
from zspace.runs import AUTOENCODER, RunDir
from zspace.sampling.latent import encode_images, load_autoencoder
from zspace.training.autoencoder import (
    AETrainingConfig,
    read_saved_configs,
    train_autoencoder,
)


def register(subparsers) -> None:
    train = subparsers.add_parser("train-ae", help="train an autoencoder into a run folder")
    add_data_arguments(train)
    add_training_arguments(train)
    train.add_argument("--preset", default=None, help=f"architecture (default {DEFAULT_AE_PRESET})")
    train.add_argument("--latent-dim", type=latent_dim_int, default=None)
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument("--lr", type=learning_rate_float, default=None)
    train.add_argument("--loss", choices=["bce", "mse"], default=None)
    train.add_argument(
        "--contrastive-weight",
        type=non_negative_float,
        default=None,
        help="weight of a contrastive term between the codes of two augmented views "
        "(default 0; 0.1 for the conv-contrastive preset)",
    )
    train.add_argument(
        "--contrastive-temperature", type=positive_float, default=None, help="NT-Xent temperature"
    )
    train.add_argument(
        "--positional",
        choices=POSITIONAL_KINDS,
        default=None,
        help="transformer presets: patch position encoding (none = ablation)",
    )
    train.set_defaults(run=run_train)

    encode = subparsers.add_parser("encode", help="images -> latent codes (.npz)")
    encode.add_argument("run_dir", metavar="RUN", help="autoencoder run folder")
    encode.add_argument("--split", choices=["train", "test"], default="test")
    add_data_arguments(encode)
    encode.add_argument("--out", required=True, help="output .npz with codes and labels")
    encode.add_argument("--device", default="auto")
    encode.set_defaults(run=run_encode)

    reconstruct = subparsers.add_parser("reconstruct", help="grid PNG of originals/reconstructions")
    reconstruct.add_argument("run_dir", metavar="RUN", help="autoencoder run folder")
    add_data_arguments(reconstruct)
    reconstruct.add_argument("-n", type=positive_int, default=16, help="images (default 16)")
    reconstruct.add_argument("--start", type=int, default=0, help="first test image index")
    reconstruct.add_argument("--out", required=True, help="output PNG")
    reconstruct.add_argument("--device", default="auto")
    reconstruct.set_defaults(run=run_reconstruct)


def _resume_configs(args):
    """The run's saved configs with the flags given on top; the library refuses a change."""
    model_config, training = read_saved_configs(args.out)
    model_config = with_settings(model_config, preset=args.preset, latent_dim=args.latent_dim)
    if args.positional is not None:
        model_config.extra = {**model_config.extra, "positional": args.positional}
    training = with_settings(
        training,
        dataset=args.dataset,
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        loss=args.loss,
        contrastive_weight=args.contrastive_weight,
        contrastive_temperature=args.contrastive_temperature,
        epochs=args.epochs,  # may extend a finished run
    )
    return model_config, training


def run_train(args) -> int:
    if args.resume and RunDir(args.out).exists():
        model_config, training = _resume_configs(args)
    else:
        if args.resume:
            print(f"zspace train-ae: no run in {args.out} yet, starting a new one")
        preset, latent_dim = args.preset or DEFAULT_AE_PRESET, args.latent_dim or 64
        if args.positional is None:
            model_config = ae_config_for_preset(preset, latent_dim)
        elif is_transformer_preset(preset):
            model_config = transformer_config(preset, latent_dim, positional=args.positional)
        else:
            raise ZspaceError(f"--positional applies to transformer presets only, not {preset!r}")
        defaults = AETrainingConfig(**ae_training_defaults(preset))
        training = with_settings(
            defaults,
            dataset=args.dataset,
            limit=args.limit,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            loss=args.loss,
            seed=args.seed,
            contrastive_weight=args.contrastive_weight,
            contrastive_temperature=args.contrastive_temperature,
        )
    train_autoencoder(
        args.out,
        model_config,
        training,
        data_dir=args.data_dir,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
    )
    if not finish_process_group():
        return 0  # under torchrun, rank 0 alone reports
    metrics = RunDir(args.out).read_metrics()
    last = metrics[-1]
    print(
        f"trained {model_config.preset} autoencoder for {last['epoch']} epochs: "
        f"test MSE per pixel {last['test_mse']:.5f} -> {args.out}"
    )
    return 0


def _dataset_for_run(args, run_dir: str):

    saved = RunDir(run_dir).read_config(AUTOENCODER)
    return load_dataset(args.dataset or saved["training"]["dataset"], data_dir=args.data_dir)


def run_encode(args) -> int:
    out = output_file(args.out, (".npz",))
    model = load_autoencoder(args.run_dir, args.device)
    dataset = _dataset_for_run(args, args.run_dir)
    images = dataset.train_images if args.split == "train" else dataset.test_images
    labels = dataset.train_labels if args.split == "train" else dataset.test_labels
    codes = encode_images(model, images)
    arrays = {"codes": codes.numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    save_npz(out, arrays)
    print(f"encoded {len(codes)} {args.split} images to {codes.shape[1]}-d codes -> {out}")
    return 0


def run_reconstruct(args) -> int:
    output_file(args.out, (".png",))
    model = load_autoencoder(args.run_dir, args.device)
    dataset = _dataset_for_run(args, args.run_dir)
    if not 0 <= args.start < len(dataset.test_images):
        raise ZspaceError(f"--start must be in 0..{len(dataset.test_images) - 1}")
    originals = dataset.test_images[args.start : args.start + args.n]
    with torch.no_grad():
        device = next(model.parameters()).device
        reconstructions = model(to_float_images(originals.to(device))).cpu()
    pairs = torch.stack([to_float_images(originals), reconstructions]).squeeze(2)
    path = save_grid(pairs, args.out)
    print(json.dumps({"images": len(originals), "out": str(path)}))
    return 0
