"""Stages that generate digits: latent GANs on the autoencoder's codes, the Gaussian-mixture
baseline, the pixel-space GAN, and interpolations in the AE and GAN spaces."""

from __future__ import annotations

import shutil
from pathlib import Path

from zspace.evaluation.gmm import fit_gmm_baseline
from zspace.evaluation.monitor import CollapseMonitor
from zspace.figures import save_grid, save_line_plot
from zspace.loading import load
from zspace.pipeline.cache import StageContext
from zspace.pipeline.config import DEFAULT_GAN, StudyConfig
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    GMM_STAGE,
    INTERPOLATION_STAGE,
    PIXEL_GAN_STAGE,
    eval_classifier,
    gan_preset_name,
    gan_stage_name,
    study_dataset,
)
from zspace.runs import RunDir
from zspace.sampling.interpolation import (
    choose_pairs,
    interpolation_paths,
    save_paths_arrays,
    save_paths_figure,
    summarize_paths,
)
from zspace.training.gan import configs_for_preset, train_gan
from zspace.training.loop import training_seconds

PIXEL_GAN_EPOCHS = 10_000  # a cap only: the pixel GAN's time budget decides


def gan_stage(context: StageContext, preset: str, conditional: bool) -> dict:
    """Train a latent GAN (conditional or not) of a study preset on the autoencoder's codes."""
    out = context.stage_dir(gan_stage_name(preset, conditional))
    model, training = configs_for_preset(
        gan_preset_name(preset),
        "latent",
        context.config.autoencoder.latent_dim,
        conditional,
        **_training_settings(context.config),
        epochs=_gan_epochs(context.config, preset),
        inverter_steps=_inverter_steps(context.config, preset, conditional),
    )
    sampler = train_gan(
        out,
        model,
        training,
        ae_run=context.stage_dir(AUTOENCODER_STAGE),
        data_dir=context.data_dir,
        device=context.device,
        resume=RunDir(out).exists(),
        progress=context.progress,
        monitor=_monitor(context),
    )
    metrics = RunDir(out).read_metrics()
    return {
        "preset": gan_preset_name(preset),
        "conditional": conditional,
        "epochs": metrics[-1]["epoch"],
        "training_seconds": round(training_seconds(out), 1),
        "final": {k: metrics[-1].get(k) for k in ("requested_accuracy", "kl_from_uniform")},
        "inverter": sampler.inverter is not None,
        "figures": _gan_figures(context, out, sampler, metrics),
    }


def _training_settings(config: StudyConfig) -> dict:
    """The GANTrainingConfig settings that every GAN of the study shares."""
    batch = {} if config.gan.batch_size is None else {"batch_size": config.gan.batch_size}
    return {
        **batch,
        "dataset": config.data.dataset,
        "limit": config.data.limit,
        "seed": config.seed,
    }


def _gan_epochs(config: StudyConfig, preset: str) -> int:
    settings = config.gan
    if preset.startswith("reference") and settings.reference_epochs is not None:
        return settings.reference_epochs
    return settings.epochs


def _inverter_steps(config: StudyConfig, preset: str, conditional: bool) -> int:
    """Only the GAN to serve, the default conditional one, gets a noise inverter."""
    return config.gan.inverter_steps if conditional and preset == DEFAULT_GAN else 0


def _monitor(context: StageContext) -> CollapseMonitor:
    return CollapseMonitor(eval_classifier(context), seed=context.config.seed)


def _gan_figures(context: StageContext, out: Path, sampler, metrics: list[dict]) -> dict:
    """Loss curves, and a 10x10 grid of samples (conditional: row d shows digit d)."""
    seed = context.config.seed
    figures = {"loss_curve": context.relative(_gan_loss_curve(out, metrics))}
    if sampler.conditional:
        images, _ = sampler.sample_with_labels(n=10, seed=seed)
        figures["digit_grid"] = context.relative(
            save_grid(images, out / "digit_grid.png", ncols=10)
        )
    else:
        images = sampler.sample(n=100, seed=seed)
        figures["samples"] = context.relative(save_grid(images, out / "samples.png", ncols=10))
    return figures


def _gan_loss_curve(out: Path, metrics: list[dict]) -> Path:
    epochs = [m["epoch"] for m in metrics]
    return save_line_plot(
        {
            "discriminator": (epochs, [m["d_loss"] for m in metrics]),
            "generator": (epochs, [m["g_loss"] for m in metrics]),
        },
        out / "loss_curve.png",
        xlabel="epoch",
        ylabel="loss",
        title=out.name,
    )


def gmm_stage(context: StageContext) -> dict:
    out = context.stage_dir(GMM_STAGE)
    shutil.rmtree(out, ignore_errors=True)  # fitting is quick; no partial state to keep
    fit_gmm_baseline(
        context.stage_dir(AUTOENCODER_STAGE),
        out,
        components=context.config.evaluation.gmm_components,
        seed=context.config.seed,
        data_dir=context.data_dir,
        device=context.device,
        limit=context.config.data.limit,
    )
    return {"components": context.config.evaluation.gmm_components}


def pixel_gan_stage(context: StageContext) -> dict:
    """The pixel-space conditional GAN, given the same wall clock as the best latent cGAN
    (times `pixel_gan_budget_factor`)."""
    latent_run = context.stage_dir(gan_stage_name(DEFAULT_GAN, True))
    budget = training_seconds(latent_run) * context.config.evaluation.pixel_gan_budget_factor
    out = context.stage_dir(PIXEL_GAN_STAGE)
    model, training = configs_for_preset(
        gan_preset_name(DEFAULT_GAN),
        "pixels",
        0,  # no code dimension: the pixel GAN's data are the 784 pixels
        True,
        **_training_settings(context.config),
        epochs=PIXEL_GAN_EPOCHS,
        time_budget=max(budget, 1.0),
        inverter_steps=0,
    )
    train_gan(
        out,
        model,
        training,
        data_dir=context.data_dir,
        device=context.device,
        resume=RunDir(out).exists(),
        progress=context.progress,
        monitor=_monitor(context),
    )
    return {"time_budget": round(budget, 1), "training_seconds": round(training_seconds(out), 1)}


def interpolation_stage(context: StageContext) -> dict:
    settings, seed = context.config.interpolation, context.config.seed
    dataset = study_dataset(context)
    pairs = choose_pairs(dataset.test_labels, settings.pairs, seed, None, None)
    classifier = eval_classifier(context)
    out = context.stage_dir(INTERPOLATION_STAGE)
    out.mkdir(parents=True, exist_ok=True)
    summary, figures = {}, {}
    for name in (gan_stage_name(DEFAULT_GAN, False), gan_stage_name(DEFAULT_GAN, True)):
        model = load(context.stage_dir(name), context.device)
        paths = interpolation_paths(
            model,
            dataset.test_images,
            dataset.test_labels,
            pairs,
            settings.steps,
            classifier,
            seed,
        )
        figures[name] = context.relative(_save_paths(paths, out, name))
        summary[name] = {
            "rows": [p.method for p in paths[: len(paths) // len(pairs)]],
            "measures": summarize_paths(paths),
        }
    return {"pairs": pairs, "steps": settings.steps, "runs": summary, "figures": figures}


def _save_paths(paths: list, out: Path, name: str) -> Path:
    """The paths as a figure (one path a row) and as uint8 arrays; the figure's path."""
    save_paths_arrays(paths, out / f"{name}.npz")
    return save_paths_figure(paths, out / f"{name}.png")
