"""Generator and discriminator MLPs for GANs over latent codes (or raw pixels).

Both networks are plain `nn.Module`s built from a `GANConfig`, which is saved as JSON in the run
folder. G maps noise (B, noise_dim) to standardised data (B, data_dim); D maps data to one score
per row. A conditional GAN concatenates a one-hot label to the inputs of both networks (Mirza &
Osindero 2014); one-hot rather than a learned embedding so that a label can be interpolated.

`CodeScaler` holds the per-dimension mean and scale that turn raw data (AE codes, or pixels in
[0, 1]) into what the networks see, so that samples are always returned in data space.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from zspace.errors import ZspaceError

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "identity": lambda: nn.Identity(),
}
LOSSES = ("bce", "minimax", "hinge")
LR_SCHEDULES = ("constant", "linear")
BASES = ("none", "gaussian")


@dataclass
class GANConfig:
    """Everything needed to rebuild a generator/discriminator pair and know how it was trained.

    `generator_layers` / `discriminator_layers` are the hidden layers as [width, activation]
    pairs; each network ends in a Linear to its output (data_dim for G, 1 for D).
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
    # AC-GAN (Odena et al. 2017): D also classifies real data; G is rewarded when its samples
    # are classified as the requested digit. The weight of that cross-entropy (0: off).
    auxiliary_weight: float = 0.0
    # bce: D by binary cross-entropy, G by BCE against "real" (the non-saturating loss that
    # almost every BCE implementation uses); minimax: G minimises log(1 - D(G(z))), the
    # saturating loss of Goodfellow et al. 2014; hinge: Lim & Ye 2017 / Miyato et al. 2018.
    loss: str = "bce"
    # One-sided label smoothing: D's target for real data (Salimans et al. 2016).
    real_label: float = 1.0
    # Standardise the training data per dimension before the GAN sees it.
    standardize: bool = False
    learning_rate_g: float = 2e-4
    learning_rate_d: float = 2e-4
    betas: list = field(default_factory=lambda: [0.5, 0.999])
    batch_size: int = 128
    # "constant", or "linear": both learning rates fall linearly to 0 over the run's epochs.
    lr_schedule: str = "constant"
    # D updates per G update (each on a fresh real batch), as in WGAN-style training.
    d_steps: int = 1
    # R1 penalty (Mescheder et al. 2018): r1_weight / 2 * E ||grad_x D(x)||^2 on real data.
    r1_weight: float = 0.0
    # Lazy R1 (Karras et al. 2020): the penalty on every r1_interval-th D step only, scaled by
    # r1_interval so that its average strength stays the same; it is the costliest part of a
    # D step (a second backward pass).
    r1_interval: int = 1
    # Exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019), used
    # for sampling; 0 turns it off. Its weights are saved as generator_ema.safetensors.
    ema_decay: float = 0.0
    # "gaussian": G learns a correction to a Gaussian fitted to the (standardised) training
    # data, one per digit when conditional: x = mean_y + L_y (noise + G(noise, y)), L_y the
    # Cholesky factor of digit y's covariance. G's last layer starts at zero, so training
    # starts from the Gaussian baseline and only has to learn where the data is not Gaussian.
    # Needs noise_dim == data_dim. "none": x = G(noise, y), as in the reference.
    base: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GANConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ZspaceError(f"unknown GAN config keys: {sorted(unknown)}")
        return cls(**data)

    def validate(self) -> None:
        for width, activation in [*self.generator_layers, *self.discriminator_layers]:
            if int(width) < 1 or activation not in ACTIVATIONS:
                raise ZspaceError(f"bad GAN layer [{width}, {activation!r}]")
        for name in (self.generator_output, self.discriminator_output):
            if name not in ACTIVATIONS:
                raise ZspaceError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")
        if self.loss not in LOSSES:
            raise ZspaceError(f"unknown GAN loss {self.loss!r}; choose from {LOSSES}")
        if self.loss == "hinge" and self.discriminator_output != "identity":
            raise ZspaceError("the hinge loss needs discriminator_output 'identity'")
        if self.conditioning not in ("concat", "projection"):
            raise ZspaceError(
                f"conditioning must be concat or projection, got {self.conditioning!r}"
            )
        if self.auxiliary_weight < 0 or self.r1_weight < 0:
            raise ZspaceError("auxiliary_weight and r1_weight must be >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ZspaceError(
                f"unknown lr_schedule {self.lr_schedule!r}; choose from {LR_SCHEDULES}"
            )
        if self.r1_interval < 1:
            raise ZspaceError(f"r1_interval must be at least 1, got {self.r1_interval}")
        if self.d_steps < 1:
            raise ZspaceError(f"d_steps must be at least 1, got {self.d_steps}")
        if not 0 <= self.ema_decay < 1:
            raise ZspaceError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.base not in BASES:
            raise ZspaceError(f"unknown GAN base {self.base!r}; choose from {BASES}")
        if self.base != "none" and self.noise_dim != self.data_dim:
            raise ZspaceError(
                f"base {self.base!r} needs noise_dim == data_dim, got {self.noise_dim} and "
                f"{self.data_dim}"
            )
        if self.noise_dim < 1 or self.data_dim < 1 or self.batch_size < 1:
            raise ZspaceError("noise_dim, data_dim and batch_size must be at least 1")

    @property
    def label_dim(self) -> int:
        return self.num_classes if self.conditional else 0


_REFERENCE = {}  # the dataclass defaults are the reference study's design
# Chosen by measurement, round 1: conditional GANs on the codes of the default conv AE (5
# epochs), 2,000 samples (200 per digit) judged by the evaluation classifier, FD against
# 2,000 test images in its feature space (1 thread on a shared 2-core machine):
#   preset / change                      epochs  requested-digit acc   FD     recall
#   reference                              8        0.10 (collapse)     -      -
#   reference-std                          8        0.10 (collapse)     -      -
#   reference-std + AC-GAN (weight 1)      4        0.67              53.8    0.00
#   wide-concat                            4        0.18              60.2    0.00
#   wide-concat + AC-GAN (weight 1)        4        0.59              29.3    0.01
#   wide-hinge (SN, projection)            4        0.77              16.9    0.18
#   wide (projection)                      4        0.88              11.6    0.11
#   wide (projection)                      8        0.977              4.9    0.23
# The reference collapses to one image for every noise and label within the first epoch,
# standardised or not; D's logits on real codes grow without bound (about 25 by epoch 8).
# What fixes conditioning is the projection discriminator; what fixes collapse is dropping
# the saturating tanh/sigmoid hidden layers of G and giving D width (leaky ReLU).
#
# Round 2: the same networks, more and better optimiser steps. Conditional GANs on the codes
# of a 5-epoch conv AE, 10,000 samples (1,000 per digit); model selection by FD against
# 10,000 *training* images (the test column is shown for reference only, never to choose);
# CPU seconds of training (with encoding the training set) at 1 thread, shared machine:
#   wide + change (20 epochs unless noted)          acc     FD train  FD test  recall  CPU s
#   batch 512, lr 1e-3, EMA 0.999                  0.9935    1.96      1.77    0.32    131
#     + R1 1.0                                     0.9703    1.82      1.77    0.54    165
#     + linear lr decay to 0                       0.9920    2.64      2.45    0.29    133
#     + R1 1.0 + linear lr decay                   0.9700    2.06      2.01    0.54    165
#     + R1 0.1                                     0.9842    1.67      1.56    0.47    160
#     lr 2e-3                                      0.9903    2.43      2.23    0.33    128
#     2 D steps per G step                         0.9865    3.49      3.30    0.29    103
#   batch 512, lr 1e-3, EMA, Adam betas (0, 0.99)  0.9954    1.82      1.69    0.45    127
#     40 epochs                                    0.9989    1.86      1.75    0.49    252
#     batch 256, lr 5e-4                           0.9973    1.89      1.73    0.43    134
#     EMA without warm-up (decay 0.998)            0.9952    2.03      1.87    0.38    126
#     + R1 0.1  (wide-r1, the default)             0.9956    1.27      1.15    0.52    159
# (References on the same AE: test reconstructions FD 0.23; class-conditional Gaussian
# mixture K=4: FD 3.6, acc 0.94; K=10: FD 2.35, acc 0.964.) Many more steps per second (batch
# 512 at 5x the learning rate), the EMA of G's weights and Adam with beta1 = 0 each help;
# a light R1 penalty lifts recall and FD most; decaying the learning rate, a stronger R1 or
# extra D steps hurt. FD still stays well above the reconstructions' ceiling.
# Unconditional, FD against the test set (benchmarks/bench_gan.py): reference 147.9 (collapse),
# wide-r1 7.0.
#
# Round 3 (benchmarks/sweep_gan.py on an H200, 20 epochs unless noted; fd_train chooses):
#   wide-r1 + change                              acc     FD train  FD test  recall
#   none (wide-r1)                               0.9952    1.23      1.23    0.52
#   Gaussian base per digit (wide-gaussian)      0.9849    1.69      1.75    0.51
#     40 epochs                                  0.9925    1.24      1.24    0.54
#     R1 1.0 / R1 0.01                         0.97/0.98  1.93/1.99  2.08/2.00  0.55/0.46
#     lr 5e-4 / lr 2e-3                        0.97/0.99  2.26/1.63  2.38/1.69  0.50/0.52
#     hinge loss                                 0.9848    1.89      1.97    0.48
# The Gaussian base wins early (2 epochs on CPU: FD 5.7 against 17.7, recall 0.63 against
# 0.20) but not at convergence: what keeps FD above the ceiling is not a poor start.
#
# Round 4, time (benchmarks/sweep_gan.py on the 2-core CPU, 1 thread, default conv AE):
#   wide-r1 + change                    acc     FD train  FD test  recall  train s
#   R1 on every D step                 0.9939    1.15      1.12    0.52     160
#   lazy R1, every 4th step            0.9946    1.19      1.19    0.51     135
#   lazy R1, every 16th step           0.9938    1.17      1.14    0.52     125   (adopted)
#   lazy R1 every 4th, 15 epochs       0.9931    1.34      1.36    0.49     100
# For reference, decoding 10,000 *training* codes (a perfect sampler of the code distribution)
# scores FD 0.31 to 0.43 against the test set: the test-set reconstructions' 0.23 is paired
# image for image with the reference and so lower than any sampler can reach.
_BETTER = {
    "standardize": True,
    "discriminator_output": "identity",
    "generator_layers": [[256, "leaky_relu"], [512, "leaky_relu"], [512, "leaky_relu"]],
    "discriminator_layers": [[512, "leaky_relu"], [512, "leaky_relu"], [256, "leaky_relu"]],
    "conditioning": "projection",
}
_MANY_STEPS = {
    **_BETTER,
    "batch_size": 512,
    "learning_rate_g": 1e-3,
    "learning_rate_d": 1e-3,
    "betas": [0.0, 0.99],
    "ema_decay": 0.999,
}
PRESETS: dict[str, dict] = {
    "reference": _REFERENCE,
    # The reference networks, but trained on standardised codes.
    "reference-std": {"standardize": True},
    # Standardised codes, leaky-ReLU MLPs with a wider D, non-saturating BCE, projection D.
    "wide": {**_BETTER},
    # The same with the label concatenated to D's input, as in the reference.
    "wide-concat": {**_BETTER, "conditioning": "concat"},
    "wide-acgan": {**_BETTER, "auxiliary_weight": 0.5},
    "wide-smooth": {**_BETTER, "real_label": 0.9},
    "wide-sn": {**_BETTER, "spectral_norm": True, "learning_rate_d": 4e-4},
    "wide-hinge": {**_BETTER, "spectral_norm": True, "loss": "hinge", "learning_rate_d": 4e-4},
    # wide with batch 512, lr 1e-3, Adam betas (0, 0.99) and an EMA of G for sampling.
    "wide-ema": _MANY_STEPS,
    # ... plus a light, lazy R1 penalty on D: the best measured (20 epochs).
    "wide-r1": {**_MANY_STEPS, "r1_weight": 0.1, "r1_interval": 16},
    # wide-r1 learning a correction to one Gaussian per digit: far better after few epochs.
    "wide-gaussian": {**_MANY_STEPS, "r1_weight": 0.1, "r1_interval": 16, "base": "gaussian"},
}
DEFAULT_PRESET = "wide-r1"


def config_for_preset(
    name: str, data_dim: int = 64, conditional: bool = False, **overrides
) -> GANConfig:
    """The config a preset name stands for, with optional overrides."""
    if name not in PRESETS:
        raise ZspaceError(f"unknown GAN preset {name!r}; choose from {sorted(PRESETS)}")
    # Overrides win over the preset's own settings (the study config sets batch_size).
    # A deep copy, so that editing a config's lists never edits the preset.
    settings = copy.deepcopy({**PRESETS[name], **overrides})
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
        if config.conditional and config.auxiliary_weight > 0:
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
