"""`zspace train-gan`, `zspace fit-inverter`, `zspace sample`, `zspace interpolate`."""

from __future__ import annotations

import json
from pathlib import Path

from zspace.cli.common import (
    add_data_arguments,
    add_training_arguments,
    non_negative_int,
    positive_float,
    positive_int,
    with_settings,
)
from zspace.cli.flow_cmds import add_flow_sampling_arguments, flow_sampling
from zspace.data import load_dataset
from zspace.distributed import finish_process_group
from zspace.errors import ZspaceError
from zspace.files import output_file, save_json
from zspace.loading import load, load_sampler
from zspace.models.gan import GANConfig
from zspace.models.presets import DEFAULT_GAN_PRESET, GAN_PRESETS
from zspace.runs import AUTOENCODER, RunDir, run_dataset_name
from zspace.sampling.latent import load_autoencoder_config
from zspace.sampling.sampler import SAMPLE_SUFFIXES, save_samples
from zspace.training.gan import (
    SPACES,
    GANTrainingConfig,
    configs_for_preset,
    read_saved_configs,
    refit_inverter,
    train_gan,
)
from zspace.training.inverter import InverterTrainingConfig
from zspace.training.loop import training_seconds


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train-gan", help="train a (conditional) GAN on autoencoder codes, or on pixels"
    )
    add_data_arguments(train)
    add_training_arguments(train)
    train.add_argument("--ae", default=None, help="autoencoder run whose codes the GAN learns")
    train.add_argument(
        "--space",
        choices=SPACES,
        default=None,
        help="latent (default): GAN on AE codes; pixels: the pixel-space baseline (no --ae)",
    )
    train.add_argument("--conditional", action="store_true", help="condition G and D on digits")
    train.add_argument(
        "--preset",
        default=None,
        help=f"one of {sorted(GAN_PRESETS)} (default {DEFAULT_GAN_PRESET})",
    )
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument(
        "--time-budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop after the epoch that uses up this much training time (epochs become a cap)",
    )
    train.add_argument(
        "--monitor-samples",
        type=non_negative_int,
        default=None,
        help="samples classified per epoch for the mode-collapse check (default 1000; 0: off)",
    )
    train.add_argument(
        "--inverter-steps",
        type=non_negative_int,
        default=None,
        help="steps of fitting a noise inverter after training, for fast restyles and "
        "interpolation endpoints (default 500, about 7 s on 2 CPU cores; 0: none)",
    )
    train.set_defaults(run=run_train)

    fit = subparsers.add_parser(
        "fit-inverter",
        help="fit (or refit) a GAN run's noise inverter: fast restyles in zspace serve",
    )
    fit.add_argument("run_dir", metavar="RUN", help="latent-gan or pixel-gan run folder")
    add_data_arguments(fit, dataset=False)
    fit.add_argument("--steps", type=positive_int, default=None, help="fitting steps (500)")
    fit.add_argument("--batch-size", type=positive_int, default=None, help="rows per step (256)")
    fit.add_argument("--seed", type=non_negative_int, default=0)
    fit.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    fit.set_defaults(run=run_fit_inverter)

    sample = subparsers.add_parser(
        "sample", help="draw digits from a sampler run: GAN, flow or GMM (PNG grid or .npz)"
    )
    sample.add_argument(
        "run_dir", metavar="RUN", help="sampler run folder (GAN, latent flow, GMM baseline)"
    )
    sample.add_argument("--digit", type=int, default=None, help="0-9 (conditional runs only)")
    sample.add_argument("-n", type=int, default=16, help="images (per digit without --digit)")
    sample.add_argument("--seed", type=non_negative_int, default=0)
    sample.add_argument("--out", required=True, help="grid .png, or .npz (images, labels)")
    sample.add_argument("--device", default="cpu")
    add_flow_sampling_arguments(sample)
    sample.set_defaults(run=run_sample)

    interpolate = subparsers.add_parser(
        "interpolate", help="interpolation paths between real test digits (PNG or .npz)"
    )
    interpolate.add_argument(
        "run_dir", metavar="RUN", help="latent-gan, latent-flow (or autoencoder) run"
    )
    add_data_arguments(interpolate)
    interpolate.add_argument(
        "--pair", type=int, nargs=2, action="append", metavar=("I", "J"), help="test indices"
    )
    interpolate.add_argument(
        "--digits", type=int, nargs=2, action="append", metavar=("A", "B"), help="by digit"
    )
    interpolate.add_argument("--pairs", type=positive_int, default=4, help="random pairs (4)")
    interpolate.add_argument("--steps", type=positive_int, default=10, help="frames T (10)")
    interpolate.add_argument("--seed", type=non_negative_int, default=0)
    interpolate.add_argument("--out", required=True, help="figure .png, or paths .npz")
    interpolate.add_argument("--metrics", default=None, help="also write the measures as JSON")
    interpolate.add_argument("--no-classifier", action="store_true", help="skip class measures")
    interpolate.add_argument("--device", default="cpu")
    add_flow_sampling_arguments(interpolate, steps_flag=False)  # --steps counts frames here
    interpolate.set_defaults(run=run_interpolate)


def _resume_configs(args) -> tuple[GANConfig, GANTrainingConfig]:
    """The run's saved configs with the flags given on top; the library refuses a change."""
    _, model_config, training = read_saved_configs(args.out)
    model_config = with_settings(
        model_config, preset=args.preset, conditional=args.conditional or None
    )
    training = with_settings(
        training,
        space=args.space,
        dataset=args.dataset,
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        time_budget=args.time_budget,
        monitor_samples=args.monitor_samples,
        inverter_steps=args.inverter_steps,
        epochs=args.epochs,  # may extend a finished run
    )
    return model_config, training


def _new_configs(args) -> tuple[GANConfig, GANTrainingConfig]:
    space = args.space or "latent"
    if space == "latent" and args.ae is None:
        raise ZspaceError("a latent GAN needs --ae AE_RUN (or use --space pixels)")
    if space == "pixels" and args.ae is not None:
        raise ZspaceError("--ae is for latent GANs; drop it with --space pixels")
    preset = args.preset or DEFAULT_GAN_PRESET
    data_dim = 0 if space == "pixels" else load_autoencoder_config(args.ae).latent_dim
    defaults = GANTrainingConfig()
    model_config, training = configs_for_preset(
        preset,
        space,
        data_dim,
        args.conditional,
        dataset=args.dataset or defaults.dataset,
        limit=args.limit,
        # With a time budget the epochs are only a cap.
        epochs=args.epochs or (10_000 if args.time_budget else defaults.epochs),
        seed=defaults.seed if args.seed is None else args.seed,
        time_budget=args.time_budget,
    )
    training = with_settings(
        training,
        batch_size=args.batch_size,
        monitor_samples=args.monitor_samples,
        inverter_steps=args.inverter_steps,
    )
    return model_config, training


def run_train(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.evaluation.monitor import CollapseMonitor

    if args.resume and RunDir(args.out).exists():
        model_config, training = _resume_configs(args)
    else:
        if args.resume:
            print(f"zspace train-gan: no run in {args.out} yet, starting a new one")
        model_config, training = _new_configs(args)
    monitor = None
    if training.monitor_samples:
        monitor = CollapseMonitor.for_dataset(
            training.monitor_samples,
            training.seed,
            data_dir=args.data_dir,
            progress=not args.no_progress,
        )
    train_gan(
        args.out,
        model_config,
        training,
        ae_run=args.ae,
        data_dir=args.data_dir,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
        monitor=monitor,
    )
    if not finish_process_group():
        return 0  # under torchrun, rank 0 alone reports
    last = RunDir(args.out).read_metrics()[-1]
    mode = "conditional " if model_config.conditional else ""
    print(
        f"trained {mode}{training.space} GAN ({model_config.preset}) for {last['epoch']} epochs "
        f"in {training_seconds(args.out):.0f} s: D loss {last['d_loss']:.3f}, "
        f"G loss {last['g_loss']:.3f} -> {args.out}"
    )
    return 0


def run_fit_inverter(args) -> int:

    settings = with_settings(
        InverterTrainingConfig(), steps=args.steps, batch_size=args.batch_size, seed=args.seed
    )
    report = refit_inverter(
        args.run_dir, settings, args.data_dir, args.device, progress=not args.no_progress
    )
    print(json.dumps(report))
    return 0


def _output_kind(path: str) -> str:
    """The suffix of a .png or .npz `--out` that zspace may write (zspace.files.output_file)."""
    return output_file(path, SAMPLE_SUFFIXES).suffix.lower()


def run_sample(args) -> int:
    _output_kind(args.out)
    model = load_sampler(args.run_dir, args.device, sampling=flow_sampling(args))
    images, labels = model.sample_with_labels(digit=args.digit, n=args.n, seed=args.seed)
    # Without a digit a conditional run draws n of each digit: one row per digit.
    per_row = args.n if model.conditional and args.digit is None else min(args.n, 16)
    out = save_samples(images, labels, args.out, per_row)
    print(json.dumps({"images": len(images), "out": str(out)}))
    return 0


def run_interpolate(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.evaluation.classifier import load_eval_classifier
    from zspace.sampling.interpolation import (
        choose_pairs,
        interpolation_paths,
        save_paths_arrays,
        save_paths_figure,
        summarize_paths,
    )

    suffix = _output_kind(args.out)
    if args.metrics:
        output_file(args.metrics, (".json",), "--metrics")
    if args.steps < 2:
        raise ZspaceError(f"--steps must be at least 2, got {args.steps}")
    saved = RunDir(args.run_dir).read_config()
    if saved["kind"] == AUTOENCODER:
        model = load(args.run_dir, args.device)
    else:
        model = load_sampler(
            args.run_dir, args.device, action="interpolate", sampling=flow_sampling(args)
        )
        if not model.has_noise:
            print(f"zspace interpolate: a {model.kind} run has no noise space; AE paths only")
    dataset_name = args.dataset or run_dataset_name(saved)
    dataset = load_dataset(dataset_name, data_dir=args.data_dir)
    if dataset.test_labels is None:
        raise ZspaceError("interpolation between digits needs a labelled test set")
    pairs = choose_pairs(dataset.test_labels, args.pairs, args.seed, args.pair, args.digits)
    classifier = None
    if not args.no_classifier:
        classifier = load_eval_classifier(dataset_name, data_dir=args.data_dir, device="cpu")
    paths = interpolation_paths(
        model, dataset.test_images, dataset.test_labels, pairs, args.steps, classifier, args.seed
    )
    out = Path(args.out)
    if suffix == ".npz":
        save_paths_arrays(paths, out)
    else:
        save_paths_figure(paths, out)
    summary = summarize_paths(paths)
    if args.metrics:
        save_json(
            args.metrics,
            {
                "summary": summary,
                "paths": [
                    {"method": p.method, "pair": p.pair, "digits": p.digits, **p.measures}
                    for p in paths
                ],
            },
        )
    print(json.dumps({"paths": len(paths), "out": str(out), "summary": summary}))
    return 0
