"""The preset tables: named architectures for autoencoders and GANs.

A preset is a name for a set of sizes. Autoencoder presets name an encoder, a decoder and
config overrides; GAN presets name architecture settings (for `GANConfig`) and optimisation
settings (for the training config, `zspace.training.gan.GANTrainingConfig`) separately, so
that a model config holds architecture only. How the GAN presets were chosen is written up in
docs/gan-experiments.md.
"""

from __future__ import annotations

import copy

from torch import nn

from zspace.errors import ZspaceError
from zspace.models.encoders import (
    AutoencoderConfig,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
)
from zspace.models.transformer import (
    TransformerEncoder,
    TransformerOptions,
    build_decoder,
)

TRANSFORMER_PRESETS = {
    "transformer": {},
    "transformer-nopos": {"positional": "none"},
    "transformer-learned": {"positional": "learned"},
    "transformer-patch7": {"patch": 7},
}


# preset name -> (encoder class, decoder class, config overrides)
AE_PRESETS: dict[str, tuple[type[nn.Module], type[nn.Module], dict]] = {
    "mlp": (MLPEncoder, MLPDecoder, {"hidden_dims": [512, 256]}),
    "mlp-wide": (MLPEncoder, MLPDecoder, {"hidden_dims": [1024, 512]}),
    "conv": (ConvEncoder, ConvDecoder, {"channels": [24, 48]}),
    "conv-wide": (ConvEncoder, ConvDecoder, {"channels": [32, 64]}),
    # The conv network, trained with a contrastive term so that its codes carry the classes
    # (AE_TRAINING_DEFAULTS below; issue 16's label-free preset).
    "conv-contrastive": (ConvEncoder, ConvDecoder, {"channels": [24, 48]}),
    **{
        # The transformer presets share the conv decoder (unless their options say otherwise),
        # so that preset comparisons differ in the encoder only.
        name: (
            TransformerEncoder,
            build_decoder,
            {"channels": [24, 48], "extra": TransformerOptions(**changes).to_extra()},
        )
        for name, changes in TRANSFORMER_PRESETS.items()
    },
}
DEFAULT_AE_PRESET = "conv"
# Training settings a preset changes (AETrainingConfig fields); flags given still win.
AE_TRAINING_DEFAULTS: dict[str, dict] = {
    "conv-contrastive": {
        "contrastive_weight": 0.1,
        "contrastive_temperature": 0.3,
        "batch_size": 256,
        "epochs": 4,  # about 165 s on 2 cores: inside the 3-minute budget
    },
}


def ae_training_defaults(name: str) -> dict:
    """The training settings preset `name` changes from AETrainingConfig's defaults."""
    return dict(AE_TRAINING_DEFAULTS.get(name, {}))


def ae_config_for_preset(name: str, latent_dim: int = 64, **overrides) -> AutoencoderConfig:
    """The config a preset name stands for, with optional overrides."""
    if name not in AE_PRESETS:
        raise ZspaceError(f"unknown autoencoder preset {name!r}; choose from {sorted(AE_PRESETS)}")
    if latent_dim < 1:
        raise ZspaceError(f"latent_dim must be at least 1, got {latent_dim}")
    # Deep copy: configs must never share (and so mutate) a preset's lists and dicts.
    values = copy.deepcopy(
        {"preset": name, "latent_dim": latent_dim, **AE_PRESETS[name][2], **overrides}
    )
    return AutoencoderConfig(**values)


def preset_names() -> list[str]:
    """Every autoencoder preset name."""
    return sorted(AE_PRESETS)


def is_transformer_preset(name: str) -> bool:
    return name in TRANSFORMER_PRESETS


def transformer_config(
    preset: str = "transformer", latent_dim: int = 64, **options
) -> AutoencoderConfig:
    """Config of a transformer preset with some options changed, e.g.
    `transformer_config(positional="none", depth=3)`; ZspaceError on a bad option."""
    if preset not in TRANSFORMER_PRESETS:
        raise ZspaceError(
            f"{preset!r} is not a transformer preset; choose from {sorted(TRANSFORMER_PRESETS)}"
        )
    base = ae_config_for_preset(preset, latent_dim)
    merged = TransformerOptions.from_extra({**base.extra, **options})
    base.extra = merged.to_extra()  # a fresh dict: the registered preset stays untouched
    return base


# GAN presets: name -> {"model": GANConfig settings, "training": GANTrainingConfig settings}.
# The dataclass defaults are the reference study's design. Measurements: docs/gan-experiments.md.
_WIDE_MODEL = {
    "discriminator_output": "identity",
    "generator_layers": [[256, "leaky_relu"], [512, "leaky_relu"], [512, "leaky_relu"]],
    "discriminator_layers": [[512, "leaky_relu"], [512, "leaky_relu"], [256, "leaky_relu"]],
    "conditioning": "projection",
}
_STANDARDISED = {"standardize": True}
# Many more steps per second (batch 512 at 5x the learning rate), Adam with beta1 = 0 and an
# EMA of G's weights for sampling.
_MANY_STEPS = {
    **_STANDARDISED,
    "batch_size": 512,
    "learning_rate_g": 1e-3,
    "learning_rate_d": 1e-3,
    "betas": [0.0, 0.99],
    "ema_decay": 0.999,
}
_LIGHT_LAZY_R1 = {**_MANY_STEPS, "r1_weight": 0.1, "r1_interval": 16}
GAN_PRESETS: dict[str, dict[str, dict]] = {
    "reference": {"model": {}, "training": {}},
    # The reference networks, but trained on standardised codes.
    "reference-std": {"model": {}, "training": _STANDARDISED},
    # Leaky-ReLU MLPs with a wider D, non-saturating BCE, projection D, standardised codes.
    "wide": {"model": _WIDE_MODEL, "training": _STANDARDISED},
    # The same with the label concatenated to D's input, as in the reference.
    "wide-concat": {"model": {**_WIDE_MODEL, "conditioning": "concat"}, "training": _STANDARDISED},
    "wide-acgan": {
        "model": {**_WIDE_MODEL, "auxiliary_classifier": True},
        "training": {**_STANDARDISED, "auxiliary_weight": 0.5},
    },
    "wide-smooth": {"model": _WIDE_MODEL, "training": {**_STANDARDISED, "real_label": 0.9}},
    "wide-sn": {
        "model": {**_WIDE_MODEL, "spectral_norm": True},
        "training": {**_STANDARDISED, "learning_rate_d": 4e-4},
    },
    "wide-hinge": {
        "model": {**_WIDE_MODEL, "spectral_norm": True},
        "training": {**_STANDARDISED, "loss": "hinge", "learning_rate_d": 4e-4},
    },
    "wide-ema": {"model": _WIDE_MODEL, "training": _MANY_STEPS},
    # ... plus a light, lazy R1 penalty on D: the best measured (20 epochs).
    "wide-r1": {"model": _WIDE_MODEL, "training": _LIGHT_LAZY_R1},
    # wide-r1 learning a correction to one Gaussian per digit: far better after few epochs.
    "wide-gaussian": {"model": {**_WIDE_MODEL, "base": "gaussian"}, "training": _LIGHT_LAZY_R1},
}
DEFAULT_GAN_PRESET = "wide-r1"


def gan_preset(name: str, part: str) -> dict:
    """A deep copy of one part ("model" or "training") of a GAN preset's settings."""
    if name not in GAN_PRESETS:
        raise ZspaceError(f"unknown GAN preset {name!r}; choose from {sorted(GAN_PRESETS)}")
    # A deep copy, so that editing a config's lists never edits the preset.
    return copy.deepcopy(GAN_PRESETS[name][part])
