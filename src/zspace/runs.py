"""A run is a folder: config.json, weights (safetensors), checkpoint, metrics.jsonl, figures.

This module is the run contract: `RunDir` knows the folder layout, and `RUN_KINDS` is the one
table of run kinds, each with the function that loads it (the role `from_pretrained` plays in
diffusers). Loaders are named as "module:function" text and imported only when a run of that
kind is loaded, so this table sits at the bottom of the package and every layer can read it
without importing the layers above. `zspace.loading.load` goes through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from zspace.checkpoint import atomic_write_json, load_module_weights, load_tensors
from zspace.errors import RunError
from zspace.version import __version__

AUTOENCODER = "autoencoder"
LATENT_GAN = "latent-gan"
PIXEL_GAN = "pixel-gan"
GMM_BASELINE = "gmm-baseline"
CLASSIFIER = "classifier"
STUDY = "study"


@dataclass(frozen=True)
class RunKind:
    """One row of the run-kinds table.

    `loader` is "module:function", called as function(run_dir, device). `sampler` says whether
    the loaded object is a Sampler (zspace.sampling.sampler): something `zspace sample`,
    `zspace evaluate`, `zspace interpolate`, `zspace serve` and the report can draw digits from.
    `command` ("module:function", called as function(run, config) -> Command) rebuilds the
    zspace command that makes such a run, for its model card; `weights` is its main weights
    file.
    """

    name: str
    loader: str | None
    sampler: bool
    description: str
    command: str | None = None
    weights: str | None = None


RUN_KINDS: dict[str, RunKind] = {
    kind.name: kind
    for kind in (
        RunKind(
            AUTOENCODER,
            "zspace.sampling.latent:load_autoencoder",
            False,
            "autoencoder",
            "zspace.training.autoencoder:command_for_run",
            "model.safetensors",
        ),
        RunKind(
            LATENT_GAN,
            "zspace.sampling.gan:load_gan",
            True,
            "GAN over AE codes",
            "zspace.training.gan:command_for_run",
            "generator.safetensors",
        ),
        RunKind(
            PIXEL_GAN,
            "zspace.sampling.gan:load_gan",
            True,
            "GAN over pixels",
            "zspace.training.gan:command_for_run",
            "generator.safetensors",
        ),
        RunKind(
            GMM_BASELINE,
            "zspace.evaluation.gmm:load_gmm_baseline",
            True,
            "class-conditional Gaussian mixture over AE codes",
            "zspace.evaluation.gmm:command_for_run",
            "gmm.safetensors",
        ),
        RunKind(
            CLASSIFIER,
            "zspace.fewshot.classify:load_classifier",
            False,
            "digit classifier",
            "zspace.fewshot.selftrain:command_for_run",
            "model.safetensors",
        ),
        RunKind(STUDY, None, False, "a whole study (zspace run)"),
    )
}
SAMPLER_KINDS = tuple(name for name, kind in RUN_KINDS.items() if kind.sampler)


def run_kind(name: object) -> RunKind:
    """The table's row for a kind; RunError for anything else (including non-strings)."""
    if not isinstance(name, str) or name not in RUN_KINDS:
        raise RunError(f"unknown run kind {name!r}; zspace knows {', '.join(RUN_KINDS)}")
    return RUN_KINDS[name]


CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.safetensors"


class RunDir:
    """Paths and small file operations for one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def exists(self) -> bool:
        return self.config_path.is_file()

    def write_config(self, kind: str, config: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, {"kind": kind, "zspace_version": __version__, **config})

    def read_config(self, expected_kind: str | tuple[str, ...] | None = None) -> dict:
        """The run's config; RunError if the folder is not a run (of the expected kind)."""
        if not self.path.is_dir():
            raise RunError(f"run folder {self.path} does not exist")
        if not self.config_path.is_file():
            raise RunError(f"{self.path} is not a zspace run (no {CONFIG_FILE})")
        try:
            config = json.loads(self.config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunError(f"{self.config_path} is not valid JSON ({error})") from error
        if not isinstance(config, dict) or "kind" not in config:
            raise RunError(f"{self.config_path} is not a zspace run config (no 'kind')")
        if expected_kind is not None:
            kinds = (expected_kind,) if isinstance(expected_kind, str) else expected_kind
            if config["kind"] not in kinds:
                raise RunError(
                    f"{self.path} is a {config['kind']} run, expected {' or '.join(kinds)}"
                )
        return config

    def append_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: everything after it is suspect
        return records

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop metric lines of epochs after `epoch` (logged by a run killed before its checkpoint)."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epoch]
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        self.metrics_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def load_weights_into(module: torch.nn.Module, run: RunDir, filename: str, device) -> None:
    path = run.file(filename)
    if not path.is_file():
        raise RunError(f"{run.path} has no weights file {filename} (was training finished?)")
    tensors, _ = load_tensors(path, device=device)
    load_module_weights(module, tensors, str(path))
