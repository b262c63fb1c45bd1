"""`zspace train-flow`, `zspace distill-flow`, `zspace likelihood`, and the flow sampling
flags that `sample`, `evaluate` and `interpolate` share."""

from __future__ import annotations

import argparse
import json

from zspace.cli.common import (
    add_data_arguments,
    add_training_arguments,
    non_negative_float,
    positive_float,
    positive_int,
    whole_number_in,
    with_settings,
)
from zspace.distributed import finish_process_group
from zspace.errors import ZspaceError
from zspace.runs import RunDir

SOLVER_CHOICES = ("euler", "midpoint", "heun2")  # zspace.sampling.ode.SOLVERS
# Measured on the 2-core machine (benchmarks/bench_flow.py --parts threads): the default field
# trains at 25 steps/s with 2 threads and 16 with 1; two trainers side by side should take
# --threads 1 each (two processes of 2 threads slow each other far more than two-fold).
DEFAULT_TRAIN_THREADS = 2


def add_flow_sampling_arguments(parser: argparse.ArgumentParser, steps_flag: bool = True) -> None:
    """--solver, --solver-steps (also --steps where free) and --guidance: a latent-flow run's
    sampler settings; the run's own defaults when not given."""
    group = parser.add_argument_group("latent-flow sampling (default: the run's own)")
    group.add_argument("--solver", choices=SOLVER_CHOICES, default=None, help="ODE solver")
    names = ["--solver-steps", "--steps"] if steps_flag else ["--solver-steps"]
    group.add_argument(
        *names, dest="solver_steps", type=int, default=None, metavar="N", help="ODE steps"
    )
    group.add_argument(
        "--guidance",
        type=non_negative_float,
        default=None,
        help="classifier-free guidance scale (1: none; conditional flows)",
    )


def flow_sampling(args) -> dict:
    """The sampling flags given, for `zspace.loading.load_sampler(sampling=...)`."""
    return {"solver": args.solver, "steps": args.solver_steps, "guidance": args.guidance}


def register(subparsers) -> None:
    from zspace.models.flow import DEFAULT_FLOW_PRESET, FLOW_PRESETS

    train = subparsers.add_parser(
        "train-flow", help="train a latent flow (flow matching over autoencoder codes)"
    )
    add_data_arguments(train)
    add_training_arguments(train)
    train.add_argument("--ae", default=None, help="autoencoder run whose codes the flow learns")
    train.add_argument("--conditional", action="store_true", help="condition on digits")
    train.add_argument(
        "--preset",
        default=None,
        help=f"one of {sorted(FLOW_PRESETS)} (default {DEFAULT_FLOW_PRESET})",
    )
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument("--lr", type=positive_float, default=None, help="peak learning rate")
    train.add_argument(
        "--time-budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop after the epoch that uses up this much training time",
    )
    train.add_argument(
        "--threads",
        type=whole_number_in(1, 1024),
        default=None,
        help=f"torch threads while training (default {DEFAULT_TRAIN_THREADS}; measured fastest here)",
    )
    train.set_defaults(run=run_train)

    distill = subparsers.add_parser(
        "distill-flow", help="distil a latent flow into a one-step generator"
    )
    distill.add_argument("run_dir", metavar="RUN", help="latent-flow run (the teacher)")
    distill.add_argument("--out", required=True, help="run folder to create (or resume)")
    distill.add_argument("--resume", action="store_true", help="continue the run in --out")
    distill.add_argument("--pairs", type=positive_int, default=None, help="teacher pairs (60000)")
    distill.add_argument("--epochs", type=positive_int, default=None, help="passes (15)")
    distill.add_argument("--seed", type=whole_number_in(0), default=None)
    distill.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    distill.add_argument("--no-progress", action="store_true", help="hide progress bars")
    distill.set_defaults(run=run_distill)

    likelihood = subparsers.add_parser(
        "likelihood",
        help="log-likelihood of training and test codes under a latent flow (memorisation check)",
    )
    likelihood.add_argument("run_dir", metavar="RUN", help="latent-flow run")
    add_data_arguments(likelihood, dataset=False)
    likelihood.add_argument("-n", type=positive_int, default=1000, help="codes per split (1000)")
    likelihood.add_argument(
        "--steps", type=whole_number_in(1, 1000), default=32, help="ODE steps (32)"
    )
    likelihood.add_argument("--exact", action="store_true", help="exact divergence (slower)")
    likelihood.add_argument("--seed", type=whole_number_in(0), default=0)
    likelihood.add_argument("--device", default="cpu")
    likelihood.set_defaults(run=run_likelihood)


def run_train(args) -> int:
    from zspace.sampling.latent import load_autoencoder_config
    from zspace.training.flow import FlowTrainingConfig, new_configs, read_saved_configs, train_flow
    from zspace.training.loop import training_seconds

    resuming = args.resume and RunDir(args.out).exists()
    if args.resume and not resuming:
        print(f"zspace train-flow: no run in {args.out} yet, starting a new one")
    training_settings = {
        "dataset": args.dataset,
        "limit": args.limit,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "time_budget": args.time_budget,
        "threads": args.threads,
    }
    if resuming:
        model, training = read_saved_configs(args.out)
        model = with_settings(model, preset=args.preset, conditional=args.conditional or None)
        training = with_settings(training, epochs=args.epochs, **training_settings)
    else:
        if args.ae is None:
            raise ZspaceError("a latent flow needs --ae AE_RUN (a trained autoencoder run folder)")
        latent_dim = load_autoencoder_config(args.ae).latent_dim
        defaults = FlowTrainingConfig()
        epochs = args.epochs or (10_000 if args.time_budget else defaults.epochs)
        training_settings["threads"] = args.threads or DEFAULT_TRAIN_THREADS
        model, training = new_configs(
            latent_dim, args.conditional, args.preset, epochs=epochs, **training_settings
        )
    train_flow(
        args.out,
        model,
        training,
        ae_run=args.ae,
        data_dir=args.data_dir,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
    )
    if not finish_process_group():
        return 0  # under torchrun, rank 0 alone reports
    last = RunDir(args.out).read_metrics()[-1]
    mode = "conditional " if model.conditional else ""
    print(
        f"trained {mode}latent flow ({model.preset}) for {last['epoch']} epochs in "
        f"{training_seconds(args.out):.0f} s: loss {last['loss']:.4f} -> {args.out}"
    )
    return 0


def run_distill(args) -> int:
    from zspace.training.flow_distill import DistillConfig, distill_flow
    from zspace.training.loop import training_seconds

    settings = None
    given = {"pairs": args.pairs, "epochs": args.epochs, "seed": args.seed}
    if any(value is not None for value in given.values()):
        settings = with_settings(DistillConfig(), **given)
    distill_flow(
        args.run_dir,
        args.out,
        settings,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
    )
    last = RunDir(args.out).read_metrics()[-1]
    print(
        f"distilled {args.run_dir} into a one-step flow in {training_seconds(args.out):.0f} s "
        f"({last['epoch']} epochs, loss {last['loss']:.4f}) -> {args.out}"
    )
    return 0


def run_likelihood(args) -> int:
    from zspace.sampling.flow_likelihood import split_likelihoods

    report = split_likelihoods(
        args.run_dir, args.n, args.steps, args.exact, args.seed, args.data_dir, args.device
    )
    print(json.dumps(report))
    return 0
