"""The translation stage: the reference study's class-to-class translators, trained on the
study's autoencoder and measured on the most and least similar class pairs.

`translation_study` does the work from plain folders, so benchmarks/bench_translation.py runs
the same study outside `zspace run`. Every translator is a run folder under the stage's folder
(`pair-4-9/cycle`, `all/cycle`), so a killed stage resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from zspace.evaluation.translation import (
    TranslationJudge,
    chosen_pairs,
    class_similarity,
    counterpart_error,
)
from zspace.evaluation.translation_hypotheses import (
    best_learned,
    hypothesis_verdicts,
    scope_winner,
)
from zspace.figures import save_grid, save_line_plot
from zspace.loading import load_sampler
from zspace.models.translator import METHODS, TranslatorConfig
from zspace.pipeline.cache import StageContext
from zspace.pipeline.config import DEFAULT_GAN
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    TRANSLATION_STAGE,
    eval_classifier,
    gan_stage_name,
    study_dataset,
)
from zspace.runs import RunDir
from zspace.sampling.latent import encode_images, load_autoencoder
from zspace.training.loop import training_seconds
from zspace.training.translator import TranslatorTrainingConfig, train_translator
from zspace.training.translator_pairs import generated_pairs

EXAMPLES_PER_PAIR = 8
HELD_OUT_PAIR_SEED = 10_000  # counterpart pairs drawn apart from every training seed
MEASURE_LABELS = {
    "accuracy": "translation accuracy",
    "fd_ratio": "FD / FD of test reconstructions",
    "fd_sampler_ratio": "FD / FD of a perfect code sampler",
    "style_kept": "style kept (mean correlation)",
    "cycle_error": "cycle error (pixel MSE)",
}


@dataclass
class TranslationPlan:
    """What a translation study trains and measures."""

    pairs_per_end: int = 3  # the most and the least similar pairs, this many of each
    methods: tuple[str, ...] = METHODS
    all_pairs_methods: tuple[str, ...] = ("cycle", "paired")
    training: TranslatorTrainingConfig = field(default_factory=TranslatorTrainingConfig)
    all_pairs_epochs: int | None = None  # None: the training config's epochs
    test_per_class: int | None = None  # None: every test digit of the class
    counterpart_pairs: int = 1000


def translation_study(
    out: Path,
    ae_run: Path,
    generator_run: Path | None,
    dataset,
    classifier,
    plan: TranslationPlan,
    data_dir=None,
    device="cpu",
    progress: bool = False,
) -> dict:
    """Train every planned translator into `out` and measure it; returns the JSON summary."""
    autoencoder = load_autoencoder(ae_run, device)
    ranking = class_similarity(
        encode_images(autoencoder, dataset.train_images), dataset.train_labels
    )
    pairs = chosen_pairs(ranking, plan.pairs_per_end)
    judge = TranslationJudge(
        classifier,
        autoencoder,
        dataset.test_images,
        dataset.test_labels,
        plan.test_per_class,
        dataset.train_images,
        dataset.train_labels,
    )
    needs_generator = {"paired", "restyle"}
    methods = [m for m in plan.methods if generator_run is not None or m not in needs_generator]
    trained: dict[str, dict] = {}

    def train(folder: Path, config: TranslatorConfig, training: TranslatorTrainingConfig):
        started = time.perf_counter()
        translator = train_translator(
            folder,
            config,
            None if RunDir(folder).exists() else training,
            ae_run=ae_run,
            generator_run=generator_run if config.method in needs_generator else None,
            data_dir=data_dir,
            device=device,
            resume=RunDir(folder).exists(),
            progress=progress,
        )
        seconds = training_seconds(folder) or time.perf_counter() - started
        trained[str(folder.relative_to(out))] = {"seconds": round(seconds, 2)}
        return translator

    rows, examples, counterparts = [], {}, []
    pair_source = None  # the generator of the held-out pairs, loaded once
    for pair in pairs:
        source, target = pair["pair"]
        examples[(source, target)] = {}
        for method in methods:
            folder = out / f"pair-{source}-{target}" / method
            translator = train(
                folder, TranslatorConfig(method=method, source=source, target=target), plan.training
            )
            rows.append(_row(judge, translator, pair, trained[str(folder.relative_to(out))]))
            examples[(source, target)][f"{method} (pair)"] = translator
            if method == "paired":
                pair_source = pair_source or load_sampler(generator_run, device, "make pairs")
                held_out = generated_pairs(
                    pair_source, (source, target), plan.counterpart_pairs, HELD_OUT_PAIR_SEED
                )
                counterparts.append(counterpart_error(translator, held_out, source, target))
    all_training = replace(plan.training, epochs=plan.all_pairs_epochs or plan.training.epochs)
    for method in [m for m in plan.all_pairs_methods if m in methods]:
        folder = out / "all" / method
        translator = train(
            folder, TranslatorConfig(method=method, source=None, target=None), all_training
        )
        for pair in pairs:
            rows.append(_row(judge, translator, pair, trained[str(folder.relative_to(out))]))
            examples[tuple(pair["pair"])][f"{method} (all)"] = translator
    return {
        "similarity": ranking,
        "pairs": pairs,
        "methods": methods,
        "all_pairs_methods": [m for m in plan.all_pairs_methods if m in methods],
        "pair_source": _pair_source(generator_run),
        "rows": rows,
        "trained": trained,
        "references": {
            f"{p['pair'][0]}-{p['pair'][1]}": judge.references(*p["pair"]) for p in pairs
        },
        "style_validation": _without_nan(judge.style_validation(range(10))),
        "hypotheses": hypothesis_verdicts(rows, counterparts),
        "counterpart_errors": counterparts,
        "scopes": [s for s in (scope_winner(rows, m) for m in plan.all_pairs_methods) if s],
        "best_learned": best_learned(rows),
        "figures": _figures(out, judge, examples, rows),
    }


def _row(judge: TranslationJudge, translator, pair: dict, trained: dict) -> dict:
    row = judge.judge(translator, *pair["pair"])
    row.update(group=pair["group"], code_fd=pair["code_fd"], train_seconds=trained["seconds"])
    return _without_nan(row)


def _without_nan(value):
    """NaN (a style measure constant over the digits) as None, which JSON can hold."""
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _pair_source(generator_run) -> str | None:
    if generator_run is None:
        return None
    kind = RunDir(generator_run).read_config().get("kind")
    return f"one noise drawn with both labels by the conditional {kind} {Path(generator_run).name}"


def _figures(out: Path, judge: TranslationJudge, examples: dict, rows: list[dict]) -> dict:
    """Per pair: the input row, then one row per translator; and each measure against the
    pair's class similarity, one line per method and scope."""
    figures = {"examples": {}, "measures": {}}
    for (source, target), translators in examples.items():
        inputs = judge.class_set(source)
        codes = inputs.codes[:EXAMPLES_PER_PAIR]
        grid = [inputs.images[:EXAMPLES_PER_PAIR]]
        grid += [
            judge.decoder(t.translate_codes(codes, target, source)) for t in translators.values()
        ]
        path = save_grid(
            torch.cat(grid), out / f"examples-{source}-{target}.png", ncols=EXAMPLES_PER_PAIR
        )
        figures["examples"][f"{source}-{target}"] = {"path": path, "rows": ["input", *translators]}
    series_names = sorted({(r["method"], r["scope"]) for r in rows})
    for measure, label in MEASURE_LABELS.items():
        series = {}
        for method, scope in series_names:
            chosen = sorted(
                (
                    r
                    for r in rows
                    if (r["method"], r["scope"]) == (method, scope) and r[measure] is not None
                ),
                key=lambda r: r["code_fd"],
            )
            if chosen:
                series[f"{method} ({scope})"] = (
                    [r["code_fd"] for r in chosen],
                    [r[measure] for r in chosen],
                )
        if series:
            figures["measures"][measure] = save_line_plot(
                series,
                out / f"{measure}_vs_similarity.png",
                xlabel="Fréchet distance between the classes' codes (smaller: more alike)",
                ylabel=label,
            )
    return figures


def translation_stage(context: StageContext) -> dict:
    """The study's translation stage on its autoencoder and default cGAN."""
    settings = context.config.translation
    out = context.stage_dir(TRANSLATION_STAGE)
    plan = TranslationPlan(
        pairs_per_end=settings.pairs_per_end,
        methods=tuple(settings.methods),
        all_pairs_methods=tuple(settings.all_pairs_methods),
        training=TranslatorTrainingConfig(
            seed=context.config.seed,
            epochs=settings.epochs,
            steps_per_epoch=settings.steps_per_epoch,
            dataset=context.config.data.dataset,
            limit=context.config.data.limit,
        ),
        all_pairs_epochs=settings.all_pairs_epochs,
        test_per_class=settings.test_per_class,
    )
    summary = translation_study(
        out,
        context.stage_dir(AUTOENCODER_STAGE),
        context.stage_dir(gan_stage_name(DEFAULT_GAN, True)),
        study_dataset(context),
        eval_classifier(context),
        plan,
        data_dir=context.data_dir,
        device=context.device,
        progress=context.progress,
    )
    figures = summary["figures"]
    for entry in figures["examples"].values():
        entry["path"] = context.relative(entry["path"])
    figures["measures"] = {k: context.relative(v) for k, v in figures["measures"].items()}
    return summary
