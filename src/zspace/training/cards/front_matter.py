"""What a run card's YAML front matter says: library_name, tags, datasets, metrics,
model-index (Hugging Face's convention) and the `zspace` block that marks the card as zspace's."""

from __future__ import annotations

from pathlib import Path

from zspace.data.registry import DATASETS
from zspace.runs import (
    AUTOENCODER,
    CLASSIFIER,
    GMM_BASELINE,
    LATENT_FLOW,
    LATENT_GAN,
    TRANSLATOR,
)
from zspace.training.cards.command import Command
from zspace.training.cards.facts import (
    EVALUATION_METRICS,
    RECORD_METRICS,
    RunFacts,
    training_seconds,
)
from zspace.training.cards.file_names import CARD_FORMAT


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric_entries(info: RunFacts) -> list[dict]:
    """HF model-index results: the figures of metrics.jsonl's last record (one result per
    split they measure), then those of the evaluation written into the folder."""
    task, name = _task(info), _dataset_id(info.dataset)
    results = []
    for split in ("test", "train", None):
        figures = [
            {"type": kind, "name": label, "value": info.last[key]}
            for key, (kind, label, where) in RECORD_METRICS.items()
            if where == split and _is_number(info.last.get(key))
        ]
        dataset = {"type": name, "name": name, **({"split": split} if split else {})}
        if figures:
            results.append({"task": task, "dataset": dataset, "metrics": figures})
    if info.evaluation is not None:
        samples = info.evaluation["samples"]
        figures = [
            {"type": kind, "name": f"{label} (evaluation.json)", "value": samples[key]}
            for key, (kind, label) in EVALUATION_METRICS.items()
            if _is_number(samples.get(key))
        ]
        dataset = {"type": name, "name": name, "split": "test"}
        if figures:
            results.append({"task": task, "dataset": dataset, "metrics": figures})
    return results


def _dataset_id(dataset: str) -> str:
    """A registered dataset's name, or a user's .npz file's name."""
    return dataset if dataset in DATASETS else Path(dataset).name


def _task(info: RunFacts) -> dict:
    if info.kind == AUTOENCODER:
        return {"type": "image-to-image", "name": "image reconstruction"}
    if info.kind == CLASSIFIER:
        return {"type": "image-classification", "name": "digit classification"}
    if info.kind == TRANSLATOR:
        return {"type": "image-to-image", "name": "class-to-class translation"}
    if info.conditional:
        return {"type": "image-generation", "name": "class-conditional image generation"}
    return {"type": "unconditional-image-generation", "name": "unconditional image generation"}


def card_metadata(info: RunFacts, command: Command | None) -> dict:
    datasets = [_dataset_id(info.dataset)]
    tags = ["zspace", info.kind, "mnist-style"]
    if info.kind in (LATENT_GAN, LATENT_FLOW, GMM_BASELINE, TRANSLATOR):
        tags.append("latent-space")
    if info.conditional:
        tags.append("class-conditional")
    results = _metric_entries(info)
    metadata = {"library_name": "zspace", "tags": tags, "datasets": datasets}
    task = _task(info)["type"]
    if task in ("image-classification", "unconditional-image-generation"):
        metadata["pipeline_tag"] = task
    metric_types = sorted({m["type"] for r in results for m in r["metrics"]})
    if metric_types:
        metadata["metrics"] = metric_types
        metadata["model-index"] = [{"name": info.name, "results": results}]
    zspace = {
        "card": CARD_FORMAT,
        "kind": info.kind,
        "zspace_version": info.config.get("zspace_version"),
        "command": None if command is None else command.text(),
        "exact_command": command is not None and not command.differences,
        "training_seconds": training_seconds(info),
    }
    if info.study is not None:
        zspace["study"], zspace["stage"] = info.study
    metadata["zspace"] = zspace
    return metadata
