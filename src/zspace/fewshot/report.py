"""Study outputs: table.md, fewshot.json, fewshot.csv and PNG plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from zspace.checkpoint import atomic_write_json, atomic_write_text
from zspace.files import save_figure
from zspace.runs import claim_folder

# The pipeline names of a study's results (zspace.fewshot.study trains them).
PIXELS = "pixels+mlp"
ENCODER = "encoder+mlp"
FINETUNED = "finetuned-encoder+mlp"

# The reference study: one run each, 50 random labels; (pixels+MLP, encoder+MLP) per head.
REFERENCE_LABELS = 50
REFERENCE = {
    "(softmax,10)": (0.6404, 0.5928),
    "(relu,32)->(softmax,10)": (0.6172, 0.6363),
    "(sigmoid,32)->(softmax,10)": (0.6443, 0.6862),
    "(sigmoid,64)->(softmax,10)": (0.6501, 0.7295),
    "(sigmoid,64)->(sigmoid,64)->(softmax,10)": (0.5948, 0.6649),
}
# How every accuracy interval of the tables is made (zspace.fewshot.stats.accuracy_ci95).
CI_NOTE = "95% CI: Student t on the logit scale, so it stays inside [0, 100]; n/a below 3 draws."
# Published semi-supervised results with 50 labels (means of many draws).
PUBLISHED = {
    "Improved GAN (Salimans et al. 2016)": 0.978,
    "Ladder networks (Rasmus et al. 2015)": 0.984,
}


# What a study's accuracies are measured on (fewshot.json's "evaluated_on").
TEST = "test"
VALIDATION = "validation"
_EVALUATION_SETS = {
    TEST: "test images",
    VALIDATION: "validation images (the last 1/6 of the training images; labels and unlabelled"
    " data come from the rest, and the test set is not used)",
}


def interval_text(interval, scale: float = 100, digits: int = 2, signed: bool = False) -> str:
    """ "[62.81, 65.27]" (scaled to percent by default), or "n/a" when there is no interval."""
    if interval is None:
        return "n/a"
    sign = "+" if signed else ""
    low, high = (scale * value for value in interval)
    return f"[{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def cell(result: dict | None) -> str:
    """ "mean [95% CI]" in percent; "-" for a cell that was not studied."""
    if result is None:
        return "-"
    return f"{100 * result['mean']:.2f} {interval_text(result['ci95'])}"


def evaluation_text(summary: dict) -> str:
    """ "10000 test images" or "10000 validation images (...)"."""
    count = summary.get("evaluation_images", summary.get("test_images"))
    return f"{count} {_EVALUATION_SETS[summary.get('evaluated_on', TEST)]}"


def accuracy_label(summary: dict) -> str:
    """ "test accuracy" or "validation accuracy"."""
    return f"{summary.get('evaluated_on', TEST)} accuracy"


def reference_table(summary: dict, count: int) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the reference-shaped table (architecture | pixels+MLP | encoder+MLP)
    for one label count, with the reference numbers beside ours at 50 random labels."""
    config, results = summary["config"], summary["results"]
    by_key = {(r["method"], r["head"], r["labels"]): r for r in results}
    diffs = {(d["head"], d["labels"]): d for d in summary.get("differences", [])}
    heads = list(dict.fromkeys(r["head"] for r in results if r["head"] != "-"))
    finetuned = any(r["method"] == FINETUNED for r in results)
    has_reference = count == REFERENCE_LABELS and not config.get("per_class")
    header = ["architecture", "pixels+MLP"]
    header += ["reference"] if has_reference else []
    header += ["encoder+MLP"]
    header += ["reference"] if has_reference else []
    header += ["finetuned encoder+MLP"] if finetuned else []
    header += ["encoder − pixels"]
    rows = []
    for head in heads:
        reference = REFERENCE.get(head) if has_reference else None
        row = [f"`{head}`", cell(by_key.get((PIXELS, head, count)))]
        if has_reference:
            row.append(f"{100 * reference[0]:.2f}" if reference else "-")
        row.append(cell(by_key.get((ENCODER, head, count))))
        if has_reference:
            row.append(f"{100 * reference[1]:.2f}" if reference else "-")
        if finetuned:
            row.append(cell(by_key.get((FINETUNED, head, count))))
        difference = diffs.get((head, count))
        row.append(_signed(difference) if difference else "-")
        rows.append(row)
    return header, rows


def beyond_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the methods that use the unlabelled training images."""
    timings = summary.get("timings", {})
    rows = []
    for result in (r for r in summary["results"] if r["head"] == "-"):
        seconds = timings.get(f"method:{result['method']}")
        time_text = f"{seconds:.0f} s" if seconds is not None else "-"
        rows.append([result["method"], str(result["labels"]), cell(result), time_text])
    draws = summary["config"]["draws"]
    return ["method", "labels", f"{accuracy_label(summary)} (%)", f"time for {draws} draws"], rows


def table_markdown(summary: dict) -> str:
    """The reference-shaped table (one per label count) and a table of the other methods."""
    config, results = summary["config"], summary["results"]
    draw_rule = f"{config['per_class']} per class" if config.get("per_class") else "random"
    lines = [
        "# Few-shot transfer: pixels+MLP vs encoder+MLP",
        "",
        f"Autoencoder: `{config['ae_run']}`. {accuracy_label(summary).capitalize()} (%) on"
        f" {evaluation_text(summary)}, mean [95% CI] over {config['draws']} draws of the labelled"
        f" set ({draw_rule}, seed {config['seed']}); both pipelines see the same draws. "
        + CI_NOTE
        + " Reference: one run each, 50 random labels. The last column is the paired difference"
        " encoder − pixels (percentage points, t-interval).",
        f"Heads: full-batch Adam, {config['head_training']['steps']} steps, lr"
        f" {config['head_training']['learning_rate']}, weight decay"
        f" {config['head_training']['weight_decay']} (fixed; no test-set selection).",
    ]
    for count in sorted({r["labels"] for r in results}):
        header, rows = reference_table(summary, count)
        if rows:
            lines += ["", f"## {count} labels", "", *_markdown_rows(header, rows)]
    header, rows = beyond_table(summary)
    if rows:
        lines += [
            "",
            "## Beyond: using the unlabelled training images",
            "",
            "Evaluation images are only classified, never part of a graph or of training. A method's"
            " time includes building the label-free artefacts (deskewed images, features, kNN"
            " graph) it was the first to need.",
            "",
            *_markdown_rows(header, rows),
            "",
            "Published anchors at 50 labels: "
            + "; ".join(f"{name} {100 * value:.1f}%" for name, value in PUBLISHED.items())
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _signed(difference: dict) -> str:
    return f"{100 * difference['mean']:+.2f} {interval_text(difference['ci95'], signed=True)}"


def _markdown_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def results_csv(results: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "head", "labels", "mean", "ci95_low", "ci95_high", "accuracies"])
    for r in results:
        writer.writerow(
            [
                r["method"],
                r["head"],
                r["labels"],
                f"{r['mean']:.6f}",
                *(["", ""] if r["ci95"] is None else [f"{bound:.6f}" for bound in r["ci95"]]),
                " ".join(f"{a:.6f}" for a in r["accuracies"]),
            ]
        )
    return buffer.getvalue()


# The kind a few-shot study's output folder is claimed as (zspace.runs.claim_folder).
FEWSHOT_OUTPUT = "fewshot-study"


def write_outputs(out: Path, summary: dict) -> list[Path]:
    """Write every output of a study into folder `out`; returns the paths written."""
    claim_folder(out, FEWSHOT_OUTPUT)
    atomic_write_json(out / "fewshot.json", summary)
    atomic_write_text(out / "fewshot.csv", results_csv(summary["results"]))
    atomic_write_text(out / "table.md", table_markdown(summary))
    paths = [out / "fewshot.json", out / "fewshot.csv", out / "table.md"]
    paths.append(plot_heads(summary["results"], out / "fewshot.png", accuracy_label(summary)))
    if len({r["labels"] for r in summary["results"]}) > 1:
        paths.append(
            plot_learning_curve(
                summary["results"], out / "learning_curve.png", accuracy_label(summary)
            )
        )
    return paths


def curve_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the learning curve: one row per label count, with its draw rule,
    the most draws a cell took and each cell's mean [95% CI] (a † where the target was not
    reached; "(n draws)" where a cell stopped before the most)."""
    points = summary["curve"]
    series = list(dict.fromkeys((p["method"], p["head"]) for p in points))
    by_key = {(p["method"], p["head"], p["labels"]): p for p in points}
    header = ["labels", "draws", "draw rule"]
    header += [method if head == "-" else f"{method} `{head}`" for method, head in series]
    rows = []
    for count in list(dict.fromkeys(p["labels"] for p in points)):
        row_points = [p for p in points if p["labels"] == count]
        most = max(p["draws"] for p in row_points)  # each cell stops on its own
        row = [str(count), str(most), row_points[0]["draw_rule"]]
        for method, head in series:
            point = by_key.get((method, head, count))
            mark = "" if point is None or point["target_reached"] else " †"
            fewer = "" if point is None or point["draws"] == most else f" ({point['draws']} draws)"
            row.append(cell(point) + mark + fewer)
        rows.append(row)
    return header, rows


def curve_markdown(summary: dict) -> str:
    config = summary["config"]
    study = config["study"]
    header, rows = curve_table(summary)
    lines = [
        "# Few-shot learning curve",
        "",
        f"Autoencoder: `{study['ae_run']}`. {accuracy_label(summary).capitalize()} (%) on"
        f" {evaluation_text(summary)}, mean [95% CI] over the draws of the labelled set (seed"
        f" {study['seed']}); every method sees the same draws. {CI_NOTE}",
        f"Draws per label count and method: {study['draws']} first, then more until its 95%"
        f" CI half-width is at most {config['target_halfwidth_points']} points, or"
        f" {config['max_draws']} draws (†: stopped there short of the target); the draws column"
        " gives the most a method took, and a method that needed fewer says so. Counts that are"
        " multiples of 10 are drawn balanced (count/10 per class), others at random.",
        "",
        *_markdown_rows(header, rows),
    ]
    return "\n".join(lines) + "\n"


def write_curve_outputs(out: Path, summary: dict) -> list[Path]:
    """Write a learning curve's fewshot.json, fewshot.csv, table.md and learning_curve.png."""
    claim_folder(out, FEWSHOT_OUTPUT)
    atomic_write_json(out / "fewshot.json", summary)
    atomic_write_text(out / "fewshot.csv", results_csv(summary["curve"]))
    atomic_write_text(out / "table.md", curve_markdown(summary))
    paths = [out / "fewshot.json", out / "fewshot.csv", out / "table.md"]
    title = "Learning curve (mean and 95% CI over adaptive draws)"
    paths.append(
        plot_learning_curve(
            summary["curve"], out / "learning_curve.png", accuracy_label(summary), title
        )
    )
    return paths


def plot_heads(results: list[dict], path: Path, ylabel: str = "test accuracy") -> Path:
    """Mean accuracy with 95% CI bars (none below 3 draws) per head and pipeline, at the
    largest label count studied with heads (and the methods beyond as horizontal lines)."""
    counts = sorted({r["labels"] for r in results})
    count = counts[len(counts) // 2] if 50 not in counts else 50
    cells = [r for r in results if r["labels"] == count]
    heads = list(dict.fromkeys(r["head"] for r in cells if r["head"] != "-"))
    methods = list(dict.fromkeys(r["method"] for r in cells if r["head"] != "-"))
    # Imported to draw only: the CLI loads this module for its constants at every start.
    # A bare Figure (no pyplot): no global backend switch, no figure registry to close.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axis = figure.subplots()
    width = 0.8 / max(1, len(methods))
    for m_index, method in enumerate(methods):
        bars = []  # (x, mean, ci95 or None)
        for h_index, head in enumerate(heads):
            match = [r for r in cells if r["method"] == method and r["head"] == head]
            if match:
                x = h_index + (m_index - (len(methods) - 1) / 2) * width
                bars.append((x, match[0]["mean"], match[0]["ci95"]))
        if bars:
            axis.bar([b[0] for b in bars], [b[1] for b in bars], width=width, label=method)
        with_interval = [b for b in bars if b[2] is not None]
        if with_interval:
            axis.errorbar(
                [b[0] for b in with_interval],
                [b[1] for b in with_interval],
                yerr=[
                    [b[1] - b[2][0] for b in with_interval],
                    [b[2][1] - b[1] for b in with_interval],
                ],
                fmt="none",
                ecolor="black",
                capsize=3,
                linewidth=1,
            )
    for r in cells:
        if r["head"] == "-":
            axis.axhline(r["mean"], linestyle="--", linewidth=1, color="gray")
            axis.text(
                len(heads) - 0.5, r["mean"], f" {r['method']}", va="bottom", ha="right", fontsize=7
            )
    axis.set_xticks(range(len(heads)))
    axis.set_xticklabels([h.replace("->", "\n") for h in heads], fontsize=7)
    axis.set_ylabel(ylabel)
    axis.set_ylim(0, 1)
    axis.set_title(f"{count} labels: mean and 95% CI over draws")
    if methods:
        axis.legend(fontsize=8, loc="lower left")
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)
    return path


def plot_learning_curve(
    results: list[dict],
    path: Path,
    ylabel: str = "test accuracy",
    title: str = "Learning curve (mean and 95% CI over draws)",
) -> Path:
    """Accuracy against the number of labels, one line (with its CI band, where there is one)
    per method and head."""
    from matplotlib.figure import Figure  # imported to draw only, as in plot_heads

    figure = Figure(figsize=(8, 5), dpi=100)
    axis = figure.subplots()
    series = list(dict.fromkeys((r["method"], r["head"]) for r in results))
    nan = float("nan")  # a point without an interval leaves a gap in the band
    for method, head in series:
        points = sorted(
            (r["labels"], r["mean"], *(r["ci95"] or (nan, nan)))
            for r in results
            if r["method"] == method and r["head"] == head
        )
        xs = [p[0] for p in points]
        label = method if head == "-" else f"{method} {head}"
        line = axis.plot(xs, [p[1] for p in points], marker="o", markersize=3, label=label)[0]
        axis.fill_between(
            xs, [p[2] for p in points], [p[3] for p in points], alpha=0.15, color=line.get_color()
        )
    axis.set_xscale("log")
    axis.set_xlabel("labelled training images")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    save_figure(figure, path)
    return path
