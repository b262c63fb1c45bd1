"""Stages that learn and measure the representation: the autoencoder, a 2-D map of its codes,
autoencoder presets side by side, and the few-shot study on its codes."""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path

from zspace.fewshot.report import beyond_table, reference_table
from zspace.fewshot.study import ENCODER, PIXELS, load_context, run_study
from zspace.fewshot.study import StudyConfig as FewshotConfig
from zspace.figures import save_scatter_by_class
from zspace.models.presets import ae_config_for_preset
from zspace.pipeline.cache import StageContext
from zspace.pipeline.config import FewshotSettings, StudyConfig
from zspace.pipeline.presets_comparison import ComparisonSettings, compare_presets
from zspace.pipeline.report import fewshot_reading
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    FEWSHOT_STAGE,
    LATENT_MAP_STAGE,
    PRESETS_STAGE,
    study_dataset,
)
from zspace.runs import RunDir
from zspace.sampling.latent import encode_images, load_autoencoder, principal_components
from zspace.training.autoencoder import AETrainingConfig, train_autoencoder

MAP_POINTS = 5000  # test codes on the latent map


def _quiet(line: str) -> None:
    """A log that drops its lines: these stages print one line each, the report says the rest."""


def train_autoencoder_stage(context: StageContext) -> dict:
    settings, out = context.config.autoencoder, context.stage_dir(AUTOENCODER_STAGE)
    train_autoencoder(
        out,
        ae_config_for_preset(settings.preset, settings.latent_dim),
        _ae_training(context.config),
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
            "reconstructions": context.relative(out / "reconstructions.png"),
            "loss_curve": context.relative(out / "loss_curve.png"),
        },
    }


def _ae_training(config: StudyConfig) -> AETrainingConfig:
    settings = config.autoencoder
    return AETrainingConfig(
        dataset=config.data.dataset,
        limit=config.data.limit,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        loss=settings.loss,
        seed=config.seed,
    )


def latent_map_stage(context: StageContext) -> dict:
    autoencoder = load_autoencoder(context.stage_dir(AUTOENCODER_STAGE), context.device)
    dataset = study_dataset(context)
    images, labels = dataset.test_images[:MAP_POINTS], dataset.test_labels[:MAP_POINTS]
    points = principal_components(encode_images(autoencoder, images), k=2)
    path = save_scatter_by_class(
        points,
        labels,
        context.stage_dir(LATENT_MAP_STAGE) / "latent_map.png",
        title="test codes, first two principal components",
    )
    return {"points": len(points), "figures": {"latent_map": context.relative(path)}}


def presets_stage(context: StageContext) -> dict:
    """Autoencoder presets side by side under one budget (with and without positions)."""
    comparison = _comparison_settings(context.config)
    rows = compare_presets(
        comparison,
        context.stage_dir(PRESETS_STAGE),
        data_dir=context.data_dir,
        device=context.device,
        progress=context.progress,
        log=_quiet,
    )
    return {
        "epochs": comparison.epochs,
        "images": comparison.limit,
        "labels": comparison.labels,
        "draws": comparison.draws,
        "head": comparison.head,
        "rows": rows,
    }


def _comparison_settings(config: StudyConfig) -> ComparisonSettings:
    settings = config.presets
    return ComparisonSettings(
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


def _smaller(a: int | None, b: int | None) -> int | None:
    """The smaller of two optional image limits (None: no limit)."""
    return b if a is None else a if b is None else min(a, b)


def fewshot_stage(context: StageContext) -> dict:
    """The reference table and the beyond methods, then a label-count sweep (learning curve)."""
    out = context.stage_dir(FEWSHOT_STAGE)
    main_config, sweep_config = _fewshot_configs(context)
    # One context for both studies: the sweep reuses the features and graphs built here.
    shared = load_context(main_config)
    main = run_study(main_config, out=out, log=_quiet, context=shared)
    sweep = run_study(sweep_config, out=out / "sweep", log=_quiet, context=shared)
    return {
        **_fewshot_tables(main, context.config.fewshot),
        "sweep": [
            {k: r[k] for k in ("method", "head", "labels", "mean", "ci95")}
            for r in sweep["results"]
        ],
        "figures": _fewshot_figures(context, out),
    }


def _fewshot_configs(context: StageContext) -> tuple[FewshotConfig, FewshotConfig]:
    """(main study, label-count sweep), on the study's autoencoder and data."""
    settings = context.config.fewshot
    common = {
        "ae_run": str(context.stage_dir(AUTOENCODER_STAGE)),
        "seed": context.config.seed,
        "dataset": context.config.data.dataset,
        "data_dir": context.data_dir,
        "train_limit": context.config.data.limit,
        "test_limit": settings.test_limit,
        "device": context.device,
    }
    main = FewshotConfig(
        labels=[settings.labels],
        draws=settings.draws,
        heads=list(settings.heads),
        methods=list(settings.methods),
        **common,
    )
    sweep = FewshotConfig(
        labels=list(settings.label_sweep),
        draws=settings.sweep_draws,
        heads=[settings.sweep_head],
        methods=list(settings.sweep_methods),
        **common,
    )
    return main, sweep


def _fewshot_tables(main: dict, settings: FewshotSettings) -> dict:
    """The best result, the reading of the main study, and its two tables."""
    ranked = sorted(main["results"], key=itemgetter("mean"), reverse=True)
    best = ranked[0]
    encoder = max((r for r in ranked if r["method"] == ENCODER), key=itemgetter("mean"))
    pixels = max((r for r in ranked if r["method"] == PIXELS), key=itemgetter("mean"))
    headers, rows = reference_table(main, settings.labels)
    beyond_headers, beyond_rows = beyond_table(main)
    return {
        "best": {"method": best["method"], "mean": best["mean"], "ci95": best["ci95"]},
        "reading": fewshot_reading(settings.labels, settings.draws, encoder, pixels, best),
        "table": {"headers": headers, "rows": rows},
        "beyond": {"headers": beyond_headers, "rows": beyond_rows} if beyond_rows else None,
    }


def _fewshot_figures(context: StageContext, out: Path) -> dict:
    figures = {"heads": context.relative(out / "fewshot.png")}
    if (out / "sweep" / "learning_curve.png").is_file():
        figures["learning_curve"] = context.relative(out / "sweep" / "learning_curve.png")
    return figures
