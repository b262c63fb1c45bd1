"""The prose sections of a run's card: the model, how it was made, its data, training time
and hardware, its figures, how to use it and its limits; each a list of Markdown lines."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from zspace.data.registry import get_spec
from zspace.errors import ZspaceError
from zspace.runs import (
    AUTOENCODER,
    CLASSIFIER,
    GMM_BASELINE,
    LATENT_FLOW,
    LATENT_GAN,
    PIXEL_GAN,
    RUN_KINDS,
    TRANSLATOR,
)
from zspace.training.cards.command import Command
from zspace.training.cards.facts import (
    EVALUATION_METRICS,
    RECORD_METRICS,
    RunFacts,
    data_limit,
    file_sha256,
    training_seconds,
    weight_count,
)
from zspace.training.cards.file_names import EVALUATION_FILE
from zspace.training.cards.markdown import format_value, markdown_table

SAMPLER_TITLES = {
    LATENT_GAN: "latent GAN",
    PIXEL_GAN: "pixel-space GAN",
    LATENT_FLOW: "latent flow",
    GMM_BASELINE: "GMM",
}


def _title(info: RunFacts) -> str:
    model = info.config.get("model") or {}
    kind = info.kind
    if kind == AUTOENCODER:
        return f"`{model.get('preset')}` autoencoder, {model.get('latent_dim')}-d codes"
    if kind in (LATENT_GAN, PIXEL_GAN):
        mode = "conditional " if info.conditional else ""
        return f"{mode}{SAMPLER_TITLES[kind]}, preset `{model.get('preset')}`"
    if kind == LATENT_FLOW:
        mode = "conditional " if info.conditional else ""
        one_step = ", distilled to one step" if info.config.get("distilled") else ""
        return f"{mode}latent flow, preset `{model.get('preset')}`{one_step}"
    if kind == GMM_BASELINE:
        return (
            f"class-conditional Gaussian mixtures, {info.config.get('components')} per digit, "
            "over autoencoder codes"
        )
    if kind == CLASSIFIER:
        return f"digit classifier ({(info.config.get('training') or {}).get('method', 'CNN')})"
    if kind == TRANSLATOR:
        source, target = model.get("source"), model.get("target")
        scope = "every ordered pair of digits" if target is None else f"{source} -> {target}"
        return f"`{model.get('method')}` translator of AE codes, {scope}"
    return RUN_KINDS[kind].description if kind in RUN_KINDS else kind


def what_section(info: RunFacts) -> list[str]:
    kind = info.kind
    description = RUN_KINDS[kind].description if kind in RUN_KINDS else kind
    lines = [
        f"# {info.name}: {_title(info)}",
        "",
        f"A zspace run of kind `{kind}` ({description}), written by zspace "
        f"{info.config.get('zspace_version', '(version not recorded)')}. zspace wrote this card "
        "from the run folder's own files and rewrites it when it updates the run; delete the "
        "`zspace:` block of the front matter to keep your own edits (zspace then leaves this "
        "file alone).",
        "",
        "## Model",
        "",
    ]
    rows = []
    model = info.config.get("model")
    if isinstance(model, dict):
        rows += [
            (f"`{key}`", format_value(value)) for key, value in _architecture(kind, model).items()
        ]
    for key in ("components", "latent_dim", "train_count", "conditional"):
        if key in info.config and not (isinstance(model, dict) and key in model):
            rows.append((f"`{key}`", format_value(info.config[key])))
    weights = RUN_KINDS[kind].weights if kind in RUN_KINDS else None
    if weights is not None:
        count = weight_count(info.run.file(weights))
        rows.append((f"parameters (in `{weights}`)", "–" if count is None else f"{count:,}"))
    if kind in (LATENT_GAN, PIXEL_GAN):
        training = info.config.get("training") or {}
        ema = bool(training.get("ema_decay"))
        rows.append(("samples drawn with", "the EMA of G's weights" if ema else "G's weights"))
        rows.append(
            ("noise inverter", format_value(info.run.file("inverter.safetensors").is_file()))
        )
    if kind == LATENT_FLOW:
        sampling = info.config.get("sampling") or {}
        rows.append(("samples drawn with", "the EMA of the velocity field's weights"))
        rows.append(
            (
                "default sampler",
                f"{sampling.get('solver')} x {sampling.get('steps')} steps, "
                f"guidance {sampling.get('guidance')}",
            )
        )
        distilled = info.config.get("distilled")
        if isinstance(distilled, dict):
            rows.append(("distilled from", f"`{distilled.get('teacher')}`"))
    autoencoder = info.config.get("autoencoder")
    if isinstance(autoencoder, dict):
        source = autoencoder.get("source") or autoencoder.get("run")
        rows.append(("autoencoder (decoder copied into this folder)", f"`{source}`"))
    return lines + markdown_table(rows, ("setting (config.json)", "value"))


def _architecture(kind: str, model: dict) -> dict:
    """The model config, less the sizes an autoencoder preset does not use (an MLP has no
    channels, a convolutional or transformer encoder no hidden_dims)."""
    if kind != AUTOENCODER:
        return model
    mlp = str(model.get("preset", "")).startswith("mlp")
    unused = {"channels" if mlp else "hidden_dims"} | (
        {"extra"} if not model.get("extra") else set()
    )
    return {key: value for key, value in model.items() if key not in unused}


def command_section(info: RunFacts, command: Command | None, why_not: str | None) -> list[str]:
    lines = ["## How it was made", ""]
    if command is None:
        lines += [f"No command rebuilt: {why_not}.", ""]
    elif command.differences:
        lines += [
            "No `zspace` command makes exactly this model: it was configured through the "
            "Python API. The closest command, and the settings in which the run differs from it:",
            "",
            "```bash",
            command.text(),
            "```",
            "",
            *markdown_table(
                [
                    (f"`{k}`", format_value(a), format_value(b))
                    for k, (a, b) in command.differences.items()
                ],
                ("setting", "this run", "the command"),
            ),
        ]
    else:
        resumes = info.kind in (AUTOENCODER, LATENT_GAN, PIXEL_GAN, LATENT_FLOW)
        note = "; `--resume` continues a killed run to the same weights" if resumes else ""
        lines += [
            f"This command makes it (seed {_seed(info.config)}{note}):",
            "",
            "```bash",
            command.text(),
            "```",
            "",
        ]
    budget = (info.config.get("training") or {}).get("time_budget")
    if command is not None and budget is not None:
        lines += [
            f"`--time-budget` stops training after {budget:g} s of wall clock, so the command "
            "gets as far as this run only on an equally fast machine; this run stopped after "
            f"epoch {info.last.get('epoch', '?')}.",
            "",
        ]
    if info.study is not None:
        study, stage = info.study
        rerun = shlex.join(
            ["zspace", "run", "--config", f"{study}/config.toml", "--out", study, "--force", stage]
        )
        lines += [
            f"It was made by stage `{stage}` of the study in `{study}` (`zspace run`); "
            f"`{rerun}` makes it again there.",
            "",
        ]
    training = info.config.get("training")
    if isinstance(training, dict):
        shown = {k: v for k, v in training.items() if k != "labelled_indices"}
        lines += ["Training settings (config.json's `training`):", ""]
        lines += markdown_table(
            [(f"`{k}`", format_value(v)) for k, v in shown.items()], ("setting", "value")
        )
    return lines


def _seed(config: dict):
    for value in ((config.get("training") or {}).get("seed"), config.get("seed")):
        if value is not None:
            return value
    return "not recorded"


def data_section(info: RunFacts) -> list[str]:
    dataset, limit = info.dataset, data_limit(info.config)
    lines = ["## Data", ""]
    subset = "all training images" if limit is None else f"the first {limit:,} training images"
    if info.kind in (LATENT_GAN, LATENT_FLOW, GMM_BASELINE):
        subset += ", as codes of the autoencoder named above"
    if dataset.lower().endswith(".npz"):
        path = Path(dataset)
        lines.append(f"`{dataset}` (a user's `.npz` file), {subset}.")
        lines.append("")
        if path.is_file():
            rows = [(f"`{path.name}`", f"{path.stat().st_size:,}", f"`{file_sha256(path)}`")]
            lines += markdown_table(
                rows, ("file", "bytes", "SHA-256 (hashed when this card was written)")
            )
        else:
            lines += ["The file was not found when this card was written, so no checksum.", ""]
        return lines
    try:
        spec = get_spec(dataset)
    except ZspaceError:
        return lines + [f"`{dataset}` ({subset}); zspace's dataset registry does not know it.", ""]
    lines += [
        f"`{spec.name}`: {spec.description}; {subset}. The registry's checksums, which every "
        "copy zspace reads or downloads is checked against:",
        "",
    ]
    rows = [
        (role, f"`{file.name}`", f"`{file.sha256_raw or 'not in the registry'}`", f"`{file.md5}`")
        for role, file in spec.files.items()
    ]
    return lines + markdown_table(
        rows, ("file", "name", "SHA-256 of the decompressed file", "MD5 of the official .gz")
    )


def hardware_section(info: RunFacts) -> list[str]:
    seconds = training_seconds(info)
    lines = ["## Training time and hardware", ""]
    if seconds is None:
        lines.append("Training time: not recorded (no `seconds` in metrics.jsonl).")
    else:
        epochs = sum(1 for r in info.metrics if "seconds" in r)
        lines.append(
            f"Training time: {seconds:.1f} s, the sum of `seconds` over the {epochs} "
            "record(s) of metrics.jsonl."
        )
    lines.append("")
    environment = info.config.get("environment")
    if not isinstance(environment, dict):
        return lines + [
            "Hardware: not recorded (this run was written before zspace recorded it).",
            "",
        ]
    lines += ["Hardware and software of the (last) training session (config.json):", ""]
    rows = [(f"`{k}`", format_value(v)) for k, v in environment.items()]
    return lines + markdown_table(rows, ("item", "value"))


def figures_section(info: RunFacts) -> list[str]:
    lines = ["## Evaluation", ""]
    record_rows = [
        (label, format_value(info.last[key]))
        for key, (_, label, _) in RECORD_METRICS.items()
        if info.last.get(key) is not None
    ]
    if not record_rows:
        lines += ["The run records no figures of its own.", ""]
    else:
        where = f"epoch {info.last['epoch']}" if "epoch" in info.last else "the run"
        source = f"metrics.jsonl's last record ({where})"
        if not info.metrics:
            source = "config.json (this run has no metrics.jsonl)"
        lines += [f"From {source}:", "", *markdown_table(record_rows, ("figure", "value"))]
    if info.evaluation is None:
        run = shlex.quote(str(info.run.path))
        if RUN_KINDS.get(info.kind) and (RUN_KINDS[info.kind].sampler or info.kind == AUTOENCODER):
            lines += [
                "No evaluation has been written into this folder: "
                f"`zspace evaluate {run} --json {run}/{EVALUATION_FILE}` writes one "
                "(Frechet distance, precision, recall) and updates this card.",
                "",
            ]
        return lines
    evaluation = info.evaluation
    samples = evaluation["samples"]
    classifier = evaluation.get("classifier") or {}
    what = "test-set reconstructions" if evaluation.get("kind") == AUTOENCODER else "samples"
    made_by = f", written by {evaluation['made_by']}" if evaluation.get("made_by") else ""
    lines += [
        f"From `{EVALUATION_FILE}`{made_by} ({format_value(samples.get('count'))} {what}, "
        "judged by zspace's evaluation classifier, test accuracy "
        f"{format_value(classifier.get('test_accuracy'), 4)}; "
        "Frechet distance, precision and recall in its feature space against the test set):",
        "",
    ]
    columns = [("this run", samples)]
    ceiling = evaluation.get("ceiling")
    if isinstance(ceiling, dict) and evaluation.get("kind") != AUTOENCODER:
        columns.append(("AE test reconstructions (ceiling)", ceiling))
    rows = [
        (name, *(format_value(column.get(key), 4) for _, column in columns))
        for key, (_, name) in EVALUATION_METRICS.items()
    ]
    return lines + markdown_table(rows, ("figure", *(name for name, _ in columns)))


def usage_section(info: RunFacts) -> list[str]:
    run = shlex.quote(str(info.run.path))
    path = json.dumps(str(info.run.path))
    lines = ["## How to use it", "", "```python", "import zspace", ""]
    kind = info.kind
    if kind == AUTOENCODER:
        lines += [
            f"ae = zspace.load({path})  # an Autoencoder",
            "codes = ae.encode(images)  # float (N, 1, 28, 28) in [0, 1] -> "
            f"(N, {(info.config.get('model') or {}).get('latent_dim')})",
            "images = ae.decode(codes)",
            "```",
            "",
            "```bash",
            f"zspace encode {run} --out codes.npz",
            f"zspace reconstruct {run} --out grid.png",
            "```",
        ]
    elif kind == TRANSLATOR:
        model = info.config.get("model") or {}
        target = 9 if model.get("target") is None else model["target"]
        source = "" if model.get("source") is None else f" --from {model['source']}"
        lines += [
            f"translator = zspace.load({path})",
            f"images = translator.translate_images(digits, {target})",
            "# digits: uint8 (N, 28, 28); images: float (N, 1, 28, 28) in [0, 1]",
            "```",
            "",
            "```bash",
            f"zspace translate {run} my_digit.png --to {target}{source} --out translated.png",
            "```",
        ]
    elif kind == CLASSIFIER:
        lines += [
            f"classifier = zspace.load({path})",
            "labels, probabilities = classifier.classify(images)  # uint8 (N, 28, 28)",
            "```",
            "",
            "```bash",
            f"zspace classify my_digit.png --model {run}",
            f"zspace serve GAN_RUN --classifier {run}",
            "```",
        ]
    else:
        digit = "digit=7, " if info.conditional else ""
        lines += [
            f"sampler = zspace.load({path})",
            f"images = sampler.sample({digit}n=16, seed=3)  # float (16, 1, 28, 28) in [0, 1]",
            "```",
            "",
            "```bash",
            f"zspace sample {run} {'--digit 7 ' if info.conditional else ''}-n 16 --seed 3 "
            "--out grid.png",
            f"zspace evaluate {run}",
            f"zspace serve {run}",
            "```",
        ]
    return lines + [""]


def limits_section(info: RunFacts) -> list[str]:
    dataset, limit = info.dataset, data_limit(info.config)
    lines = [
        "## Limits",
        "",
        f"- Learned from `{Path(dataset).name}` only: 28x28 grayscale images, light strokes on a "
        "dark background, centred like MNIST digits. Anything else (photos, dark-on-light "
        "scans, other sizes) must be prepared that way first; `zspace classify` does it for "
        "PNG/JPEG files.",
    ]
    if limit is not None:
        lines.append(f"- Trained on the first {limit:,} training images only, not the full set.")
    if info.kind in (LATENT_GAN, PIXEL_GAN, LATENT_FLOW, GMM_BASELINE):
        lines.append(
            "- Its figures come from zspace's own evaluation classifier, not from people; a "
            "generated digit can fool it and still look wrong."
        )
    if info.kind in (LATENT_GAN, LATENT_FLOW, GMM_BASELINE):
        lines.append(
            "- It draws codes for the autoencoder it was trained on: its images are never "
            "sharper than that decoder's reconstructions."
        )
    return lines + [""]
