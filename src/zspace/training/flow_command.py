"""The zspace command that makes a latent-flow run, for its model card: `train-flow`, or
`distill-flow` for a distilled run."""

from __future__ import annotations

from dataclasses import asdict

from zspace.models.flow import FlowConfig
from zspace.runs import RunDir
from zspace.sampling.flow import FlowSampling
from zspace.training.cards import Command, setting_differences
from zspace.training.flow import FlowTrainingConfig, new_configs
from zspace.training.flow_distill import distill_command


def command_for_run(run: RunDir, config: dict) -> Command:
    """The `zspace train-flow` (or `distill-flow`) command that makes this run, for its card."""
    if config.get("distilled") is not None:
        return distill_command(run, config)
    model = FlowConfig.from_dict(config["model"])
    training = FlowTrainingConfig.from_dict(config["training"])
    defaults = FlowTrainingConfig()
    args = ["train-flow", "--ae", config["autoencoder"]["source"]]
    if model.conditional:
        args.append("--conditional")
    args += ["--preset", model.preset]
    if training.dataset != defaults.dataset:
        args += ["--dataset", training.dataset]
    if training.limit is not None:
        args += ["--limit", training.limit]
    args += [
        "--epochs",
        training.epochs,
        "--seed",
        training.seed,
        "--batch-size",
        training.batch_size,
    ]
    if training.time_budget is not None:
        args += ["--time-budget", repr(training.time_budget)]
    if training.threads is not None:
        args += ["--threads", training.threads]
    args += ["--out", run.path]
    rebuilt_model, rebuilt_training = new_configs(
        model.data_dim,
        model.conditional,
        model.preset,
        dataset=training.dataset,
        limit=training.limit,
        epochs=training.epochs,
        seed=training.seed,
        batch_size=training.batch_size,
        time_budget=training.time_budget,
        threads=training.threads,
    )
    differences = setting_differences(
        {
            "model": model.to_dict(),
            "training": asdict(training),
            "sampling": config.get("sampling"),
        },
        {
            "model": rebuilt_model.to_dict(),
            "training": asdict(rebuilt_training),
            "sampling": FlowSampling().to_dict(),
        },
    )
    return Command(args, differences)
