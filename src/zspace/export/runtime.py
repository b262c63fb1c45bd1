"""A GAN sampler that draws its digits through ONNX Runtime (`zspace serve --engine onnxruntime`).

    sampler = with_engine(zspace.load("runs/cgan"), "onnxruntime")
    images = sampler.sample(digit=7, n=16, seed=3)     # the same digits, drawn by ONNX Runtime

The sampler graph is exported and checked against PyTorch when the sampler is built (as
`zspace export` does, a few seconds). Drawing digits (`images`, `sample_with_labels`,
`sample`) runs the graph; everything else (the noise, codes, soft-label paths, inversion) is
the PyTorch sampler's, so seeds mean what they always mean.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from zspace.errors import ZspaceError
from zspace.export.graphs import sampler_graph
from zspace.export.onnx_export import export_graph, onnxruntime_session, require_onnx
from zspace.models.images import IMAGE_SIZE
from zspace.sampling.gan import GANSampler
from zspace.sampling.sampler import check_sample_request, labels_for, requested_digits

ENGINES = ("pytorch", "onnxruntime")


def with_engine(sampler, engine: str = "pytorch", threads: int = 1):
    """`sampler` itself for "pytorch"; for "onnxruntime" an `OnnxRuntimeSampler` around it.
    One ZspaceError line for an unknown engine or a sampler that has no graph to run."""
    if engine not in ENGINES:
        raise ZspaceError(f"unknown engine {engine!r}; choose {' or '.join(ENGINES)}")
    if engine == "pytorch" or isinstance(sampler, OnnxRuntimeSampler):
        return sampler
    if not isinstance(sampler, GANSampler):
        raise ZspaceError(
            f"--engine onnxruntime draws through a GAN's sampler graph; a "
            f"{getattr(sampler, 'kind', 'this')} run has none (use --engine pytorch)"
        )
    if sampler.device.type != "cpu":
        raise ZspaceError("--engine onnxruntime runs on the CPU; load the run with --device cpu")
    require_onnx()
    return OnnxRuntimeSampler(sampler, threads)


class OnnxRuntimeSampler:
    """A `GANSampler` whose digits come from its sampler graph in ONNX Runtime (a Sampler).

    Attributes it does not define (kind, conditional, autoencoder, has_noise, inverter, noise,
    generate_codes, codes_to_images, sample_codes, ...) are the wrapped sampler's."""

    def __init__(self, sampler: GANSampler, threads: int = 1):
        self.sampler = sampler
        graph = sampler_graph(sampler)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "sampler.onnx"
            self.export = export_graph(graph, path)
            self.session = onnxruntime_session(path, threads)

    def __getattr__(self, name: str):
        if name == "sampler":  # not set yet (during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.sampler, name)

    def __repr__(self) -> str:
        return f"{self.sampler!r} through ONNX Runtime"

    def images(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Noise [+ int labels] -> float (N, 1, 28, 28) images in [0, 1] on CPU, as
        `GANSampler.images`; soft (float) labels go to the PyTorch sampler."""
        if self.conditional and labels is None:
            raise ZspaceError("this run is a conditional GAN; give a label for every noise row")
        if not self.conditional and labels is not None:
            raise ZspaceError("this run is an unconditional GAN; it takes no labels")
        if labels is not None and labels.dtype.is_floating_point:
            return self.sampler.images(noise, labels)
        if len(noise) == 0:
            return torch.empty(0, 1, IMAGE_SIZE, IMAGE_SIZE)
        feeds = {"noise": noise.detach().cpu().numpy().astype(np.float32, copy=False)}
        if labels is not None:
            classes = self.sampler.config.num_classes
            if len(labels) != len(noise) or int(labels.min()) < 0 or int(labels.max()) >= classes:
                raise ZspaceError(f"give one label from 0 to {classes - 1} for every noise row")
            feeds["label"] = labels.detach().cpu().numpy().astype(np.int64, copy=False)
        (images,) = self.session.run(None, feeds)
        return torch.from_numpy(images)

    def sample_with_labels(
        self, digit: int | None = None, n: int = 16, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As `GANSampler.sample_with_labels`: the same noise, drawn by ONNX Runtime."""
        check_sample_request(digit, n, self.conditional)
        digits = requested_digits(digit, self.conditional)
        noise = torch.cat([self.sampler.noise(n, seed, d) for d in digits])
        labels = labels_for(digits, n)
        return self.images(noise, labels), labels

    def sample(self, digit: int | None = None, n: int = 16, seed: int = 0) -> torch.Tensor:
        return self.sample_with_labels(digit=digit, n=n, seed=seed)[0]
