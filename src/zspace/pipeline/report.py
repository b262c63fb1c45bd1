"""report.md and report.html of a `zspace run`, from the stage summaries."""

from __future__ import annotations

import json
import platform
import re
import sys
from pathlib import Path

import torch

from zspace.checkpoint import atomic_write_text
from zspace.fewshot.report import interval_text
from zspace.files import save_json
from zspace.pipeline.config import StudyConfig
from zspace.pipeline.document import Document
from zspace.pipeline.presets_comparison import table_rows
from zspace.pipeline.stages.common import (
    AUTOENCODER_STAGE,
    CLASSIFIER_STAGE,
    DISTILLED_FLOW_STAGE,
    EVALUATION_STAGE,
    FEWSHOT_STAGE,
    FLOW_STAGE,
    INTERPOLATION_STAGE,
    LATENT_MAP_STAGE,
    PRESETS_STAGE,
    TRANSLATION_STAGE,
    gan_stage_name,
)
from zspace.pipeline.stages.evaluation import TEST_RECONSTRUCTIONS, TRAIN_RECONSTRUCTIONS
from zspace.pipeline.translation_report import translation_section
from zspace.runs import AUTOENCODER, CONFIG_FILE, PIXEL_GAN, RunDir
from zspace.training.cards import CARD_FILE, EVALUATION_FILE, write_card
from zspace.version import __version__

EVALUATION_COLUMNS = [
    "generator",
    "requested digit",
    "FD",
    "FD (train)",
    "precision",
    "recall",
    "KL from uniform",
    "diversity",
    "training s",
    "images/s",
]
# The serving rule: among generators that draw the requested digit at least this often, the
# one with the lowest FD against training images.
SERVE_MIN_ACCURACY = 0.99


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fewshot_reading(labels: int, draws: int, encoder: dict, pixels: dict, best: dict) -> str:
    """The few-shot stage's headline: the best head on codes against the best on pixels (the
    reference study's comparison), then the best method that also uses unlabelled images."""
    return (
        f"With {labels} labelled images and {draws} random draws, the best head "
        f"on the frozen encoder's codes reaches {100 * encoder['mean']:.1f}% against "
        f"{100 * pixels['mean']:.1f}% for the best head on raw pixels (the reference study: "
        "73% and 65%, one run each). Using the unlabelled training images as well, "
        f"`{best['method']}` reaches {100 * best['mean']:.2f}% {interval_text(best['ci95'])}."
    )


def _fewshot_section(doc: Document, summary: dict) -> None:
    doc.heading("Few-shot transfer")
    doc.text(summary.get("reading", ""))
    if summary.get("table"):
        doc.table(summary["table"]["headers"], summary["table"]["rows"])
    if summary.get("beyond"):
        doc.text(
            "Methods that also use the unlabelled training images (test images are only ever "
            "classified, never trained on or put into a graph):"
        )
        doc.table(summary["beyond"]["headers"], summary["beyond"]["rows"])
    figures = summary.get("figures", {})
    if figures.get("heads"):
        doc.image(figures["heads"], "Test accuracy per head and pipeline (mean, 95% CI).")
    if figures.get("learning_curve"):
        doc.text(
            "The learning curve repeats the study for several label counts, with fewer draws "
            "each (see `fewshot/sweep/table.md` for the numbers)."
        )
        doc.image(
            figures["learning_curve"],
            "Test accuracy against the number of labelled images (mean, 95% CI).",
        )


def _autoencoder_section(doc: Document, summary: dict, latent_map: dict | None) -> None:
    doc.heading("Autoencoder")
    doc.text(
        f"The `{summary['preset']}` autoencoder reached a test reconstruction MSE of "
        f"**{summary['test_mse']:.5f}** per pixel after {summary['epochs']} epochs "
        f"({summary['training_seconds']} s of training). Below, test images (top row) and their "
        "reconstructions (bottom row): the decoder is the ceiling for everything generated later."
    )
    doc.image(summary["figures"]["reconstructions"], "Test images above their reconstructions.")
    if latent_map:
        doc.text(
            "The first two principal components of the test codes, coloured by digit: digits "
            "that form separate clouds here are the ones a few labels can already tell apart."
        )
        doc.image(latent_map["figures"]["latent_map"], "2-D map of the latent space.")


def _presets_section(doc: Document, summary: dict) -> None:
    doc.heading("Autoencoder presets, with and without position encodings")
    images = "all" if summary["images"] is None else f"the first {summary['images']:,}"
    doc.text(
        f"Each preset trained for {summary['epochs']} epoch(s) on {images} training images with "
        "the same batch size, schedule and seed. `transformer` cuts the image into patches, adds "
        "2-D sinusoidal position encodings by row and column and runs self-attention; "
        "`transformer-nopos` is the same network without them, so its encoder cannot tell where "
        "a patch sits. The last column is encoder+MLP with the head "
        f"`{summary['head']}` on {summary['labels']} labels, mean [95% CI] over "
        f"{summary['draws']} draws."
    )
    doc.table(*table_rows(summary["rows"]))
    reading = _positions_reading(summary["rows"])
    if reading:
        doc.text(reading)
    doc.text(
        "The budget is equal epochs, not equal time, and a short one by default: attention "
        "converges more slowly than convolution, so the transformer presets gain most from more "
        "epochs (`presets.epochs` in the config; the README's table uses 3)."
    )


def _positions_reading(rows: list[dict]) -> str | None:
    """What position encodings change, when both transformer presets were compared."""
    by_preset = {row["preset"]: row for row in rows}
    with_positions, without = by_preset.get("transformer"), by_preset.get("transformer-nopos")
    if not (with_positions and without):
        return None
    reading = (
        "Position information is what lets attention work on images here: without it the "
        f"test MSE goes from {with_positions['test_mse']:.4f} to {without['test_mse']:.4f}"
    )
    if with_positions.get("fewshot") and without.get("fewshot"):
        reading += (
            f" and the few-shot accuracy from {100 * with_positions['fewshot']['mean']:.1f}%"
            f" to {100 * without['fewshot']['mean']:.1f}%"
        )
    return reading + "."


def _gan_samples_section(doc: Document, results: dict, presets: list[str]) -> None:
    doc.heading("Latent GAN samples")
    beside = (
        "The reference architecture is shown beside the best preset measured here."
        if len(presets) > 1
        else "The reference presets, which collapse, run with `zspace run --full`."
    )
    doc.text(
        "The generator maps 64-d Gaussian noise to latent codes, which the decoder turns into "
        f"digits. {beside}"
    )
    for preset in presets:
        summary = results.get(gan_stage_name(preset, False))
        if summary:
            doc.image(
                summary["figures"]["samples"],
                f"Unconditional samples, preset {summary['preset']} ({summary['epochs']} epochs).",
            )


def _interpolation_section(doc: Document, summary: dict) -> None:
    doc.heading("Interpolation")
    for name, figure in summary["figures"].items():
        run = summary["runs"][name]
        doc.text(
            f"Run `{name}`: for each pair of test digits, the rows are "
            + ", ".join(f"`{r}`" for r in run["rows"])
            + " (GAN rows above the AE row)."
        )
        doc.image(figure, f"Interpolations between pairs of different test digits ({name}).")
        keys = sorted({k for m in run["measures"].values() for k in m})
        doc.table(
            ["path", *keys],
            [[method, *(_fmt(m.get(k)) for k in keys)] for method, m in run["measures"].items()],
        )
    doc.text(
        "`class_changes` counts how often the evaluation classifier's answer changes along "
        "a path (1 is ideal between two different digits); smoother, more even steps and "
        "confident middle frames mean the path stays on the manifold of digits."
    )


def _digit_on_demand_section(doc: Document, results: dict, presets: list[str]) -> None:
    doc.heading("Digit on demand")
    for preset in presets:
        name = gan_stage_name(preset, True)
        summary = results.get(name)
        if not summary:
            continue
        doc.image(
            summary["figures"]["digit_grid"],
            f"Conditional latent GAN, preset {summary['preset']}: row d shows digit d.",
        )
        if summary.get("inverter"):
            doc.text(
                f"`zspace serve {name}` (from this folder) serves this model as a web "
                "page and API; the run carries a noise inverter, so a drawn digit is "
                "restyled as all ten digits in a few milliseconds."
            )
    _flow_grids(doc, results)


def _sampler_text(sampling: dict) -> str:
    if sampling["steps"] == 1 and sampling["solver"] == "euler":
        return "one Euler step"
    return (
        f"{sampling['solver']} solver, {sampling['steps']} steps, guidance {sampling['guidance']:g}"
    )


def _flow_grids(doc: Document, results: dict) -> None:
    """The conditional latent flow and its distilled generator, when the study has them."""
    flow = results.get(FLOW_STAGE)
    if flow:
        doc.image(
            flow["figures"]["digit_grid"],
            f"Conditional latent flow, preset {flow['preset']} ({flow['epochs']} epochs, "
            f"{flow['training_seconds']} s; {_sampler_text(flow['sampling'])}): "
            "row d shows digit d.",
        )
    distilled = results.get(DISTILLED_FLOW_STAGE)
    if distilled:
        doc.image(
            distilled["figures"]["digit_grid"],
            f"The flow distilled into a one-step generator ({distilled['pairs']:,} teacher "
            f"pairs, {distilled['epochs']} epochs): row d shows digit d.",
        )


def _evaluation_section(doc: Document, summary: dict) -> None:
    doc.heading("Evaluation")
    doc.text(
        f"Each generator drew {summary['samples_per_digit']} samples per digit. The evaluation "
        f"classifier (test accuracy {_fmt(summary['classifier_test_accuracy'])}) was trained on "
        "the training set only and never saw generated images. Fréchet distance (FD), precision "
        "and recall are computed in its feature space against the test set. Two ceilings: the "
        "test-set reconstructions are paired one to one with the reference images, so they carry "
        "no sampling error; the training reconstructions are what a perfect sampler of the "
        "training codes would produce, the fairest bound for a latent generator."
    )
    rows = [
        [
            name,
            _fmt(row.get("requested_accuracy")),
            _fmt(row.get("frechet_distance"), 3),
            _fmt(row.get("fd_train"), 3),
            _fmt(row.get("precision"), 3),
            _fmt(row.get("recall"), 3),
            _fmt(row.get("kl_from_uniform"), 4),
            _fmt(row.get("diversity"), 3),
            _fmt(row.get("train_seconds"), 1),
            _count(row.get("images_per_second")),
        ]
        for name, row in summary["rows"].items()
    ]
    doc.table(EVALUATION_COLUMNS, rows)
    images = summary.get("train_reference_images", 10_000)
    doc.text(
        f"`FD (train)` is the FD against {images:,} training images instead of the test set; "
        "the choice of the model to serve (below) uses it, so that no choice is tuned on test "
        "images. `training s` is each generator's training wall clock"
        + (
            f"; for `{DISTILLED_FLOW_STAGE}` it adds its teacher's (`{FLOW_STAGE}`) training "
            "and the drawing of the teacher's pairs to its own, what it costs from scratch"
            if DISTILLED_FLOW_STAGE in summary["rows"]
            else ""
        )
        + f". `images/s` is noise to pixels at batch {summary.get('speed_batch', 1000):,}, the "
        "fastest of three calls after a warm-up, measured the same way for every generator."
    )
    figure = summary.get("figures", {}).get("cost")
    if figure:
        doc.image(
            figure,
            "FD and recall against training seconds, one marker per generator (GANs and "
            "flows on the same axes).",
        )
    _serve_section(doc, summary["rows"])


def _count(value) -> str:
    return "–" if value is None else f"{value:,.0f}"


def serve_choice(rows: dict) -> dict | None:
    """The model the report tells users to serve, by the rule it writes out: among the
    generators whose requested-digit accuracy is at least SERVE_MIN_ACCURACY, the lowest FD
    against training images; if none reaches it, the most accurate one.

    `rows` are the evaluation stage's rows; the ceilings and generators without requested
    digits (unconditional ones) are not candidates. Returns {"name", "row", "rule_met"} or
    None when there is no candidate at all."""
    candidates = {
        name: row
        for name, row in rows.items()
        if name not in (TEST_RECONSTRUCTIONS, TRAIN_RECONSTRUCTIONS)
        and row.get("requested_accuracy") is not None
    }
    if not candidates:
        return None
    accurate = {
        name: row
        for name, row in candidates.items()
        if row["requested_accuracy"] >= SERVE_MIN_ACCURACY
    }
    if accurate:
        name = min(accurate, key=lambda n: (_fd_train(accurate[n]), n))
        return {"name": name, "row": accurate[name], "rule_met": True}
    name = min(
        candidates,
        key=lambda n: (-candidates[n]["requested_accuracy"], _fd_train(candidates[n]), n),
    )
    return {"name": name, "row": candidates[name], "rule_met": False}


def _fd_train(row: dict) -> float:
    value = row.get("fd_train")
    return float("inf") if value is None else value


def _serve_section(doc: Document, rows: dict) -> None:
    doc.heading("Which model to serve")
    threshold = f"{100 * SERVE_MIN_ACCURACY:.0f}%"
    doc.text(
        f"The rule: among the generators whose requested-digit accuracy is at least {threshold}, "
        "the one with the lowest FD against training images (never the test set, so that the "
        "choice is not tuned on test images). If none reaches it, the most accurate one."
    )
    choice = serve_choice(rows)
    if choice is None:
        doc.text("No conditional generator was evaluated, so there is nothing to serve.")
        return
    name, row = choice["name"], choice["row"]
    measured = (
        f"requested digit {100 * row['requested_accuracy']:.2f}%, FD against training images "
        f"{_fmt(row.get('fd_train'), 3)}, against the test set {_fmt(row['frechet_distance'], 3)}"
    )
    if choice["rule_met"]:
        doc.text(f"It chooses **`{name}`**: {measured}.")
    else:
        doc.text(
            f"No generator reaches {threshold} here, so the rule falls back to the most "
            f"accurate one: **`{name}`** ({measured})."
        )
    doc.text(f"Serve it (from this folder) with `zspace serve {name}`.")


def _loss_curves(doc: Document, results: dict) -> None:
    doc.heading("Training curves")
    for name, summary in results.items():
        figure = (summary or {}).get("figures", {}).get("loss_curve")
        if figure:
            doc.image(figure, f"Loss curves: {name}.")


def write_evaluations(run_dir: Path, results: dict, config: StudyConfig) -> None:
    """Each evaluated run's row of the evaluation stage, as RUN/evaluation.json in the layout
    `zspace evaluate --json` writes, so that its model card and `zspace serve` show it."""
    summary = results.get(EVALUATION_STAGE)
    if not summary:
        return
    rows = dict(summary["rows"])
    ceiling = rows.pop(TEST_RECONSTRUCTIONS, None)
    classifier = {
        "key": (results.get(CLASSIFIER_STAGE) or {}).get("key"),
        "test_accuracy": summary["classifier_test_accuracy"],
    }
    for name, row in [(AUTOENCODER_STAGE, ceiling), *rows.items()]:
        config_path = run_dir / name / CONFIG_FILE
        if row is None or not config_path.is_file():
            continue  # the training-reconstructions ceiling has no run folder of its own
        kind = json.loads(config_path.read_text()).get("kind")
        save_json(
            config_path.parent / EVALUATION_FILE,
            {
                "source": str(config_path.parent),
                "kind": kind,
                "dataset": config.data.dataset,
                "made_by": f"zspace run, stage {EVALUATION_STAGE}",
                "samples_per_digit": summary["samples_per_digit"],
                "classifier": classifier,
                "samples": row,
                # As `zspace evaluate RUN` has it: an AE is its own ceiling, a pixel GAN has none.
                "ceiling": {AUTOENCODER: row, PIXEL_GAN: None}.get(kind, ceiling),
            },
        )


def write_model_cards(run_dir: Path, records: dict) -> list[list[str]]:
    """The model card of every run folder of the study (stage folders and the runs inside
    them, then the study's own); rows (folder, kind, card link) for the report."""
    folders = []
    for name in records:
        stage = run_dir / name
        folders += [stage] if (stage / CONFIG_FILE).is_file() else []
        folders += sorted(path.parent for path in stage.glob(f"*/{CONFIG_FILE}"))
    rows = []
    for folder in [*folders, run_dir]:
        kind = RunDir(folder).read_config()["kind"]
        relative = folder.relative_to(run_dir).as_posix()
        link = CARD_FILE if relative == "." else f"{relative}/{CARD_FILE}"
        written = write_card(folder)
        cell = f"[{link}]({link})" if written else "left alone: a README.md zspace did not write"
        rows.append([f"`{relative}`", kind, cell])
    return rows


def _model_cards_section(doc: Document, rows: list[list[str]]) -> None:
    doc.heading("Model cards")
    doc.text(
        "Each run folder holds a model card (`README.md`, Hugging Face layout): what the model "
        "is, the `zspace` command that makes it, its data and their checksums, training time "
        "and hardware, its figures and how to load it."
    )
    doc.table(["run folder", "kind", "model card"], rows)


# The cards' links: a Markdown link in report.md, an <a> in report.html.
_CARD_LINK = re.compile(r"\[([^\[\]<>]+)\]\(((?:[\w.-]+/)*README\.md)\)")


def _link_cards(html: str) -> str:
    return _CARD_LINK.sub(r"<a href='\2'>\1</a>", html)


def _provenance(doc: Document, records: dict, config: StudyConfig, config_text: str) -> None:
    doc.heading("Time per stage")
    total = sum(r.get("seconds", 0) for r in records.values())
    doc.table(
        ["stage", "seconds"],
        [[name, _fmt(float(r.get("seconds", 0)), 1)] for name, r in records.items()]
        + [["total (this and earlier sessions)", _fmt(total, 1)]],
    )
    doc.heading("Versions, seed and hardware")
    doc.table(
        ["item", "value"],
        [
            ["zspace", __version__],
            ["python", sys.version.split()[0]],
            ["torch", torch.__version__],
            ["seed", config.seed],
            ["platform", platform.platform()],
            ["processor", platform.processor() or platform.machine()],
            ["torch threads", torch.get_num_threads()],
            ["CUDA", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"],
        ],
    )
    doc.text("The effective configuration (`config.toml` in the run folder):")
    doc.code(config_text, "toml")


def write_report(run_dir: Path, records: dict, config: StudyConfig, config_text: str) -> Path:
    """Write report.md and report.html into `run_dir`; returns the Markdown path."""
    results = {name: record["summary"] for name, record in records.items()}
    doc = Document("zspace study report")
    doc.text(
        "A 64-d autoencoder learned on handwritten digits, then used for few-shot "
        "classification, latent GANs and flows, interpolation and digits on demand."
    )
    if FEWSHOT_STAGE in results:
        _fewshot_section(doc, results[FEWSHOT_STAGE])
    _autoencoder_section(doc, results[AUTOENCODER_STAGE], results.get(LATENT_MAP_STAGE))
    if results.get(PRESETS_STAGE):
        _presets_section(doc, results[PRESETS_STAGE])
    _gan_samples_section(doc, results, config.gan.presets)
    if results.get(INTERPOLATION_STAGE):
        _interpolation_section(doc, results[INTERPOLATION_STAGE])
    if results.get(TRANSLATION_STAGE):
        translation_section(doc, results[TRANSLATION_STAGE])
    _digit_on_demand_section(doc, results, config.gan.presets)
    if EVALUATION_STAGE in results:
        _evaluation_section(doc, results[EVALUATION_STAGE])
    _loss_curves(doc, results)
    write_evaluations(run_dir, results, config)
    _model_cards_section(doc, write_model_cards(run_dir, records))
    _provenance(doc, records, config, config_text)
    markdown = run_dir / "report.md"
    atomic_write_text(markdown, doc.to_markdown())
    atomic_write_text(run_dir / "report.html", _link_cards(doc.to_html(run_dir)))
    return markdown
