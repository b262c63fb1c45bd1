"""The stages of `zspace run`, each a function of the study config and earlier stages.

Every stage writes into its own folder of the run (`RUN/<stage>/`) and returns a small
JSON-able summary that the report reads; figures are referenced by paths relative to RUN.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from zspace.data import load_dataset
from zspace.figures import grid_image, save_grid, save_scatter_by_class
from zspace.models.images import to_uint8_images
from zspace.models.presets import ae_config_for_preset as ae_preset
from zspace.pipeline.stages import Stage, StageContext
from zspace.runs import RunDir
from zspace.sampling.latent import encode_images, principal_components

AE_STAGE = "autoencoder"
TRAIN_RECONSTRUCTIONS = "training reconstructions (perfect code sampler)"
CLASSIFIER_STAGE = "eval-classifier"


def _relative(context: StageContext, path: Path) -> str:
    return str(Path(path).relative_to(context.run_dir))


def _dataset(context: StageContext):
    return load_dataset(
        context.config.data.dataset, data_dir=context.data_dir, limit=context.config.data.limit
    )


def _classifier(context: StageContext):
    from zspace.evaluation.classifier import load_eval_classifier

    return load_eval_classifier(
        context.config.data.dataset,
        data_dir=context.data_dir,
        device=context.device,
        progress=context.progress,
        limit=context.config.data.limit,
        epochs=context.config.evaluation.classifier_epochs,
        seed=context.config.seed,
    )


def train_autoencoder_stage(context: StageContext) -> dict:
    from zspace.training.autoencoder import AETrainingConfig, train_autoencoder

    settings, out = context.config.autoencoder, context.stage_dir(AE_STAGE)
    train_autoencoder(
        out,
        ae_preset(settings.preset, settings.latent_dim),
        AETrainingConfig(
            dataset=context.config.data.dataset,
            limit=context.config.data.limit,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            loss=settings.loss,
            seed=context.config.seed,
        ),
        data_dir=context.data_dir,
        device=context.device,
        resume=RunDir(out).exists(),
        progress=context.progress,
    )
    metrics = RunDir(out).read_metrics()
    return {
        "preset": settings.preset,
        "epochs": metrics[-1]["epoch"],
        "test_mse": metrics[-1]["test_mse"],
        "training_seconds": round(sum(m["seconds"] for m in metrics), 1),
        "figures": {
            "reconstructions": _relative(context, out / "reconstructions.png"),
            "loss_curve": _relative(context, out / "loss_curve.png"),
        },
    }


def eval_classifier_stage(context: StageContext) -> dict:
    classifier = _classifier(context)
    return {"test_accuracy": classifier.test_accuracy, "key": classifier.info.get("key")}


def fewshot_stage(context: StageContext) -> dict:
    """The reference table and the beyond methods, then a label-count sweep (learning curve)."""
    from zspace.fewshot.report import beyond_table, reference_table
    from zspace.fewshot.study import StudyConfig as FewshotConfig
    from zspace.fewshot.study import load_context, run_study

    settings, out = context.config.fewshot, context.stage_dir("fewshot")
    common = {
        "ae_run": str(context.stage_dir(AE_STAGE)),
        "seed": context.config.seed,
        "dataset": context.config.data.dataset,
        "data_dir": context.data_dir,
        "train_limit": context.config.data.limit,
        "test_limit": settings.test_limit,
        "device": context.device,
    }
    quiet = lambda line: None  # noqa: E731 - the stage prints one line, the tables say the rest
    main_config = FewshotConfig(
        labels=[settings.labels],
        draws=settings.draws,
        heads=list(settings.heads),
        methods=list(settings.methods),
        **common,
    )
    # One context for both studies: the sweep reuses the features and graphs built here.
    shared = load_context(main_config)
    main = run_study(main_config, out=out, log=quiet, context=shared)
    sweep = run_study(
        FewshotConfig(
            labels=list(settings.label_sweep),
            draws=settings.sweep_draws,
            heads=[settings.sweep_head],
            methods=list(settings.sweep_methods),
            **common,
        ),
        out=out / "sweep",
        log=quiet,
        context=shared,
    )
    headers, rows = reference_table(main, settings.labels)
    beyond_headers, beyond_rows = beyond_table(main)
    ranked = sorted(main["results"], key=lambda r: r["mean"], reverse=True)
    best = ranked[0]
    encoder = max((r for r in ranked if r["method"] == "encoder+mlp"), key=lambda r: r["mean"])
    pixels = max((r for r in ranked if r["method"] == "pixels+mlp"), key=lambda r: r["mean"])
    reading = (
        f"With {settings.labels} labelled images and {settings.draws} random draws, the best head "
        f"on the frozen encoder's codes reaches {100 * encoder['mean']:.1f}% against "
        f"{100 * pixels['mean']:.1f}% for the best head on raw pixels (the reference study: "
        "73% and 65%, one run each). Using the unlabelled training images as well, "
        f"`{best['method']}` reaches {100 * best['mean']:.2f}% "
        f"[{100 * best['ci95'][0]:.2f}, {100 * best['ci95'][1]:.2f}]."
    )
    figures = {"heads": _relative(context, out / "fewshot.png")}
    if (out / "sweep" / "learning_curve.png").is_file():
        figures["learning_curve"] = _relative(context, out / "sweep" / "learning_curve.png")
    return {
        "best": {"method": best["method"], "mean": best["mean"], "ci95": best["ci95"]},
        "reading": reading,
        "table": {"headers": headers, "rows": rows},
        "beyond": {"headers": beyond_headers, "rows": beyond_rows} if beyond_rows else None,
        "sweep": [
            {k: r[k] for k in ("method", "head", "labels", "mean", "ci95")}
            for r in sweep["results"]
        ],
        "figures": figures,
    }


def presets_stage(context: StageContext) -> dict:
    """Autoencoder presets side by side under one budget (with and without positions)."""
    from zspace.pipeline.presets_comparison import ComparisonSettings, compare_presets

    settings, config = context.config.presets, context.config
    comparison = ComparisonSettings(
        presets=list(settings.names),
        epochs=settings.epochs,
        limit=_smaller(settings.limit, config.data.limit),
        batch_size=config.autoencoder.batch_size,
        latent_dim=config.autoencoder.latent_dim,
        seed=config.seed,
        labels=config.fewshot.labels,
        draws=settings.draws,
        dataset=config.data.dataset,
        test_limit=config.fewshot.test_limit,
    )
    rows = compare_presets(
        comparison,
        context.stage_dir("ae-presets"),
        data_dir=context.data_dir,
        device=context.device,
        progress=context.progress,
        log=lambda line: None,
    )
    return {
        "epochs": comparison.epochs,
        "images": comparison.limit,
        "labels": comparison.labels,
        "draws": comparison.draws,
        "head": comparison.head,
        "rows": rows,
    }


def _smaller(a: int | None, b: int | None) -> int | None:
    """The smaller of two optional image limits (None: no limit)."""
    return b if a is None else a if b is None else min(a, b)


def latent_map_stage(context: StageContext) -> dict:
    from zspace.sampling.latent import load_autoencoder

    autoencoder = load_autoencoder(context.stage_dir(AE_STAGE), context.device)
    dataset = _dataset(context)
    images, labels = dataset.test_images[:5000], dataset.test_labels[:5000]
    points = principal_components(encode_images(autoencoder, images), k=2)
    path = save_scatter_by_class(
        points,
        labels,
        context.stage_dir("latent-map") / "latent_map.png",
        title="test codes, first two principal components",
    )
    return {"points": len(points), "figures": {"latent_map": _relative(context, path)}}


def _gan_preset_name(name: str) -> str:
    from zspace.models.presets import DEFAULT_GAN_PRESET

    return DEFAULT_GAN_PRESET if name == "default" else name


def gan_stage(preset: str, conditional: bool):
    """A stage that trains a latent GAN (conditional or not) on the AE's codes."""

    def run(context: StageContext) -> dict:
        from zspace.evaluation.monitor import CollapseMonitor
        from zspace.models.gan import config_for_preset
        from zspace.training.gan import GANTrainingConfig, train_gan
        from zspace.training.loop import training_seconds

        out = context.stage_dir(gan_stage_name(preset, conditional))
        latent_dim = context.config.autoencoder.latent_dim
        sampler = train_gan(
            out,
            config_for_preset(_gan_preset_name(preset), latent_dim, conditional),
            GANTrainingConfig.for_preset(
                _gan_preset_name(preset),
                **_batch_override(context),
                space="latent",
                dataset=context.config.data.dataset,
                limit=context.config.data.limit,
                epochs=_gan_epochs(context, preset),
                seed=context.config.seed,
                inverter_steps=context.config.gan.inverter_steps
                if conditional and preset == "default"
                else 0,
            ),
            ae_run=context.stage_dir(AE_STAGE),
            data_dir=context.data_dir,
            device=context.device,
            resume=RunDir(out).exists(),
            progress=context.progress,
            monitor=CollapseMonitor(_classifier(context), seed=context.config.seed),
        )
        metrics = RunDir(out).read_metrics()
        figures = {"loss_curve": _relative(context, _gan_loss_curve(out, metrics))}
        if conditional:
            images, _ = sampler.sample_with_labels(n=10, seed=context.config.seed)
            figures["digit_grid"] = _relative(
                context, save_grid(images, out / "digit_grid.png", ncols=10)
            )
        else:
            images = sampler.sample(n=100, seed=context.config.seed)
            figures["samples"] = _relative(
                context, save_grid(images, out / "samples.png", ncols=10)
            )
        return {
            "preset": _gan_preset_name(preset),
            "conditional": conditional,
            "epochs": metrics[-1]["epoch"],
            "training_seconds": round(training_seconds(out), 1),
            "final": {k: metrics[-1].get(k) for k in ("requested_accuracy", "kl_from_uniform")},
            "inverter": sampler.inverter is not None,
            "figures": figures,
        }

    return run


def _gan_epochs(context: StageContext, preset: str) -> int:
    settings = context.config.gan
    if preset.startswith("reference") and settings.reference_epochs is not None:
        return settings.reference_epochs
    return settings.epochs


def _gan_loss_curve(out: Path, metrics: list[dict]) -> Path:
    from zspace.figures import save_line_plot

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


def _batch_override(context: StageContext) -> dict:
    size = context.config.gan.batch_size
    return {} if size is None else {"batch_size": size}


def gan_stage_name(preset: str, conditional: bool) -> str:
    return f"{'cgan' if conditional else 'gan'}-{preset}"


def gmm_stage(context: StageContext) -> dict:
    from zspace.evaluation.gmm import fit_gmm_baseline

    out = context.stage_dir("gmm-baseline")
    shutil.rmtree(out, ignore_errors=True)  # fitting is quick; no partial state to keep
    fit_gmm_baseline(
        context.stage_dir(AE_STAGE),
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
    from zspace.evaluation.monitor import CollapseMonitor
    from zspace.models.gan import config_for_preset
    from zspace.training.gan import GANTrainingConfig, train_gan
    from zspace.training.loop import training_seconds

    latent_run = context.stage_dir(gan_stage_name("default", True))
    budget = training_seconds(latent_run) * context.config.evaluation.pixel_gan_budget_factor
    out = context.stage_dir("pixel-cgan")
    train_gan(
        out,
        config_for_preset(
            _gan_preset_name("default"),
            28 * 28,
            True,
            generator_output="tanh",  # pixels are scaled to [-1, 1]
        ),
        GANTrainingConfig.for_preset(
            _gan_preset_name("default"),
            **_batch_override(context),
            space="pixels",
            dataset=context.config.data.dataset,
            limit=context.config.data.limit,
            epochs=10_000,  # the time budget decides
            seed=context.config.seed,
            time_budget=max(budget, 1.0),
            inverter_steps=0,
        ),
        data_dir=context.data_dir,
        device=context.device,
        resume=RunDir(out).exists(),
        progress=context.progress,
        monitor=CollapseMonitor(_classifier(context), seed=context.config.seed),
    )
    return {"time_budget": round(budget, 1), "training_seconds": round(training_seconds(out), 1)}


def interpolation_stage(context: StageContext) -> dict:
    from zspace.loading import load
    from zspace.sampling.interpolation import choose_pairs, interpolation_paths, summarize_paths

    settings = context.config.interpolation
    dataset = _dataset(context)
    pairs = choose_pairs(dataset.test_labels, settings.pairs, context.config.seed, None, None)
    classifier = _classifier(context)
    out = context.stage_dir("interpolation")
    out.mkdir(parents=True, exist_ok=True)
    summary, figures = {}, {}
    for name in (gan_stage_name("default", False), gan_stage_name("default", True)):
        model = load(context.stage_dir(name), context.device)
        paths = interpolation_paths(
            model,
            dataset.test_images,
            dataset.test_labels,
            pairs,
            settings.steps,
            classifier,
            context.config.seed,
        )
        frames = torch.stack([p.frames for p in paths]).squeeze(2)  # (P, T, 28, 28)
        figure = out / f"{name}.png"
        grid_image(frames, scale=2).save(figure, format="PNG")
        np.savez(
            out / f"{name}.npz",
            paths=to_uint8_images(frames.reshape(-1, 1, 28, 28)).reshape(frames.shape).numpy(),
            methods=np.array([p.method for p in paths]),
        )
        figures[name] = _relative(context, figure)
        summary[name] = {
            "rows": [p.method for p in paths[: len(paths) // len(pairs)]],
            "measures": summarize_paths(paths),
        }
    return {"pairs": pairs, "steps": settings.steps, "runs": summary, "figures": figures}


def evaluation_stage(context: StageContext) -> dict:
    from zspace.evaluation.metrics import evaluate_images, reference_stats
    from zspace.evaluation.sources import (
        draw_samples,
        reconstruct_test_set,
        reconstruct_training_sample,
    )
    from zspace.loading import load_sampler
    from zspace.sampling.latent import load_autoencoder

    classifier = _classifier(context)
    dataset = _dataset(context)
    reference = reference_stats(dataset.test_images, classifier)  # shared by every row
    per_digit = context.config.evaluation.samples_per_digit
    autoencoder = load_autoencoder(context.stage_dir(AE_STAGE), context.device)
    rows = {
        "reconstructions (ceiling)": evaluate_images(
            reconstruct_test_set(autoencoder, dataset.test_images),
            classifier,
            requested_labels=dataset.test_labels,
            reference=reference,
        )
    }
    train_images, train_labels = reconstruct_training_sample(
        autoencoder, dataset.train_images, dataset.train_labels, per_digit, context.config.seed
    )
    rows[TRAIN_RECONSTRUCTIONS] = evaluate_images(
        train_images, classifier, requested_labels=train_labels, reference=reference
    )
    names = [gan_stage_name(p, c) for p in context.config.gan.presets for c in (True, False)]
    for name in [*names, "gmm-baseline", "pixel-cgan"]:
        sampler = load_sampler(context.stage_dir(name), context.device)
        images, labels = draw_samples(sampler, per_digit, context.config.seed)
        rows[name] = evaluate_images(
            images, classifier, requested_labels=labels, reference=reference
        )
    return {
        "samples_per_digit": per_digit,
        "classifier_test_accuracy": classifier.test_accuracy,
        "rows": rows,
    }


def study_stages(context: StageContext) -> list[Stage]:
    """The whole study, in order."""
    config = context.config
    stages = [
        Stage(
            AE_STAGE, train_autoencoder_stage, ("data", "autoencoder"), (), "train the autoencoder"
        ),
        Stage(
            CLASSIFIER_STAGE,
            eval_classifier_stage,
            ("data", "evaluation"),
            (),
            "evaluation classifier (cached across runs)",
        ),
        Stage("latent-map", latent_map_stage, (), (AE_STAGE,), "2-D map of the latent space"),
    ]
    if config.presets.names:
        stages.append(
            Stage(
                "ae-presets",
                presets_stage,
                ("data", "autoencoder", "presets", "fewshot"),
                (),
                "autoencoder presets side by side, with and without position encodings",
            )
        )
    stages += [
        Stage(
            "fewshot",
            fewshot_stage,
            ("data", "fewshot"),
            (AE_STAGE,),
            "few-shot study: reference heads and methods using the unlabelled images",
        ),
    ]
    gan_names = []
    for preset in config.gan.presets:
        for conditional in (False, True):
            name = gan_stage_name(preset, conditional)
            gan_names.append(name)
            stages.append(
                Stage(
                    name,
                    gan_stage(preset, conditional),
                    ("data", "gan"),
                    (AE_STAGE, CLASSIFIER_STAGE),
                    f"{'conditional ' if conditional else ''}latent GAN, preset {preset}",
                )
            )
    best_cgan = gan_stage_name("default", True)
    stages += [
        Stage("gmm-baseline", gmm_stage, ("evaluation",), (AE_STAGE,), "Gaussian-mixture baseline"),
        Stage(
            "pixel-cgan",
            pixel_gan_stage,
            ("data", "gan", "evaluation"),
            (best_cgan, CLASSIFIER_STAGE),
            "pixel-space conditional GAN under the same wall clock",
        ),
        Stage(
            "interpolation",
            interpolation_stage,
            ("interpolation",),
            tuple(dict.fromkeys([gan_stage_name("default", False), best_cgan, CLASSIFIER_STAGE])),
            "interpolations in the AE and GAN spaces",
        ),
        Stage(
            "evaluation",
            evaluation_stage,
            ("evaluation",),
            (*gan_names, "gmm-baseline", "pixel-cgan", CLASSIFIER_STAGE),
            "evaluate every generator",
        ),
    ]
    return stages
