"""Reading a run's facts for its card: config.json, metrics.jsonl, evaluation.json, the
study it is a stage of, its dataset and limit, data checksums and the weight files' headers."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from zspace.runs import (
    CLASSIFIER,
    CONFIG_FILE,
    LIMIT_PATHS,
    STUDY,
    RunDir,
    run_dataset_name,
    saved_setting,
)
from zspace.training.cards.file_names import EVALUATION_FILE, STUDY_RECORDS

# Figures of a metrics.jsonl record: key -> (HF metric type, name, the split they measure;
# None: generated samples, judged by the evaluation classifier).
RECORD_METRICS = {
    "test_mse": ("mse", "test reconstruction MSE per pixel", "test"),
    "requested_accuracy": ("accuracy", "requested digit judged correct (training monitor)", None),
    "kl_from_uniform": ("kl_divergence", "KL(class histogram || uniform) (training monitor)", None),
    "test_accuracy": ("accuracy", "test accuracy", "test"),
    "mean_log_likelihood": (
        "log_likelihood",
        "mean log-likelihood per training code (mean over digits)",
        "train",
    ),
}
# Figures of an evaluation (generated samples against the test set): key -> (type, name).
EVALUATION_METRICS = {
    "requested_accuracy": ("accuracy", "requested digit judged correct"),
    "frechet_distance": ("frechet_distance", "Frechet distance"),
    "precision": ("precision", "precision"),
    "recall": ("recall", "recall"),
    "kl_from_uniform": ("kl_divergence", "KL(class histogram || uniform)"),
    "diversity": ("diversity", "diversity (real = 1)"),
}


@dataclass
class RunFacts:
    """Everything a card says, read once from the run's files."""

    run: RunDir
    config: dict
    metrics: list
    evaluation: dict | None
    study: tuple[str, str] | None

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def name(self) -> str:
        return self.run.path.resolve().name

    @property
    def last(self) -> dict:
        """metrics.jsonl's last record; for a classifier saved before classifiers wrote one,
        the test accuracy its config.json keeps."""
        if self.metrics:
            return self.metrics[-1]
        accuracy = (self.config.get("training") or {}).get("test_accuracy")
        return {"test_accuracy": accuracy} if self.kind == CLASSIFIER and accuracy else {}

    @property
    def dataset(self) -> str:
        return run_dataset_name(self.config)

    @property
    def conditional(self) -> bool:
        return bool(self.config.get("conditional"))


def read_run_facts(run_dir: str | Path) -> RunFacts:
    """A run folder's facts; evaluation.json only when it holds a `samples` record."""
    run = RunDir(run_dir)
    config = run.read_config()
    evaluation = read_json(run.file(EVALUATION_FILE))
    if not (isinstance(evaluation, dict) and isinstance(evaluation.get("samples"), dict)):
        evaluation = None
    return RunFacts(run, config, run.read_metrics(), evaluation, study_of(run))


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def study_of(run: RunDir) -> tuple[str, str] | None:
    """(study folder, stage) when the run is a stage's folder (or a run inside one) of a
    `zspace run` study: the study's config.json is one or two levels up, and its records
    folder has the stage's record or started marker."""
    resolved = run.path.resolve()
    for depth, ancestor in enumerate(list(resolved.parents)[:2], start=1):
        config = read_json(ancestor / CONFIG_FILE)
        stage = resolved.relative_to(ancestor).parts[0]
        records = [
            ancestor / STUDY_RECORDS / f"{stage}{suffix}" for suffix in (".json", ".started")
        ]
        if (
            isinstance(config, dict)
            and config.get("kind") == STUDY
            and any(path.is_file() for path in records)
        ):
            shown = run.path
            for _ in range(depth):
                shown = shown.parent
            where = str(shown) if str(shown) not in ("", ".") else str(ancestor)
            return where, stage
    return None


def data_limit(config: dict) -> int | None:
    """The training-image limit a run used, if any."""
    return saved_setting(config, LIMIT_PATHS, int)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_count(path: Path) -> int | None:
    """Numbers stored in a safetensors file, from its header (no tensor is loaded)."""
    header = _safetensors_header(path)
    if header is None:
        return None
    return sum(
        math.prod(entry["shape"])
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict)
    )


def _safetensors_header(path: Path) -> dict | None:
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                return None
            return json.loads(handle.read(size))
    except (OSError, ValueError):
        return None


def training_seconds(info: RunFacts) -> float | None:
    seconds = [r["seconds"] for r in info.metrics if isinstance(r.get("seconds"), (int, float))]
    return round(sum(seconds), 3) if seconds else None
