"""Stages of the latent flow: conditional flow matching on the study's autoencoder codes, and
its distillation into a one-step generator (`zspace train-flow`, `zspace distill-flow`)."""

from __future__ import annotations

from pathlib import Path

from zspace.figures import save_grid, save_line_plot
from zspace.pipeline.cache import StageContext
from zspace.pipeline.stages.common import AUTOENCODER_STAGE, DISTILLED_FLOW_STAGE, FLOW_STAGE
from zspace.runs import RunDir
from zspace.training.flow import new_configs, train_flow
from zspace.training.flow_distill import DistillConfig, distill_flow
from zspace.training.loop import training_seconds

FLOW_EPOCH_CAP = 10_000  # a cap only: under a time budget the budget decides


def flow_stage(context: StageContext) -> dict:
    """Train the conditional latent flow on the autoencoder's codes, for `flow.time_budget`
    seconds (or `flow.epochs` epochs without a budget)."""
    config = context.config
    settings = config.flow
    budget = settings.time_budget or None  # 0: no budget
    epochs = settings.epochs
    if epochs is None and budget is not None:
        epochs = FLOW_EPOCH_CAP
    model, training = new_configs(
        config.autoencoder.latent_dim,
        conditional=True,
        preset=settings.preset,
        epochs=epochs,  # None: the trainer's own number
        seed=config.seed,
        limit=config.data.limit,
        dataset=config.data.dataset,
        time_budget=budget,
        threads=None,  # the study's torch threads
    )
    out = context.stage_dir(FLOW_STAGE)
    sampler = train_flow(
        out,
        model,
        training,
        ae_run=context.stage_dir(AUTOENCODER_STAGE),
        data_dir=context.data_dir,
        device=context.device,
        resume=RunDir(out).exists(),
        progress=context.progress,
    )
    metrics = RunDir(out).read_metrics()
    return {
        "preset": sampler.config.preset,
        "epochs": metrics[-1]["epoch"],
        "time_budget": budget,
        "training_seconds": round(training_seconds(out), 1),
        "sampling": sampler.sampling.to_dict(),
        "final": {"loss": metrics[-1].get("loss")},
        "figures": _flow_figures(context, out, sampler, metrics),
    }


def distilled_flow_stage(context: StageContext) -> dict:
    """Distil the flow stage's run into a one-step generator."""
    config = context.config
    teacher = context.stage_dir(FLOW_STAGE)
    out = context.stage_dir(DISTILLED_FLOW_STAGE)
    settings = DistillConfig(
        pairs=config.flow.distill_pairs, epochs=config.flow.distill_epochs, seed=config.seed
    )
    sampler = distill_flow(
        teacher,
        out,
        settings,
        device=context.device,
        resume=RunDir(out).exists(),
        progress=context.progress,
    )
    metrics = RunDir(out).read_metrics()
    distilled = RunDir(out).read_config()["distilled"]
    return {
        "teacher": FLOW_STAGE,
        "preset": sampler.config.preset,
        "pairs": settings.pairs,
        "epochs": metrics[-1]["epoch"],
        "training_seconds": round(training_seconds(out), 1),
        "pair_seconds": distilled["pair_seconds"],
        "teacher_seconds": round(training_seconds(teacher), 1),
        "sampling": sampler.sampling.to_dict(),
        "teacher_sampling": distilled["teacher_sampling"],
        "final": {"loss": metrics[-1].get("loss")},
        "figures": _flow_figures(context, out, sampler, metrics),
    }


def distilled_train_seconds(context: StageContext) -> float:
    """What the distilled generator costs from scratch: its teacher's training, drawing the
    teacher's pairs, and its own training."""
    out = context.stage_dir(DISTILLED_FLOW_STAGE)
    pair_seconds = RunDir(out).read_config()["distilled"]["pair_seconds"]
    return training_seconds(context.stage_dir(FLOW_STAGE)) + pair_seconds + training_seconds(out)


def _flow_figures(context: StageContext, out: Path, sampler, metrics: list[dict]) -> dict:
    """The loss curve, and a 10x10 grid of samples at the run's default sampler (row d shows
    digit d)."""
    images, _ = sampler.sample_with_labels(n=10, seed=context.config.seed)
    epochs = [m["epoch"] for m in metrics]
    curve = save_line_plot(
        {"loss": (epochs, [m["loss"] for m in metrics])},
        out / "loss_curve.png",
        xlabel="epoch",
        ylabel="flow-matching loss" if out.name == FLOW_STAGE else "one-step loss",
        title=out.name,
    )
    return {
        "loss_curve": context.relative(curve),
        "digit_grid": context.relative(save_grid(images, out / "digit_grid.png", ncols=10)),
    }
