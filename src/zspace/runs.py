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

from zspace.checkpoint import (
    atomic_write_bytes,
    atomic_write_json,
    load_module_weights,
    load_tensors,
    remove_stale_temporaries,
)
from zspace.config_checks import shown
from zspace.errors import RunError, ZspaceError
from zspace.version import __version__

AUTOENCODER = "autoencoder"
LATENT_GAN = "latent-gan"
PIXEL_GAN = "pixel-gan"
LATENT_FLOW = "latent-flow"
GMM_BASELINE = "gmm-baseline"
CLASSIFIER = "classifier"
TRANSLATOR = "translator"
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
            LATENT_FLOW,
            "zspace.sampling.flow:load_flow",
            True,
            "flow matching over AE codes",
            "zspace.training.flow_command:command_for_run",
            "velocity_ema.safetensors",
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
        RunKind(
            TRANSLATOR,
            "zspace.sampling.translator:load_translator",
            False,
            "class-to-class translator of AE codes",
            "zspace.training.translator:command_for_run",
            "translator_ema.safetensors",
        ),
        RunKind(STUDY, None, False, "a whole study (zspace run)"),
    )
}
SAMPLER_KINDS = tuple(name for name, kind in RUN_KINDS.items() if kind.sampler)


def saved_setting(config: dict, paths, kind: type, default=None):
    """The first value of type `kind` along the key paths of a run's config (each kind of run
    keeps some settings in its own place); `default` when none holds one."""
    for path in paths:
        value = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return default


# Where the kinds of run keep their dataset: GAN and AE runs under "training", a GMM baseline
# at the top, runs built on an AE in its section, a study under its data section.
DATASET_PATHS = (
    ("training", "dataset"),
    ("dataset",),
    ("autoencoder", "training", "dataset"),
    ("autoencoder", "dataset"),
    ("study", "data", "dataset"),
)
LIMIT_PATHS = (("training", "limit"), ("limit",), ("study", "data", "limit"))


def run_dataset_name(config: dict) -> str:
    """The dataset a run learned from, wherever its config keeps it (default mnist)."""
    return saved_setting(config, DATASET_PATHS, str, "mnist")


def kind_text(value: object) -> str:
    """A run kind as a message shows it: a known kind as is, anything else (a damaged or
    hostile config's value) quoted and cut, so that the message stays one line."""
    return value if isinstance(value, str) and value in RUN_KINDS else shown(value)


def run_kind(name: object) -> RunKind:
    """The table's row for a kind; RunError for anything else (including non-strings)."""
    if not isinstance(name, str) or name not in RUN_KINDS:
        raise RunError(f"unknown run kind {name!r}; zspace knows {', '.join(RUN_KINDS)}")
    return RUN_KINDS[name]


CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.safetensors"
# What zspace leaves in every folder it claims, before its first file: the proof, for a later
# command, that the folder is zspace's to write into (also where no config.json ever comes,
# as in a few-shot study's tables).
OWNER_FILE = ".zspace.json"


def folder_owner(path: str | Path) -> str | None:
    """The kind of zspace output a folder holds (its config.json's or marker's), else None."""
    path = Path(path)
    for name in (CONFIG_FILE, OWNER_FILE):
        try:
            saved = json.loads((path / name).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(saved, dict) and isinstance(saved.get("kind"), str):
            return saved["kind"]
    return None


def claim_folder(path: str | Path, kind: str) -> Path:
    """Make `path` a folder zspace may write a `kind` output into, or refuse in one line.

    zspace writes only into a folder that is new, empty, or already holds zspace's output of
    the same kind; anything else may hold a user's files, which zspace never touches.
    Temporary files left by a write that was killed are removed (they are only ever zspace's:
    see checkpoint.atomic_write_bytes). A folder that was not yet zspace's gets OWNER_FILE,
    so that it stays provably zspace's from its first file on, before any config.json.
    """
    path = Path(path)
    owner = check_claimable(path, kind)
    path.mkdir(parents=True, exist_ok=True)
    if owner is None:
        atomic_write_json(path / OWNER_FILE, {"kind": kind, "zspace_version": __version__})
    remove_stale_temporaries(path)
    return path


def check_claimable(path: str | Path, kind: str) -> str | None:
    """claim_folder's checks alone, writing nothing (for a command to fail before its work);
    returns the folder's owner kind, None for a new or empty folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ZspaceError(f"{path} exists and is not a folder; choose a folder for the output")
    owner = folder_owner(path)
    if owner is None and path.is_dir():
        foreign = sorted(entry.name for entry in path.iterdir())
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ZspaceError(
                f"{path} holds files zspace did not write ({shown}); choose a new or empty folder"
            )
    elif owner is not None and owner != kind:
        raise ZspaceError(f"{path} holds a {owner} run, not a {kind}; choose another folder")
    return owner


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

    def claim(self, kind: str) -> RunDir:
        """Refuse, in one line, a folder that is not new, empty or a `kind` run (claim_folder)."""
        claim_folder(self.path, kind)
        return self

    def write_config(self, kind: str, config: dict) -> None:
        self.claim(kind)
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
                    f"{self.path} is a run of kind {kind_text(config['kind'])}, expected "
                    f"{' or '.join(kinds)}"
                )
        return config

    def append_metrics(self, record: dict) -> None:
        """Add one line, atomically: the file is rewritten whole (temp file, fsync, rename), so
        a kill or a full disk leaves either the old lines or the old lines plus this one."""
        self._write_metrics([*self.read_metrics(), record])

    def _write_metrics(self, records: list[dict]) -> None:
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        atomic_write_bytes(self.metrics_path, text.encode("utf-8"))

    def read_metrics(self) -> list[dict]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: everything after it is suspect
                if not isinstance(record, dict):
                    break
                records.append(record)
        return records

    def keep_metrics_through(self, epoch: int) -> None:
        """Drop metric lines of epochs after `epoch` (logged by a run killed before its checkpoint)."""
        kept = [r for r in self.read_metrics() if r.get("epoch", 0) <= epoch]
        self._write_metrics(kept)  # also repairs a torn last line left by an older zspace


def load_weights_into(module: torch.nn.Module, run: RunDir, filename: str, device) -> None:
    path = run.file(filename)
    if not path.is_file():
        raise RunError(f"{run.path} has no weights file {filename} (was training finished?)")
    tensors, _ = load_tensors(path, device=device)
    load_module_weights(module, tensors, str(path))
