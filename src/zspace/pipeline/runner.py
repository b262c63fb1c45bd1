"""`zspace run`: the whole study into one run folder, stage by stage, then the report."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from zspace.checkpoint import atomic_write_text
from zspace.errors import ZspaceError
from zspace.pipeline.cache import RECORDS_FOLDER, Stage, StageContext, run_stages
from zspace.pipeline.config import DEFAULT_GAN, StudyConfig, config_to_toml
from zspace.pipeline.report import write_report
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    CLASSIFIER_STAGE,
    DISTILLED_FLOW_STAGE,
    EVALUATION_STAGE,
    FEWSHOT_STAGE,
    FLOW_STAGE,
    GMM_STAGE,
    INTERPOLATION_STAGE,
    LATENT_MAP_STAGE,
    PIXEL_GAN_STAGE,
    PRESETS_STAGE,
    TRANSLATION_STAGE,
    flow_stage_names,
    gan_stage_name,
    generator_stage_names,
)
from zspace.pipeline.stages.evaluation import eval_classifier_stage, evaluation_stage
from zspace.pipeline.stages.flows import distilled_flow_stage, flow_stage
from zspace.pipeline.stages.generators import (
    gan_stage,
    gmm_stage,
    interpolation_stage,
    pixel_gan_stage,
)
from zspace.pipeline.stages.representation import (
    fewshot_stage,
    latent_map_stage,
    presets_stage,
    train_autoencoder_stage,
)
from zspace.pipeline.stages.translation import translation_stage
from zspace.runs import STUDY, RunDir

# Each stage: name, function, config sections it reads, stages it reads, what it does.
TRAIN_AUTOENCODER = Stage(
    AUTOENCODER_STAGE,
    train_autoencoder_stage,
    ("data", "autoencoder"),
    (),
    "train the autoencoder",
)
EVAL_CLASSIFIER = Stage(
    CLASSIFIER_STAGE,
    eval_classifier_stage,
    ("data", "evaluation"),
    (),
    "evaluation classifier (cached across runs)",
)
LATENT_MAP = Stage(
    LATENT_MAP_STAGE, latent_map_stage, (), (AUTOENCODER_STAGE,), "2-D map of the latent space"
)
PRESETS_COMPARISON = Stage(
    PRESETS_STAGE,
    presets_stage,
    ("data", "autoencoder", "presets", "fewshot"),
    (),
    "autoencoder presets side by side, with and without position encodings",
)
FEWSHOT_STUDY = Stage(
    FEWSHOT_STAGE,
    fewshot_stage,
    ("data", "fewshot"),
    (AUTOENCODER_STAGE,),
    "few-shot study: reference heads and methods using the unlabelled images",
)
GMM_BASELINE = Stage(
    GMM_STAGE, gmm_stage, ("evaluation",), (AUTOENCODER_STAGE,), "Gaussian-mixture baseline"
)
PIXEL_GAN = Stage(
    PIXEL_GAN_STAGE,
    pixel_gan_stage,
    ("data", "gan", "evaluation"),
    (gan_stage_name(DEFAULT_GAN, True), CLASSIFIER_STAGE),
    "pixel-space conditional GAN under the same wall clock",
)
LATENT_FLOW = Stage(
    FLOW_STAGE,
    flow_stage,
    ("data", "flow.preset", "flow.time_budget", "flow.epochs"),
    (AUTOENCODER_STAGE,),
    "conditional latent flow (flow matching on the autoencoder's codes)",
)
DISTILLED_FLOW = Stage(
    DISTILLED_FLOW_STAGE,
    distilled_flow_stage,
    ("flow.distill_pairs", "flow.distill_epochs"),
    (FLOW_STAGE,),
    "the flow distilled into a one-step generator",
)
INTERPOLATION = Stage(
    INTERPOLATION_STAGE,
    interpolation_stage,
    ("interpolation",),
    (gan_stage_name(DEFAULT_GAN, False), gan_stage_name(DEFAULT_GAN, True), CLASSIFIER_STAGE),
    "interpolations in the AE and GAN spaces",
)
TRANSLATION = Stage(
    TRANSLATION_STAGE,
    translation_stage,
    ("data", "translation"),
    (AUTOENCODER_STAGE, gan_stage_name(DEFAULT_GAN, True), CLASSIFIER_STAGE),
    "class-to-class translators (regular, cycle, paired, restyle, shift) and their hypotheses",
)


def study_stages(config: StudyConfig) -> list[Stage]:
    """The whole study, in order. The default run leaves out the reference GAN presets and the
    pixel-space cGAN (`--full` has them: gan.presets, evaluation.pixel_gan)."""
    comparison = [PRESETS_COMPARISON] if config.presets.names else []
    gans = [_latent_gan(p, c) for p in config.gan.presets for c in (False, True)]
    flows = {FLOW_STAGE: LATENT_FLOW, DISTILLED_FLOW_STAGE: DISTILLED_FLOW}
    pixels = [PIXEL_GAN] if config.evaluation.pixel_gan else []
    translation = [TRANSLATION] if config.translation.enabled else []
    evaluation = Stage(
        EVALUATION_STAGE,
        evaluation_stage,
        ("evaluation",),
        (*generator_stage_names(config), CLASSIFIER_STAGE),
        "evaluate every generator",
    )
    return [
        TRAIN_AUTOENCODER,
        EVAL_CLASSIFIER,
        LATENT_MAP,
        *comparison,
        FEWSHOT_STUDY,
        *gans,
        *(flows[name] for name in flow_stage_names(config)),
        GMM_BASELINE,
        *pixels,
        INTERPOLATION,
        *translation,
        evaluation,
    ]


def _latent_gan(preset: str, conditional: bool) -> Stage:
    return Stage(
        gan_stage_name(preset, conditional),
        partial(gan_stage, preset=preset, conditional=conditional),
        ("data", "gan"),
        (AUTOENCODER_STAGE, CLASSIFIER_STAGE),
        f"{'conditional ' if conditional else ''}latent GAN, preset {preset}",
    )


def run_study(
    config: StudyConfig,
    out: str | Path,
    force: tuple[str, ...] = (),
    data_dir: str | None = None,
    device: str = "auto",
    progress: bool = True,
    log=print,
) -> Path:
    """Run (or finish) the study in `out`; returns the path of report.md."""
    run = RunDir(out)
    run.write_config(STUDY, {"study": config.to_dict()})
    config_text = config_to_toml(config)
    atomic_write_text(run.file("config.toml"), config_text)
    context = StageContext(
        run_dir=run.path,
        config=config,
        data_dir=data_dir,
        device=device,
        progress=progress,
        log=log,
    )
    records = run_stages(study_stages(config), context, force=force)
    return write_report(run.path, records, config, config_text)


def list_runs(root: str | Path) -> list[dict]:
    """Every run folder under `root` (one level deep, and study stages) with key figures."""
    root = Path(root)
    if not root.is_dir():
        raise ZspaceError(f"{root} is not a folder")
    found = []
    for config_path in sorted(root.glob("*/config.json")) + sorted(root.glob("*/*/config.json")):
        try:
            config = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(config, dict) or not isinstance(config.get("kind"), str):
            continue  # not a zspace run (or a damaged config): nothing to list
        run = RunDir(config_path.parent)
        found.append(
            {"path": str(run.path), "kind": config["kind"], "figures": _key_figures(run, config)}
        )
    return found


def _key_figures(run: RunDir, config: dict) -> dict:
    if config["kind"] == STUDY:
        return _study_figures(run)
    metrics = run.read_metrics()
    if not metrics:
        return {}
    last = metrics[-1]
    keep = ("epoch", "test_mse", "requested_accuracy", "kl_from_uniform", "d_loss", "g_loss")
    return {k: round(v, 5) if isinstance(v, float) else v for k, v in last.items() if k in keep}


def _study_figures(run: RunDir) -> dict:
    """The autoencoder's test MSE and the best few-shot result, when those stages finished."""
    figures = {}
    for name, key in ((AUTOENCODER_STAGE, "test_mse"), (FEWSHOT_STAGE, "best")):
        try:
            record = json.loads((run.path / RECORDS_FOLDER / f"{name}.json").read_text())
            summary = record["summary"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            continue
        if key in summary:
            figures[f"{name}.{key}"] = summary[key]
    figures["report"] = (run.path / "report.md").is_file()
    return figures
