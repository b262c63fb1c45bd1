"""Generator and discriminator MLPs for GANs over latent codes (or raw pixels).

Both networks are plain `nn.Module`s built from a `GANConfig` (architecture only), which is
saved as JSON in the run folder. G maps noise (B, noise_dim) to standardised data (B, data_dim); D maps data to one score
per row. A conditional GAN concatenates a one-hot label to the inputs of both networks (Mirza &
Osindero 2014); one-hot rather than a learned embedding so that a label can be interpolated.

`CodeScaler` holds the per-dimension mean and scale that turn raw data (AE codes, or pixels in
[0, 1]) into what the networks see, so that samples are always returned in data space.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from zspace import config_checks as check
from zspace.errors import ZspaceError
from zspace.models.presets import gan_preset

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "identity": lambda: nn.Identity(),
}
BASES = ("none", "gaussian")


# Settings that zspace 0.1.0 kept in the model config and now keeps in the training config.
LEGACY_TRAINING_KEYS = (
    "loss",
    "real_label",
    "standardize",
    "auxiliary_weight",
    "learning_rate_g",
    "learning_rate_d",
    "betas",
    "batch_size",
    "lr_schedule",
    "d_steps",
    "r1_weight",
    "r1_interval",
    "ema_decay",
)


@dataclass
class GANConfig:
    """The architecture of a generator/discriminator pair: everything needed to rebuild them.

    `generator_layers` / `discriminator_layers` are the hidden layers as [width, activation]
    pairs; each network ends in a Linear to its output (data_dim for G, 1 for D). How the pair
    is trained lives in `zspace.training.gan.GANTrainingConfig`.
    """

    preset: str = "reference"
    noise_dim: int = 64
    # What G generates and D judges: the AE's latent_dim, or 784 for the pixel-space GAN.
    data_dim: int = 64
    conditional: bool = False
    num_classes: int = 10
    generator_layers: list = field(
        default_factory=lambda: [[256, "relu"], [512, "relu"], [512, "tanh"], [256, "sigmoid"]]
    )
    generator_output: str = "identity"
    discriminator_layers: list = field(
        default_factory=lambda: [[64, "relu"], [128, "relu"], [256, "relu"]]
    )
    # "sigmoid": D(x) is the probability that x is real (the reference); "identity": a raw score.
    discriminator_output: str = "sigmoid"
    spectral_norm: bool = False
    # How D sees the label: "concat" (one-hot joined to its input) or "projection" (Miyato &
    # Koyama 2018: a label embedding dotted with D's last hidden features).
    conditioning: str = "concat"
    # AC-GAN (Odena et al. 2017): D also has a head that classifies its input's digit.
    auxiliary_classifier: bool = False
    # "gaussian": G learns a correction to a Gaussian fitted to the (standardised) training
    # data, one per digit when conditional: x = mean_y + L_y (noise + G(noise, y)), L_y the
    # Cholesky factor of digit y's covariance. G's last layer starts at zero, so training
    # starts from the Gaussian baseline and only has to learn where the data is not Gaussian.
    # Needs noise_dim == data_dim. "none": x = G(noise, y), as in the reference.
    base: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        self.validate()

    @classmethod
    def from_dict(cls, data: dict) -> GANConfig:
        """The config from its JSON form; ZspaceError on unknown keys or values of the wrong
        type. Accepts the 0.1.0 form too (see `split_legacy_gan_config`)."""
        data, _ = split_legacy_gan_config(check.mapping("a GAN model config", data))
        return cls(**check.known_keys_only("GAN config", data, cls))

    def validate(self) -> None:
        check.text("GAN preset", self.preset)
        check.whole_number("GAN noise_dim", self.noise_dim, 1, check.MAX_LATENT_DIM)
        check.whole_number("GAN data_dim", self.data_dim, 1, check.MAX_LATENT_DIM)
        check.whole_number("GAN num_classes", self.num_classes, 1, check.MAX_CLASSES)
        for name in ("conditional", "spectral_norm", "auxiliary_classifier"):
            check.flag(f"GAN {name}", getattr(self, name))
        _check_layers("GAN generator_layers", self.generator_layers)
        _check_layers("GAN discriminator_layers", self.discriminator_layers)
        check.choice("GAN generator_output", self.generator_output, ACTIVATIONS)
        check.choice("GAN discriminator_output", self.discriminator_output, ACTIVATIONS)
        check.choice("GAN conditioning", self.conditioning, ("concat", "projection"))
        check.choice("GAN base", self.base, BASES)
        if self.base != "none" and self.noise_dim != self.data_dim:
            raise ZspaceError(
                f"base {self.base!r} needs noise_dim == data_dim, got {self.noise_dim} and "
                f"{self.data_dim}"
            )

    @property
    def label_dim(self) -> int:
        return self.num_classes if self.conditional else 0


def _check_layers(name: str, layers) -> None:
    """Hidden layers as a list of [width, activation] pairs."""
    if not isinstance(layers, list) or len(layers) > check.MAX_LAYERS:
        raise ZspaceError(
            f"{name} must be a list of at most {check.MAX_LAYERS} [width, activation] pairs, "
            f"got {check.shown(layers)}"
        )
    for layer in layers:
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise ZspaceError(f"bad {name} entry {check.shown(layer)}; want [width, activation]")
        check.whole_number(f"{name} width", layer[0], 1, check.MAX_WIDTH)
        check.choice(f"{name} activation", layer[1], ACTIVATIONS)


def split_legacy_gan_config(data: dict) -> tuple[dict, dict]:
    """(architecture settings, training settings) from a model config that may be in the 0.1.0
    form, which mixed learning rates, batch size, R1 and EMA into the architecture."""
    model = {k: v for k, v in data.items() if k not in LEGACY_TRAINING_KEYS}
    training = {k: data[k] for k in LEGACY_TRAINING_KEYS if k in data}
    if "auxiliary_weight" in training and "auxiliary_classifier" not in model:
        weight = training["auxiliary_weight"]
        # a weight that is not a number is refused by the training config's checks
        model["auxiliary_classifier"] = isinstance(weight, (int, float)) and weight > 0
    return model, training


def config_for_preset(
    name: str, data_dim: int = 64, conditional: bool = False, **overrides
) -> GANConfig:
    """The architecture a GAN preset name stands for, with optional overrides."""
    settings = {**gan_preset(name, "model"), **overrides}
    unknown = set(settings) - {f.name for f in fields(GANConfig)}
    if unknown:
        raise ZspaceError(f"unknown GAN config keys: {sorted(unknown)} (architecture only)")
    config = GANConfig(preset=name, data_dim=data_dim, conditional=conditional, **settings)
    config.validate()
    return config


def _mlp(
    in_dim: int, layers: list, out_dim: int, out_activation: str, spectral: bool
) -> nn.Sequential:
    """Linear + activation per hidden layer, then Linear to out_dim (+ output activation)."""
    modules: list[nn.Module] = []
    dims = [in_dim, *[int(width) for width, _ in layers], out_dim]
    activations = [name for _, name in layers] + [out_activation]
    for a, b, activation in zip(dims[:-1], dims[1:], activations):
        linear = nn.Linear(a, b)
        modules.append(add_spectral_norm(linear) if spectral else linear)
        if activation != "identity":
            modules.append(ACTIVATIONS[activation]())
    return nn.Sequential(*modules)


def one_hot(labels: torch.Tensor | None, num_classes: int) -> torch.Tensor | None:
    if labels is None:
        return None
    if labels.dtype.is_floating_point:  # already a (soft) one-hot, e.g. an interpolated label
        return labels
    return nn.functional.one_hot(labels, num_classes).float()


class _Conditioned(nn.Module):
    """Concatenate the one-hot label (when conditional) to the input of an MLP."""

    config: GANConfig
    layers: nn.Sequential

    def _input(self, inputs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if not self.config.conditional:
            if labels is not None:
                raise ZspaceError("this GAN is unconditional; it takes no labels")
            return inputs
        if labels is None:
            raise ZspaceError("this GAN is conditional; pass a label for every row")
        return torch.cat([inputs, one_hot(labels, self.config.num_classes).to(inputs)], dim=1)


class Generator(_Conditioned):
    """(B, noise_dim) noise [+ labels] -> (B, data_dim) standardised data."""

    def __init__(self, config: GANConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.layers = _mlp(
            config.noise_dim + config.label_dim,
            config.generator_layers,
            config.data_dim,
            config.generator_output,
            spectral=False,
        )
        if config.base == "gaussian":
            groups = config.num_classes if config.conditional else 1
            eye = torch.eye(config.data_dim).expand(groups, -1, -1).clone()
            self.register_buffer("base_mean", torch.zeros(groups, config.data_dim))
            self.register_buffer("base_factor", eye)  # Cholesky factors, (groups, D, D)
            last = self.layers[-1] if isinstance(self.layers[-1], nn.Linear) else None
            if last is not None:
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    @torch.no_grad()
    def fit_base(self, data: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Fit the Gaussian base to (standardised) training data, per digit when conditional."""
        if self.config.base == "none":
            return
        groups = (
            [data]
            if not self.config.conditional
            else [data[labels == c] for c in range(self.config.num_classes)]
        )
        for index, rows in enumerate(groups):
            if len(rows) < 2:
                raise ZspaceError(
                    f"the Gaussian base needs data for every digit ({index} has none)"
                )
            mean = rows.mean(0)
            centred = rows - mean
            covariance = centred.T @ centred / (len(rows) - 1)
            covariance += 1e-4 * torch.eye(len(mean), device=rows.device)  # never singular
            self.base_mean[index] = mean
            self.base_factor[index] = torch.linalg.cholesky(covariance)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        output = self.layers(self._input(noise, labels))
        if self.config.base == "none":
            return output
        residual = noise + output
        if not self.config.conditional:
            return self.base_mean[0] + residual @ self.base_factor[0].T
        weights = one_hot(labels, self.config.num_classes).to(residual)  # (B, C), maybe soft
        mean = weights @ self.base_mean
        if labels.dtype.is_floating_point:  # a soft label mixes the factors
            factor = torch.einsum("bc,cij->bij", weights, self.base_factor)
            return mean + torch.einsum("bij,bj->bi", factor, residual)
        # Integer labels: one matrix product per digit present instead of a (B, D, D) gather.
        result = torch.empty_like(residual)
        for digit in labels.unique().tolist():
            rows = labels == digit
            result[rows] = residual[rows] @ self.base_factor[digit].T
        return mean + result


class Discriminator(_Conditioned):
    """(B, data_dim) standardised data [+ labels] -> (B,) scores.

    `forward` applies the configured output activation (so the reference D returns the
    probability that a code is real); `logits` stops before it, which the losses use because
    BCE on logits equals BCE on sigmoid probabilities without the numerical trouble.
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        config.validate()
        self.config = config
        projection = config.conditional and config.conditioning == "projection"
        in_dim = config.data_dim + (0 if projection else config.label_dim)
        self.layers = _mlp(
            in_dim,
            config.discriminator_layers,
            1,
            config.discriminator_output,
            spectral=config.spectral_norm,
        )
        # Index of the final Linear: everything before it yields the features phi(x).
        self._head = len(self.layers) - (1 if config.discriminator_output == "identity" else 2)
        width = int(config.discriminator_layers[-1][0]) if config.discriminator_layers else in_dim
        self.embedding = nn.Embedding(config.num_classes, width) if projection else None
        self.classifier = None
        if config.conditional and config.auxiliary_classifier:
            self.classifier = nn.Linear(width, config.num_classes)

    def scores(
        self, data: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real/fake logits (B,), class logits (B, num_classes) or None)."""
        if self.embedding is not None:
            self._input(data, labels)  # checks that labels are given
            hidden = data
        else:
            hidden = self._input(data, labels)
        for module in self.layers[: self._head]:
            hidden = module(hidden)
        logits = self.layers[self._head](hidden).squeeze(1)
        if self.embedding is not None:
            label_vectors = one_hot(labels, self.config.num_classes).to(hidden)
            logits = logits + (label_vectors @ self.embedding.weight * hidden).sum(1)
        classes = None if self.classifier is None else self.classifier(hidden)
        return logits, classes

    def logits(self, data: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.scores(data, labels)[0]

    def forward(self, data: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.logits(data, labels)
        if self.config.discriminator_output == "identity":
            return logits
        return self.layers[-1](logits)


class CodeScaler(nn.Module):
    """Per-dimension affine map between raw data and what the GAN sees: (x - mean) / scale."""

    def __init__(self, data_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(data_dim))
        self.register_buffer("scale", torch.ones(data_dim))

    def fit(self, data: torch.Tensor, per_dimension: bool = True) -> CodeScaler:
        """Set mean and scale from training data (per dimension, or one number for all)."""
        if per_dimension:
            mean, scale = data.mean(0), data.std(0)
        else:
            mean = data.mean().expand(data.shape[1])
            scale = data.std().expand(data.shape[1])
        self.mean.copy_(mean)
        self.scale.copy_(scale.clamp_min(1e-6))
        return self

    def set(self, mean: float, scale: float) -> CodeScaler:
        self.mean.fill_(mean)
        self.scale.fill_(scale)
        return self

    def forward(self, data: torch.Tensor) -> torch.Tensor:
        return (data - self.mean) / self.scale

    def inverse(self, standardized: torch.Tensor) -> torch.Tensor:
        return standardized * self.scale + self.mean
