"""The graphs `zspace export` writes, as plain `nn.Module`s that compute what the library
computes, each with a description of its inputs and outputs and the library call it must match.

The modules use only operations that trace to a static graph: no Python branch on a tensor's
values and no randomness (a sampler's noise is an input). A conditional generator's label
enters as a row lookup (the one-hot label's columns of G's first Linear, plus its bias, one row
per digit), which is the same arithmetic as concatenating the one-hot label, and is also how
`GANSampler.images` computes it on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from zspace.errors import ZspaceError
from zspace.fewshot.classify import SavedClassifier
from zspace.fewshot.deskew import _deskew_batch
from zspace.models.autoencoder import Autoencoder
from zspace.models.images import IMAGE_SIZE
from zspace.runs import AUTOENCODER, CLASSIFIER, LATENT_GAN, PIXEL_GAN
from zspace.sampling.gan import GANSampler
from zspace.sampling.latent import decode_codes, encode_images

BATCH = "batch"  # the name of every graph's dynamic first dimension
IMAGE_SHAPE = (BATCH, 1, IMAGE_SIZE, IMAGE_SIZE)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported graph, as export.json describes it."""

    name: str
    shape: tuple
    dtype: str  # "float32" or "int64"
    range: tuple[float, float] | None  # closed [low, high], or None: any value
    description: str

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "range": None if self.range is None else list(self.range),
            "description": self.description,
        }

    def example(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """`rows` test inputs: uniform over a float range, standard normal without one, and
        uniform whole numbers over an int64 range."""
        shape = (rows, *self.shape[1:])
        if self.dtype == "int64":
            low, high = self.range
            return torch.randint(int(low), int(high) + 1, shape, generator=generator)
        if self.range is None:
            return torch.randn(shape, generator=generator)
        low, high = self.range
        return low + (high - low) * torch.rand(shape, generator=generator)


@dataclass
class Graph:
    """A module to export, its inputs and outputs, and the library call it must reproduce.

    `reference` takes the same tensors as `module` and returns the library's answer for every
    output, in order; the export is checked against it."""

    name: str  # the file is NAME.onnx
    module: nn.Module
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    reference: Callable[..., tuple[torch.Tensor, ...]]
    computes: str
    notes: dict = field(default_factory=dict)  # more export.json entries for this graph

    def examples(self, rows: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(seed)
        return tuple(spec.example(rows, generator) for spec in self.inputs)


IMAGES_DESCRIPTION = (
    "MNIST-style digits: light ink on a dark background, 0 = background, 1 = full ink"
)


def autoencoder_graphs(autoencoder: Autoencoder) -> list[Graph]:
    """encoder: images -> codes, decoder: codes -> images (the autoencoder's own modules)."""
    autoencoder.eval()
    latent = autoencoder.latent_dim
    images = TensorSpec("images", IMAGE_SHAPE, "float32", (0.0, 1.0), IMAGES_DESCRIPTION)
    codes = TensorSpec(
        "codes", (BATCH, latent), "float32", None, "latent codes (unbounded real numbers)"
    )
    decoded = TensorSpec("images", IMAGE_SHAPE, "float32", (0.0, 1.0), "decoded digits")
    return [
        Graph(
            "encoder",
            autoencoder.encoder,
            (images,),
            (codes,),
            lambda x: (encode_images(autoencoder, x),),
            "zspace.sampling.latent.encode_images (Autoencoder.encode)",
        ),
        Graph(
            "decoder",
            autoencoder.decoder,
            (codes,),
            (decoded,),
            lambda z: (decode_codes(autoencoder, z),),
            "zspace.sampling.latent.decode_codes (Autoencoder.decode)",
        ),
    ]


class SamplerGraph(nn.Module):
    """noise (B, noise_dim) [+ label (B,) int64] -> images (B, 1, 28, 28) in [0, 1]: what
    `GANSampler.images` computes (generator, code scaler inverse, then the decoder, or for a
    pixel GAN a clamp to [0, 1] and a reshape)."""

    def __init__(self, sampler: GANSampler):
        super().__init__()
        config = sampler.config
        layers = list(sampler.generator.layers)
        first = layers[0]
        if not isinstance(first, nn.Linear):
            raise ZspaceError(f"zspace export does not know a generator starting in {first}")
        weight, bias = first.weight.detach(), first.bias.detach()
        self.conditional = config.conditional
        self.gaussian_base = config.base == "gaussian"
        self.register_buffer("noise_weight", weight[:, : config.noise_dim].clone())
        # One row per digit: its one-hot column of the first Linear plus the bias.
        label_bias = weight[:, config.noise_dim :].t() + bias if self.conditional else bias[None]
        self.register_buffer("label_bias", label_bias.clone())
        self.hidden = nn.Sequential(*layers[1:])
        if self.gaussian_base:
            self.register_buffer("base_mean", sampler.generator.base_mean.detach().clone())
            self.register_buffer("base_factor", sampler.generator.base_factor.detach().clone())
        self.register_buffer("scale", sampler.scaler.scale.detach().clone())
        self.register_buffer("mean", sampler.scaler.mean.detach().clone())
        self.decoder = None if sampler.autoencoder is None else sampler.autoencoder.decoder
        self.eval()

    def forward(self, noise: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        row_bias = self.label_bias[label] if self.conditional else self.label_bias[0]
        standardised = self.hidden(F.linear(noise, self.noise_weight) + row_bias)
        if self.gaussian_base:  # x = mean_y + L_y (noise + G(noise, y)), see GANConfig.base
            residual = noise + standardised
            if self.conditional:
                factor = self.base_factor[label]  # (B, D, D)
                moved = torch.matmul(factor, residual.unsqueeze(-1)).squeeze(-1)
                standardised = self.base_mean[label] + moved
            else:
                standardised = self.base_mean[0] + residual @ self.base_factor[0].t()
        codes = standardised * self.scale + self.mean
        if self.decoder is None:  # a pixel GAN's outputs are the pixels
            return codes.clamp(0, 1).reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE)
        return self.decoder(codes)


def sampler_graph(sampler: GANSampler) -> Graph:
    config = sampler.config
    noise = TensorSpec(
        "noise",
        (BATCH, config.noise_dim),
        "float32",
        None,
        "the generator's noise: zspace draws each entry from a standard normal distribution "
        "(any real values are accepted; the graph draws nothing itself)",
    )
    inputs = [noise]
    if config.conditional:
        inputs.append(
            TensorSpec(
                "label",
                (BATCH,),
                "int64",
                (0.0, float(config.num_classes - 1)),
                "the digit to draw, one per noise row; values outside 0..9 are an error "
                "(ONNX Gather reads -10..-1 as counted from the end)",
            )
        )
    images = TensorSpec("images", IMAGE_SHAPE, "float32", (0.0, 1.0), "the drawn digits")

    def reference(noise, label=None):
        return (sampler.images(noise, label),)

    notes = {}
    if not config.conditional:
        notes["label"] = (
            "this run is unconditional: the graph has no label input (ONNX Runtime refuses a "
            "feed named label)"
        )
    return Graph(
        "sampler",
        SamplerGraph(sampler),
        tuple(inputs),
        (images,),
        reference,
        "zspace.sampling.gan.GANSampler.images(noise, labels): generator, code scaler "
        "inverse, then the decoder (pixel GAN: clamp to [0, 1] and reshape)",
        notes,
    )


class ClassifierGraph(nn.Module):
    """images (B, 1, 28, 28) in [0, 1] -> (logits, probabilities) (B, num_classes): the
    classifier's deskewing (when its config asks for it), its CNN, and a softmax."""

    def __init__(self, classifier: SavedClassifier):
        super().__init__()
        self.model = classifier.model.eval()
        self.deskew = bool(classifier.model.config.deskew)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.deskew:
            images = _deskew_batch(images)
        logits = self.model(images)
        return logits, torch.softmax(logits, dim=1)


def classifier_graph(classifier: SavedClassifier) -> Graph:
    classes = classifier.model.config.num_classes
    images = TensorSpec(
        "images",
        IMAGE_SHAPE,
        "float32",
        (0.0, 1.0),
        IMAGES_DESCRIPTION + ", centred in the 28x28 field as MNIST is (zspace's "
        "prepare_image does this to a photo or drawing; the graph does not)",
    )
    logits = TensorSpec(
        "logits", (BATCH, classes), "float32", None, "unnormalised scores, one per digit"
    )
    probabilities = TensorSpec(
        "probabilities",
        (BATCH, classes),
        "float32",
        (0.0, 1.0),
        "softmax of the logits (each row sums to 1); the answer is the argmax",
    )
    graph_module = ClassifierGraph(classifier)

    @torch.no_grad()
    def reference(x):
        deskewed = _deskew_batch(x) if graph_module.deskew else x
        return classifier.model(deskewed), classifier.classify(x)[1]

    return Graph(
        "classifier",
        graph_module,
        (images,),
        (logits, probabilities),
        reference,
        "zspace.fewshot.classify.SavedClassifier.classify (deskew if configured, CNN, "
        "softmax); logits are the CNN's output before the softmax",
    )


def graphs_for(kind: str, model) -> list[Graph]:
    """The graphs that stand for a loaded run of `kind`; ZspaceError for one zspace cannot
    export."""
    if kind == AUTOENCODER:
        return autoencoder_graphs(model)
    if kind == CLASSIFIER:
        return [classifier_graph(model)]
    if not getattr(model, "has_noise", False):
        raise ZspaceError(
            f"a {kind} run has no noise space, so it has no sampler graph to export; "
            "export its autoencoder run for the decoder"
        )
    if kind in (LATENT_GAN, PIXEL_GAN) and isinstance(model, GANSampler):
        return [sampler_graph(model)]
    raise ZspaceError(f"zspace export does not know how to export a {kind} run")
