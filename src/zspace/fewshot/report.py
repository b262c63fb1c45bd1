"""Study outputs: table.md, fewshot.json, fewshot.csv and PNG plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from matplotlib.figure import Figure

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
# Published semi-supervised results with 50 labels (means of many draws).
PUBLISHED = {
    "Improved GAN (Salimans et al. 2016)": 0.978,
    "Ladder networks (Rasmus et al. 2015)": 0.984,
}


def cell(result: dict | None) -> str:
    if result is None:
        return "-"
    low, high = result["ci95"]
    return f"{100 * result['mean']:.2f} ± {100 * (high - low) / 2:.2f}"


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
    return ["method", "labels", "accuracy (%)", f"time for {draws} draws"], rows


def table_markdown(summary: dict) -> str:
    """The reference-shaped table (one per label count) and a table of the other methods."""
    config, results = summary["config"], summary["results"]
    draw_rule = f"{config['per_class']} per class" if config.get("per_class") else "random"
    lines = [
        "# Few-shot transfer: pixels+MLP vs encoder+MLP",
        "",
        f"Autoencoder: `{config['ae_run']}`. Test accuracy (%) on {summary['test_images']} test images,"
        f" mean ± 95% CI (t) over {config['draws']} draws of the labelled set ({draw_rule}, seed"
        f" {config['seed']}); both pipelines see the same draws. Reference: one run each, 50 random"
        " labels. The last column is the paired difference encoder − pixels (percentage points).",
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
            "## Beyond: using the 60,000 unlabelled training images",
            "",
            "Test images are only classified, never part of a graph or of training. A method's"
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
    low, high = difference["ci95"]
    return f"{100 * difference['mean']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


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
                f"{r['ci95'][0]:.6f}",
                f"{r['ci95'][1]:.6f}",
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
    paths.append(plot_heads(summary["results"], out / "fewshot.png"))
    if len({r["labels"] for r in summary["results"]}) > 1:
        paths.append(plot_learning_curve(summary["results"], out / "learning_curve.png"))
    return paths


def plot_heads(results: list[dict], path: Path) -> Path:
    """Mean accuracy with 95% CI bars per head and pipeline, at the largest label count studied
    with heads (and the methods beyond as horizontal lines)."""
    counts = sorted({r["labels"] for r in results})
    count = counts[len(counts) // 2] if 50 not in counts else 50
    cells = [r for r in results if r["labels"] == count]
    heads = list(dict.fromkeys(r["head"] for r in cells if r["head"] != "-"))
    methods = list(dict.fromkeys(r["method"] for r in cells if r["head"] != "-"))
    # A bare Figure (no pyplot): no global backend switch, no figure registry to close.
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axis = figure.subplots()
    width = 0.8 / max(1, len(methods))
    for m_index, method in enumerate(methods):
        xs, ys, errors = [], [], []
        for h_index, head in enumerate(heads):
            match = [r for r in cells if r["method"] == method and r["head"] == head]
            if match:
                r = match[0]
                xs.append(h_index + (m_index - (len(methods) - 1) / 2) * width)
                ys.append(r["mean"])
                errors.append([[r["mean"] - r["ci95"][0]], [r["ci95"][1] - r["mean"]]])
        if xs:
            yerr = [[e[0][0] for e in errors], [e[1][0] for e in errors]]
            axis.bar(xs, ys, width=width, yerr=yerr, capsize=3, label=method)
    for r in cells:
        if r["head"] == "-":
            axis.axhline(r["mean"], linestyle="--", linewidth=1, color="gray")
            axis.text(
                len(heads) - 0.5, r["mean"], f" {r['method']}", va="bottom", ha="right", fontsize=7
            )
    axis.set_xticks(range(len(heads)))
    axis.set_xticklabels([h.replace("->", "\n") for h in heads], fontsize=7)
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0, 1)
    axis.set_title(f"{count} labels: mean and 95% CI over draws")
    if methods:
        axis.legend(fontsize=8, loc="lower left")
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)
    return path


def plot_learning_curve(results: list[dict], path: Path) -> Path:
    """Accuracy against the number of labels, one line (with its CI band) per method and head."""
    figure = Figure(figsize=(8, 5), dpi=100)
    axis = figure.subplots()
    series = list(dict.fromkeys((r["method"], r["head"]) for r in results))
    for method, head in series:
        points = sorted(
            (r["labels"], r["mean"], *r["ci95"])
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
    axis.set_ylabel("test accuracy")
    axis.set_title("Learning curve (mean and 95% CI over draws)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=6, loc="lower right")
    figure.tight_layout()
    save_figure(figure, path)
    return path
