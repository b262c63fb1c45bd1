"""The few-shot study: pipelines x heads x labelled draws (x label counts), plus the methods
that also use the unlabelled training images, summarised as mean and 95% CI per cell (no
interval below 3 draws).

    from zspace.fewshot.study import StudyConfig, run_study
    results = run_study(StudyConfig(ae_run="runs/ae"), out="runs/fewshot")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch

from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.errors import ZspaceError
from zspace.fewshot.batched import HeadTraining, train_heads
from zspace.fewshot.beyond import BEYOND_METHODS
from zspace.fewshot.context import StudyContext
from zspace.fewshot.draws import draw_many
from zspace.fewshot.finetune import FinetuneTraining, finetune_accuracies
from zspace.fewshot.heads import DEFAULT_HEADS, HeadSpec, parse_heads
from zspace.fewshot.report import (
    ENCODER,
    FEWSHOT_OUTPUT,
    FINETUNED,
    PIXELS,
    TEST,
    VALIDATION,
    interval_text,
    write_outputs,
)
from zspace.fewshot.stats import accuracy_ci95, mean, paired_difference
from zspace.runs import AUTOENCODER, RunDir, claim_folder
from zspace.sampling.latent import load_autoencoder


@dataclass
class StudyConfig:
    """Everything a study needs; saved into fewshot.json so a table can be traced back."""

    ae_run: str
    labels: list[int] = field(default_factory=lambda: [50])
    per_class: int | None = None  # balanced draws of K per class instead of `labels`
    draws: int = 20
    seed: int = 0
    heads: list[str] = field(default_factory=lambda: list(DEFAULT_HEADS))
    pipelines: list[str] = field(default_factory=lambda: [PIXELS, ENCODER])
    finetune: bool = False
    methods: list[str] = field(default_factory=list)  # names from BEYOND_METHODS
    head_training: HeadTraining = field(default_factory=HeadTraining)
    dataset: str | None = None  # default: the dataset the autoencoder was trained on
    data_dir: str | None = None
    train_limit: int | None = None  # first N training images only (smoke tests)
    test_limit: int | None = None  # first N evaluation images only (smoke tests)
    # Evaluate on the last 1/6 of the training images (10,000 of 60,000) and draw labels and
    # unlabelled data from the rest; the test set stays unseen while hyperparameters are chosen.
    validation: bool = False
    device: str = "auto"

    def label_counts(self) -> list[int]:
        """The label totals to study (per-class K means 10*K labels)."""
        return [self.per_class * 10] if self.per_class else list(self.labels)

    def validate(self) -> None:
        unknown = [m for m in self.methods if m not in BEYOND_METHODS]
        if unknown:
            raise ZspaceError(
                f"unknown method {unknown[0]!r}; choose from {', '.join(sorted(BEYOND_METHODS))}"
            )
        bad = [p for p in self.pipelines if p not in (PIXELS, ENCODER)]
        if bad:
            raise ZspaceError(f"unknown pipeline {bad[0]!r}; choose from {PIXELS}, {ENCODER}")
        if self.draws < 1:
            raise ZspaceError(f"--draws must be at least 1, got {self.draws}")
        if not self.per_class and any(n < 1 for n in self.labels):
            raise ZspaceError("label counts must be at least 1")
        self.head_training.validate()

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def evaluated_on(self) -> str:
        return VALIDATION if self.validation else TEST


def _head_seeds(seed: int, head_index: int, draw_numbers: range) -> list[int]:
    """One init seed per draw; a head's draw-r init is the same whatever else is studied."""
    return [seed * 7919 + head_index * 104_729 + r for r in draw_numbers]


@dataclass(frozen=True)
class Cell:
    """One (method, head) column of a study: `measure(draws, first)` -> an accuracy per row
    of `draws` (R, N), which are draws number first, first+1, ... (their heads' init seeds)."""

    method: str
    head: str
    timing_key: str
    measure: Callable[[torch.Tensor, int], list[float]]


def study_cells(config: StudyConfig, context: StudyContext) -> list[Cell]:
    """The cells of a study in table order: per head its pipelines (and fine-tuning), then
    the methods that use the unlabelled images."""
    cells = []
    finetuning = FinetuneTraining.from_heads(config.head_training)
    for head_index, spec in enumerate(parse_heads(config.heads)):
        seeds = partial(_head_seeds, config.seed, head_index)
        for pipeline in config.pipelines:
            measure = partial(_heads, context, pipeline, spec, seeds, config.head_training)
            cells.append(Cell(pipeline, str(spec), f"heads:{pipeline}", measure))
        if config.finetune:
            measure = partial(_finetuned, context, spec, seeds, finetuning)
            cells.append(Cell(FINETUNED, str(spec), f"heads:{FINETUNED}", measure))
    for name in config.methods:
        measure = partial(_beyond, context, BEYOND_METHODS[name])
        cells.append(Cell(name, "-", f"method:{name}", measure))
    return cells


def _heads(context, pipeline, spec, seeds, training, draws, first) -> list[float]:
    numbers = range(first, first + len(draws))
    return head_accuracies(context, pipeline, spec, draws, seeds(numbers), training)


def _finetuned(context, spec, seeds, training, draws, first) -> list[float]:
    numbers = range(first, first + len(draws))
    return finetune_accuracies(context, spec, draws, seeds(numbers), training)


def _beyond(context, method, draws, first) -> list[float]:
    return method.accuracies(context, draws)


def validation_split(images: torch.Tensor, labels: torch.Tensor):
    """(pool images, pool labels, validation images, validation labels): the last 1/6 of the
    training images (50,000..59,999 of MNIST's 60,000) are held out for validation."""
    start = len(images) - len(images) // 6
    if start == len(images):
        raise ZspaceError(f"{len(images)} training images are too few to hold out a validation set")
    return images[:start], labels[:start], images[start:], labels[start:]


def load_context(config: StudyConfig, progress: bool = False) -> StudyContext:
    """Load the data and the frozen autoencoder the study runs on.

    The context's "test" images are the evaluation set: the test split, or with
    `config.validation` the held-out training images (the test split is then never used)."""
    device = resolve_device(config.device)
    saved = RunDir(config.ae_run).read_config(AUTOENCODER)
    dataset_name = config.dataset or saved["training"]["dataset"]
    dataset = load_dataset(dataset_name, data_dir=config.data_dir, limit=config.train_limit)
    if dataset.train_labels is None or (dataset.test_labels is None and not config.validation):
        raise ZspaceError(f"{dataset_name} has no labels; a few-shot study needs labelled data")
    train_images, train_labels = dataset.train_images, dataset.train_labels
    if config.validation:
        train_images, train_labels, test_images, test_labels = validation_split(
            train_images, train_labels
        )
    else:
        test_images, test_labels = dataset.test_images, dataset.test_labels
    if config.test_limit:
        test_images, test_labels = (
            test_images[: config.test_limit],
            test_labels[: config.test_limit],
        )
    autoencoder = load_autoencoder(config.ae_run, device)
    return StudyContext(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        autoencoder=autoencoder,
        device=device,
        seed=config.seed,
        progress=progress,
    )


def head_accuracies(
    context: StudyContext,
    pipeline: str,
    spec: HeadSpec,
    draws: torch.Tensor,
    seeds: list[int],
    training: HeadTraining,
) -> list[float]:
    """Train one head per draw (all at once) on a frozen pipeline; accuracy per draw on the
    context's evaluation images."""
    features = context.features("pixels" if pipeline == PIXELS else "encoder")
    device_draws = draws.to(features.train.device)
    inputs = features.train[device_draws]  # (R, N, D)
    labels = context.train_labels.to(features.train.device)[device_draws]  # (R, N)
    heads = train_heads(spec, inputs, labels, seeds, training)
    predictions = heads.predict_proba(features.test).argmax(-1)  # (R, N_test)
    test_labels = context.test_labels.to(predictions.device)
    return (predictions == test_labels).float().mean(1).tolist()


def run_study(
    config: StudyConfig,
    out: str | Path | None = None,
    progress: bool = False,
    log=print,
    context: StudyContext | None = None,
) -> dict:
    """Run every (method, head, label count) cell over `config.draws` draws.

    Returns the summary written to fewshot.json: {"config", "results", "differences",
    "timings", "evaluated_on" ("test" or "validation"), "evaluation_images"}; with `out`,
    also writes table.md, fewshot.csv and the plots there. `context` (from `load_context`
    for the same data, autoencoder, seed and device) lets several studies share features and
    graphs that are costly to build; its preparation timings are shared too.
    """
    config.validate()
    parse_heads(config.heads)  # a bad head spec is refused before any work
    if out is not None:
        claim_folder(out, FEWSHOT_OUTPUT)  # refused before any work, never over a user's files
    started = time.perf_counter()
    context = context if context is not None else load_context(config, progress)
    timings: dict[str, float] = {"load": time.perf_counter() - started}
    cells = study_cells(config, context)
    results = []
    for count in config.label_counts():
        draws = draw_many(
            context.train_labels,
            config.draws,
            count=None if config.per_class else count,
            per_class=config.per_class,
            seed=config.seed,
        )
        for cell in cells:
            tick = time.perf_counter()
            accuracies = cell.measure(draws, 0)
            timings[cell.timing_key] = timings.get(cell.timing_key, 0.0) + (
                time.perf_counter() - tick
            )
            _add(results, cell.method, cell.head, count, accuracies)
            log(_line(cell.method, cell.head, count, accuracies))
    timings["total"] = time.perf_counter() - started
    timings.update({f"prepare:{k}": v for k, v in context.timings.items()})
    summary = {
        "config": config.to_dict(),
        "results": results,
        "differences": paired_differences(results),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "evaluated_on": config.evaluated_on,
        "evaluation_images": len(context.test_labels),
    }
    if out is not None:
        write_outputs(Path(out), summary)
    return summary


def summarise(method: str, head: str, labels: int, accuracies: list[float]) -> dict:
    """One result: mean accuracy and its 95% interval (None below 3 draws) over the draws."""
    interval = accuracy_ci95(accuracies)
    return {
        "method": method,
        "head": head,
        "labels": labels,
        "mean": mean(accuracies),
        "ci95": None if interval is None else list(interval),
        "accuracies": [float(a) for a in accuracies],
    }


def _add(results: list, method: str, head: str, labels: int, accuracies: list[float]) -> None:
    results.append(summarise(method, head, labels, accuracies))


def _line(method: str, spec, labels: int, accuracies: list[float]) -> str:
    result = summarise(method, str(spec), labels, accuracies)
    return (
        f"{labels:>5} labels  {method:<24} {str(spec):<42} {result['mean']:.4f} "
        f"{interval_text(result['ci95'], scale=1, digits=4)}"
    )


def paired_differences(results: list[dict], minuend: str = ENCODER, subtrahend: str = PIXELS):
    """Per (head, labels): mean and 95% CI of encoder - pixels accuracy over the shared draws."""
    by_key = {(r["method"], r["head"], r["labels"]): r for r in results}
    differences = []
    for (method, head, labels), first in by_key.items():
        if method != minuend or (subtrahend, head, labels) not in by_key:
            continue
        second = by_key[(subtrahend, head, labels)]
        difference, interval = paired_difference(first["accuracies"], second["accuracies"])
        differences.append(
            {
                "comparison": f"{minuend} - {subtrahend}",
                "head": head,
                "labels": labels,
                "mean": difference,
                "ci95": None if interval is None else list(interval),
            }
        )
    return differences
