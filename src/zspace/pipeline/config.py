"""The study's settings: one typed config, read from TOML, validated key by key.

Every setting has a default; the defaults run zspace's best presets and methods (the reference
study's few-shot heads included) within the newcomer's time budget. `--full` adds what the
default run leaves out: the reference GAN presets and the pixel-space cGAN. `--quick` swaps in
subsets and few epochs (over either stage list).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from zspace.data.registry import DEFAULT_DATASET
from zspace.errors import ZspaceError
from zspace.fewshot.beyond import BEYOND_METHODS
from zspace.fewshot.heads import DEFAULT_HEADS, parse_heads
from zspace.fewshot.report import REFERENCE_LABELS
from zspace.fewshot.study import StudyConfig as FewshotConfig
from zspace.models.encoders import AutoencoderConfig
from zspace.models.flow import FLOW_PRESETS
from zspace.models.presets import DEFAULT_AE_PRESET, preset_names
from zspace.models.translator import LEARNED_METHODS, METHODS
from zspace.pipeline.presets_comparison import DEFAULT_PRESETS, REFERENCE_HEAD, ComparisonSettings
from zspace.training.autoencoder import AETrainingConfig
from zspace.training.gan import GANTrainingConfig
from zspace.training.translator import TranslatorTrainingConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# The study's name for zspace's best GAN preset (zspace.models.presets.DEFAULT_GAN_PRESET).
DEFAULT_GAN = "default"

# A setting that the library has too takes the library's default (a class attribute of its
# config dataclass), so that each default is written once.


@dataclass
class DataSettings:
    dataset: str = DEFAULT_DATASET
    limit: int | None = None  # use only the first N training images


@dataclass
class AutoencoderSettings:
    """The architecture preset, and the settings of AETrainingConfig that the study exposes."""

    preset: str = DEFAULT_AE_PRESET
    latent_dim: int = AutoencoderConfig.latent_dim
    epochs: int = AETrainingConfig.epochs
    batch_size: int = AETrainingConfig.batch_size
    learning_rate: float = AETrainingConfig.learning_rate
    loss: str = AETrainingConfig.loss


@dataclass
class PresetComparisonSettings:
    """Autoencoder presets side by side, each trained for the same epochs."""

    # An empty list skips the comparison.
    names: list[str] = field(default_factory=lambda: list(DEFAULT_PRESETS))
    # One epoch on half the training images keeps the default run within its 8 minutes; the
    # transformers are far from converged at that budget (see the README for 3 full epochs).
    epochs: int = ComparisonSettings.epochs
    limit: int | None = 30_000  # first N training images (None: the study's data.limit)
    # Few-shot draws of encoder+MLP per preset (0: no few-shot column).
    draws: int = ComparisonSettings.draws


@dataclass
class FewshotSettings:
    labels: int = REFERENCE_LABELS
    draws: int = FewshotConfig.draws
    heads: list[str] = field(default_factory=lambda: list(DEFAULT_HEADS))
    # Methods that also use the unlabelled training images (zspace fewshot --methods).
    methods: list[str] = field(
        default_factory=lambda: ["knn-codes", "poisson-codes", "poisson-hog"]
    )
    label_sweep: list[int] = field(default_factory=lambda: [10, 20, 50, 100, 500, 1000])
    sweep_draws: int = 5
    sweep_head: str = REFERENCE_HEAD
    # The learning curve: the best method, the best code-only method (and the sweep head).
    sweep_methods: list[str] = field(default_factory=lambda: ["poisson-hog", "poisson-codes"])
    test_limit: int | None = None  # classify only the first N test images (quick runs)


@dataclass
class GANSettings:
    # The reference presets collapse (zspace.models.gan) and cost about a minute: `--full` adds
    # them (["reference", "default"]); the default run trains zspace's best preset only.
    presets: list[str] = field(default_factory=lambda: [DEFAULT_GAN])
    epochs: int = GANTrainingConfig.epochs
    # The reference presets collapse within their first epoch (zspace.models.gan, measured at
    # 1 to 20 epochs), so they get fewer epochs by default; None: the same `epochs` as the rest.
    reference_epochs: int | None = 10
    batch_size: int | None = None  # None: each preset's own batch size
    # Noise-inverter steps for the default conditional GAN, the run to serve (fast restyles;
    # zspace.sampling.inversion); 0: none. The other GANs get none (their interpolations are few).
    inverter_steps: int = GANTrainingConfig.inverter_steps


@dataclass
class InterpolationSettings:
    pairs: int = 4
    steps: int = 10


@dataclass
class FlowSettings:
    """The conditional latent flow on the study's autoencoder, and its one-step distillation."""

    enabled: bool = True  # false: no flow stages
    preset: str | None = None  # None: the flow's default preset (zspace.models.flow)
    # Seconds of training: the flow stops after the first epoch that ends past it. 0 (the
    # default): no time budget, train for `epochs`, so the result does not depend on how busy
    # the machine is (a TOML file cannot unset a value, so 0 is "off").
    time_budget: float = 0.0
    # A cap under a time budget; None: 10,000 with a budget (the budget decides), else the
    # flow trainer's own number of epochs (22).
    epochs: int | None = 10
    distill: bool = True  # also distil the flow into a one-step generator
    # Fewer epochs, pairs and distillation passes than `zspace train-flow` / `distill-flow`
    # by default: they keep the newcomer's first `zspace run` within its 8 minutes.
    distill_pairs: int = 30_000
    distill_epochs: int = 8


@dataclass
class TranslationSettings:
    """The reference study's class-to-class translators (zspace train-translator), trained on
    the study's autoencoder (paired and restyle use the default cGAN) and measured on the most
    and least similar class pairs."""

    # The default run has no room for it within its 8 minutes (README, "Translation"):
    # `--full` turns it on; `--quick --full` covers two pairs.
    enabled: bool = False
    pairs_per_end: int = 3  # this many of the most similar and of the least similar pairs
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    # Methods also trained as one model for all 90 ordered pairs (an empty list: none).
    all_pairs_methods: list[str] = field(default_factory=lambda: ["cycle", "paired"])
    epochs: int = 8  # of each per-pair translator
    all_pairs_epochs: int = 24
    steps_per_epoch: int = TranslatorTrainingConfig.steps_per_epoch
    test_per_class: int | None = 500  # test digits translated per pair (None: all)


@dataclass
class EvaluationSettings:
    samples_per_digit: int = 1000
    classifier_epochs: int | None = None  # None: the evaluation classifier's own schedule
    gmm_components: int = 4
    # The pixel-space cGAN baseline (about 77 s, the latent cGAN's wall clock); `--full` adds it.
    pixel_gan: bool = False
    pixel_gan_budget_factor: float = 1.0  # pixel baseline's wall clock / latent GAN's


@dataclass
class StudyConfig:
    seed: int = 0
    data: DataSettings = field(default_factory=DataSettings)
    autoencoder: AutoencoderSettings = field(default_factory=AutoencoderSettings)
    presets: PresetComparisonSettings = field(default_factory=PresetComparisonSettings)
    fewshot: FewshotSettings = field(default_factory=FewshotSettings)
    gan: GANSettings = field(default_factory=GANSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    interpolation: InterpolationSettings = field(default_factory=InterpolationSettings)
    translation: TranslationSettings = field(default_factory=TranslationSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def section_json(self, name: str) -> str:
        """A stable text of one section ("gan") or one setting ("flow.time_budget"), used to
        tell which stages a change invalidates.

        A section's text leaves out the settings that only choose which stages exist
        (STAGE_SWITCHES): adding the reference GANs with `--full` must not retrain the default
        GAN, whose stage reads the `gan` section."""
        section, _, key = name.partition(".")
        value = getattr(self, section)
        if key:
            value = getattr(value, key)
        data = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        if not key and isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in STAGE_SWITCHES.get(section, ())}
        return json.dumps(data, sort_keys=True)


# Settings that choose which stages the study has, not how a stage works (see section_json).
STAGE_SWITCHES = {
    "gan": ("presets",),
    "evaluation": ("pixel_gan",),
    "flow": ("enabled", "distill"),
    "translation": ("enabled",),
}


def quick_overrides() -> dict:
    """Settings of `--quick`: subsets and few epochs, every stage still runs."""
    return {
        "data": {"limit": 10000},
        "autoencoder": {"epochs": 4, "batch_size": 64},
        "presets": {
            "names": ["transformer", "transformer-nopos"],
            "limit": 3000,
            "draws": 3,
        },
        "fewshot": {
            "draws": 3,
            "label_sweep": [20, 50, 100],
            "sweep_draws": 2,
            "test_limit": 2000,
        },
        "gan": {"epochs": 6, "reference_epochs": 3, "inverter_steps": 100},
        "flow": {"epochs": 5, "distill_pairs": 4000, "distill_epochs": 2},
        "interpolation": {"pairs": 2, "steps": 6},
        "translation": {
            "pairs_per_end": 1,
            "epochs": 2,
            "all_pairs_epochs": 4,
            "test_per_class": 200,
        },
        "evaluation": {"samples_per_digit": 100, "classifier_epochs": 1},
    }


def full_overrides() -> dict:
    """Settings of `--full`: the stages the default run leaves out to stay within its time
    budget, the collapsing reference GAN presets, the pixel-space cGAN and the translators.
    With `--quick` they run on its subsets."""
    return {
        "gan": {"presets": ["reference", DEFAULT_GAN]},
        "evaluation": {"pixel_gan": True},
        "translation": {"enabled": True},
    }


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def _check_value(path: str, value, annotation):
    """Return `value` if it fits `annotation`, else raise one clear ZspaceError."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(path, value, option)
            except ZspaceError as error:
                errors.append(str(error))
        raise ZspaceError(errors[0] if errors else f"{path}: bad value {value!r}")
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ZspaceError(f"{path} must be a list of {_type_name(item_type)}, got {value!r}")
        return [_check_value(f"{path}[{i}]", item, item_type) for i, item in enumerate(value)]
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool):
        if isinstance(value, bool) != (annotation is bool) or not isinstance(value, annotation):
            raise ZspaceError(f"{path} must be {_type_name(annotation)}, got {value!r}")
        return value
    raise ZspaceError(f"{path}: unsupported setting type {annotation}")


def _apply(target, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(target))
    names = {f.name for f in dataclasses.fields(target)}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ZspaceError(f"unknown setting {path!r}; known here: {sorted(names)}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ZspaceError(f"{path} must be a table of settings, got {value!r}")
            _apply(current, value, prefix=f"{path}.")
        else:
            setattr(target, key, _check_value(path, value, hints[key]))


def _validate(config: StudyConfig) -> None:
    """Raise one ZspaceError for the first setting out of range or unknown."""
    _check_counts(config)
    _check_optional_counts(config)
    _check_ranges(config)
    _check_names(config)


def _check_counts(config: StudyConfig) -> None:
    positive = {
        "autoencoder.epochs": config.autoencoder.epochs,
        "autoencoder.latent_dim": config.autoencoder.latent_dim,
        "autoencoder.batch_size": config.autoencoder.batch_size,
        "fewshot.labels": config.fewshot.labels,
        "fewshot.draws": config.fewshot.draws,
        "fewshot.sweep_draws": config.fewshot.sweep_draws,
        "gan.epochs": config.gan.epochs,
        "interpolation.pairs": config.interpolation.pairs,
        "interpolation.steps": config.interpolation.steps,
        "evaluation.samples_per_digit": config.evaluation.samples_per_digit,
        "evaluation.gmm_components": config.evaluation.gmm_components,
        "presets.epochs": config.presets.epochs,
        "flow.distill_pairs": config.flow.distill_pairs,
        "flow.distill_epochs": config.flow.distill_epochs,
        "translation.pairs_per_end": config.translation.pairs_per_end,
        "translation.epochs": config.translation.epochs,
        "translation.all_pairs_epochs": config.translation.all_pairs_epochs,
        "translation.steps_per_epoch": config.translation.steps_per_epoch,
    }
    for path, value in positive.items():
        if value < 1:
            raise ZspaceError(f"{path} must be at least 1, got {value}")
    if config.seed < 0:
        raise ZspaceError(f"seed must be >= 0, got {config.seed}")


def _check_optional_counts(config: StudyConfig) -> None:
    """The counts that may be None (unset) or 0 (off)."""
    if config.evaluation.classifier_epochs is not None and config.evaluation.classifier_epochs < 1:
        raise ZspaceError("evaluation.classifier_epochs must be at least 1")
    if config.gan.reference_epochs is not None and config.gan.reference_epochs < 1:
        raise ZspaceError("gan.reference_epochs must be at least 1")
    if config.gan.inverter_steps < 0:
        raise ZspaceError(f"gan.inverter_steps must be >= 0, got {config.gan.inverter_steps}")
    if config.gan.batch_size is not None and config.gan.batch_size < 1:
        raise ZspaceError(f"gan.batch_size must be at least 1, got {config.gan.batch_size}")
    if config.presets.limit is not None and config.presets.limit < 1:
        raise ZspaceError(f"presets.limit must be at least 1, got {config.presets.limit}")
    if config.presets.draws < 0:
        raise ZspaceError(f"presets.draws must be at least 0, got {config.presets.draws}")
    if config.data.limit is not None and config.data.limit < 1:
        raise ZspaceError(f"data.limit must be at least 1, got {config.data.limit}")
    if config.flow.epochs is not None and config.flow.epochs < 1:
        raise ZspaceError(f"flow.epochs must be at least 1, got {config.flow.epochs}")
    limit = config.translation.test_per_class
    if limit is not None and limit < 4:
        raise ZspaceError(f"translation.test_per_class must be at least 4, got {limit}")


def _check_names(config: StudyConfig) -> None:
    """Autoencoder presets, few-shot heads and methods, and the GAN preset the study needs."""
    known_presets = preset_names()
    for name in [config.autoencoder.preset, *config.presets.names]:
        if name not in known_presets:
            raise ZspaceError(f"unknown autoencoder preset {name!r}; choose from {known_presets}")
    parse_heads([*config.fewshot.heads, config.fewshot.sweep_head])  # one-line error if bad
    for name in [*config.fewshot.methods, *config.fewshot.sweep_methods]:
        if name not in BEYOND_METHODS:
            raise ZspaceError(
                f"fewshot: unknown method {name!r}; choose from {sorted(BEYOND_METHODS)}"
            )
    if DEFAULT_GAN not in config.gan.presets:
        raise ZspaceError(f'gan.presets must include "{DEFAULT_GAN}" (the interpolations use it)')
    for name in config.translation.methods:
        if name not in METHODS:
            raise ZspaceError(f"translation: unknown method {name!r}; choose from {list(METHODS)}")
    for name in config.translation.all_pairs_methods:
        if name not in LEARNED_METHODS:
            raise ZspaceError(
                f"translation.all_pairs_methods: {name!r} is not a learned method; "
                f"choose from {list(LEARNED_METHODS)}"
            )
    if config.translation.pairs_per_end > 22:
        raise ZspaceError("translation.pairs_per_end must be at most 22 (45 pairs in all)")
    if config.flow.preset is not None and config.flow.preset not in FLOW_PRESETS:
        raise ZspaceError(
            f"unknown flow preset {config.flow.preset!r}; choose from {sorted(FLOW_PRESETS)}"
        )


def _check_ranges(config: StudyConfig) -> None:
    if config.autoencoder.learning_rate <= 0:
        raise ZspaceError("autoencoder.learning_rate must be positive")
    if any(n < 1 for n in config.fewshot.label_sweep):
        raise ZspaceError("fewshot.label_sweep must hold label counts >= 1")
    if config.interpolation.steps < 2:
        raise ZspaceError("interpolation.steps must be at least 2")
    if config.evaluation.pixel_gan_budget_factor <= 0:
        raise ZspaceError("evaluation.pixel_gan_budget_factor must be positive")
    if config.flow.time_budget < 0:
        raise ZspaceError(
            f"flow.time_budget must be >= 0 (0: no budget), got {config.flow.time_budget}"
        )


def load_study_config(
    path: str | Path | None = None, quick: bool = False, full: bool = False
) -> StudyConfig:
    """Defaults, then `--quick` and `--full` overrides, then the TOML file; validated."""
    config = StudyConfig()
    if quick:
        _apply(config, quick_overrides())
    if full:
        _apply(config, full_overrides())
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ZspaceError(f"config file {path} does not exist")
        try:
            values = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ZspaceError(f"{path} is not valid TOML ({error})") from error
        _apply(config, values)
    _validate(config)
    return config


def config_to_toml(config: StudyConfig) -> str:
    """The effective config as TOML (what `--print-config` shows and the run folder keeps)."""
    lines = [f"seed = {config.seed}", ""]
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        lines.append(f"[{section.name}]")
        for item in dataclasses.fields(value):
            setting = getattr(value, item.name)
            if setting is None:
                lines.append(f"# {item.name} is not set")
            else:
                lines.append(f"{item.name} = {json.dumps(setting)}")
        lines.append("")
    return "\n".join(lines)
