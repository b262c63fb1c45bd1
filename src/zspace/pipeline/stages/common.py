"""What the study's stages share: their names, and the data and the evaluation classifier that
every stage loads the same way."""

from __future__ import annotations

from zspace.data import load_dataset
from zspace.evaluation.classifier import load_eval_classifier
from zspace.models.presets import DEFAULT_GAN_PRESET
from zspace.pipeline.cache import StageContext
from zspace.pipeline.config import DEFAULT_GAN, StudyConfig

AUTOENCODER_STAGE = "autoencoder"
CLASSIFIER_STAGE = "eval-classifier"
LATENT_MAP_STAGE = "latent-map"
PRESETS_STAGE = "ae-presets"
FEWSHOT_STAGE = "fewshot"
GMM_STAGE = "gmm-baseline"
PIXEL_GAN_STAGE = "pixel-cgan"
FLOW_STAGE = "flow"
DISTILLED_FLOW_STAGE = "flow-distilled"
INTERPOLATION_STAGE = "interpolation"
TRANSLATION_STAGE = "translation"
EVALUATION_STAGE = "evaluation"


def gan_stage_name(preset: str, conditional: bool) -> str:
    return f"{'cgan' if conditional else 'gan'}-{preset}"


def flow_stage_names(config: StudyConfig) -> list[str]:
    """The flow stages this config has: the conditional flow, then its distilled generator."""
    if not config.flow.enabled:
        return []
    return [FLOW_STAGE, *([DISTILLED_FLOW_STAGE] if config.flow.distill else [])]


def generator_stage_names(config: StudyConfig) -> list[str]:
    """Every stage that makes a generator, in the evaluation table's order: the latent GANs
    (conditional first), the flows, the Gaussian mixture and, with `--full`, the pixel cGAN."""
    gans = [gan_stage_name(p, c) for p in config.gan.presets for c in (True, False)]
    pixels = [PIXEL_GAN_STAGE] if config.evaluation.pixel_gan else []
    return [*gans, *flow_stage_names(config), GMM_STAGE, *pixels]


def gan_preset_name(preset: str) -> str:
    """The zspace.models.presets name of a preset named in the study's config."""
    return DEFAULT_GAN_PRESET if preset == DEFAULT_GAN else preset


def study_dataset(context: StageContext):
    return load_dataset(
        context.config.data.dataset, data_dir=context.data_dir, limit=context.config.data.limit
    )


def eval_classifier(context: StageContext):
    """The evaluation classifier (trained on first use, then cached across runs)."""
    return load_eval_classifier(
        context.config.data.dataset,
        data_dir=context.data_dir,
        device=context.device,
        progress=context.progress,
        limit=context.config.data.limit,
        epochs=context.config.evaluation.classifier_epochs,
        seed=context.config.seed,
    )
