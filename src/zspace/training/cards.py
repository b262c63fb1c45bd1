"""Model cards: a README.md in every run folder, in the Hugging Face model-card convention.

A card is YAML front matter (library_name, tags, datasets, metrics, model-index and a `zspace`
block that marks the card as zspace's) followed by prose: what the model is, the `zspace`
command that makes it, its data and their checksums, training time and hardware, its figures,
how to load it and its limits. Every field is read from the run's own files (config.json,
metrics.jsonl, evaluation.json, the weight files' headers) and, for a stage of `zspace run`,
the study's config.json and stage records above it; nothing is typed by hand.

    write_card("runs/ae")        # runs/ae/README.md; None when a README.md of the user's is there

A README.md that zspace did not write (no `zspace:` block with `card:` in its front matter) is
never overwritten: `write_card` leaves it alone, says so in one line on stderr and returns None.

Each kind's command is rebuilt by a `command_for_run(run, config)` next to the code that trains
that kind, which knows its flags and defaults. Those modules import this one to write their
cards, so each kind's row in `zspace.runs.RUN_KINDS` names its builder as "module:function"
text, imported when a card is written, as it names the loader.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import platform
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from zspace.checkpoint import atomic_write_text
from zspace.data.registry import DATASETS, get_spec
from zspace.errors import ZspaceError
from zspace.runs import (
    AUTOENCODER,
    CLASSIFIER,
    CONFIG_FILE,
    GMM_BASELINE,
    LATENT_GAN,
    PIXEL_GAN,
    RUN_KINDS,
    STUDY,
    RunDir,
)

CARD_FILE = "README.md"
CARD_FORMAT = 1  # the `card:` number in the front matter's zspace block
EVALUATION_FILE = "evaluation.json"  # `zspace evaluate RUN --json RUN/evaluation.json`
# Where `zspace run` keeps its stage records (zspace.pipeline.cache.RECORDS_FOLDER).
STUDY_RECORDS = "stages"

SAMPLER_TITLES = {LATENT_GAN: "latent GAN", PIXEL_GAN: "pixel-space GAN", GMM_BASELINE: "GMM"}
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


# --- what a run records about where it was trained ---------------------------------------------


def run_environment(device: torch.device | str, processes: int = 1) -> dict:
    """The hardware and software a run is trained on, for config.json's "environment"."""
    device = torch.device(device)
    cpu = _cpu_name()
    name = cpu
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = f"Apple GPU (MPS) on {cpu}"
    return {
        "device": device.type,
        "device_name": name,
        "cpu": cpu,
        "processes": processes,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


# --- the command that makes a run ---------------------------------------------------------------


@dataclass
class Command:
    """A `zspace` command line (after "zspace") and the settings it does not reproduce:
    dotted setting -> (what the run has, what the command gives). Empty: the command is exact."""

    args: list
    differences: dict = field(default_factory=dict)

    def text(self) -> str:
        return shlex.join(["zspace", *(str(a) for a in self.args)])


def setting_differences(saved: dict, rebuilt: dict) -> dict:
    """Dotted settings whose values differ between two nested dicts: key -> (saved, rebuilt)."""
    flat_saved, flat_rebuilt = _flatten(saved), _flatten(rebuilt)
    return {
        key: (flat_saved.get(key), flat_rebuilt.get(key))
        for key in sorted(set(flat_saved) | set(flat_rebuilt))
        if flat_saved.get(key) != flat_rebuilt.get(key)
    }


def _flatten(settings, prefix: str = "") -> dict:
    flat = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def _command(run: RunDir, config: dict) -> tuple[Command | None, str | None]:
    """(the command, None), or (None, why it could not be rebuilt)."""
    kind = RUN_KINDS.get(config["kind"])
    builder = None if kind is None else kind.command
    if builder is None:
        return None, f"zspace has no single command for a {config['kind']} run"
    module_name, function_name = builder.split(":")
    try:
        command = getattr(importlib.import_module(module_name), function_name)(run, config)
    except (ZspaceError, AttributeError, KeyError, TypeError, ValueError) as error:
        return None, f"config.json does not name a setting the command needs ({error})"
    device = (config.get("environment") or {}).get("device")
    if device and "--device" not in command.args:
        command.args += ["--device", device]
    return command, None


# --- the front matter ---------------------------------------------------------------------------


def to_yaml(data: dict) -> str:
    """Block-style YAML for nested dicts and lists of str, int, float, bool and None, readable
    by any YAML 1.1 or 1.2 parser (`yaml.safe_load` gives `data` back); zspace itself needs no
    YAML library."""
    return "\n".join(_yaml_block(data, 0)) + "\n"


def _yaml_block(value, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{_yaml_key(key)}:")
                lines += _yaml_block(item, indent + 2)
            else:
                lines.append(f"{pad}{_yaml_key(key)}: {_yaml_scalar(item)}")
        return lines
    for item in value:
        if isinstance(item, (dict, list)) and item:
            nested = _yaml_block(item, indent + 2)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines += nested[1:]
        else:
            lines.append(f"{pad}- {_yaml_scalar(item)}")
    return lines


# Strings written without quotes: a letter first, then no character YAML gives a meaning to,
# and no word that YAML 1.1 reads as a boolean or null.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_.+/-]*(?: [A-Za-z0-9_.+/()-]+)*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _yaml_key(key) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else _yaml_scalar(key)


def _yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:  # YAML 1.1 reads 1e-05 as a string, 1.0e-05 as a float
            mantissa += ".0"
        return f"{mantissa}e{exponent}" if exponent else mantissa
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    # A JSON string is a YAML double-quoted scalar; line separators are escaped as YAML wants.
    text = json.dumps(text, ensure_ascii=False)
    return text.replace("\u2028", "\\L").replace("\u2029", "\\P").replace("\x85", "\\N")


def front_matter_lines(text: str) -> list[str] | None:
    """The lines between a leading `---` and the next `---`, or None without front matter."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return lines[1:index]
    return None


def is_zspace_card(path: str | Path) -> bool:
    """True when `path` holds a card zspace wrote: a front matter with a top-level `zspace:`
    block that has a `card:` entry."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    lines = front_matter_lines(text) or []
    for index, line in enumerate(lines):
        if line.rstrip() == "zspace:":
            for entry in lines[index + 1 :]:
                if not entry.startswith(" "):
                    break
                if re.match(r"\s+card:\s*\d+\s*$", entry):
                    return True
    return False


# --- reading the run's files --------------------------------------------------------------------


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _study_of(run: RunDir) -> tuple[str, str] | None:
    """(study folder, stage) when the run is a stage's folder (or a run inside one) of a
    `zspace run` study: the study's config.json is one or two levels up, and its records
    folder has the stage's record or started marker."""
    resolved = run.path.resolve()
    for depth, ancestor in enumerate(list(resolved.parents)[:2], start=1):
        config = _read_json(ancestor / CONFIG_FILE)
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


def _dataset_name(config: dict) -> str:
    """The dataset a run learned from, wherever its config keeps it (default mnist)."""
    for keys in (("training", "dataset"), ("dataset",), ("study", "data", "dataset")):
        value = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return "mnist"


def _limit(config: dict):
    for keys in (("training", "limit"), ("limit",), ("study", "data", "limit")):
        value = config
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int):
            return value
    return None


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _weight_count(path: Path) -> int | None:
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


def _fmt(value, digits: int = 5) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, (list, dict)):
        return f"`{json.dumps(value)}`"
    return str(value)


def _table(rows: list[tuple], headers: tuple = ("", "")) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    return lines + [""]


# --- the card -----------------------------------------------------------------------------------


@dataclass
class _Run:
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
        return _dataset_name(self.config)

    @property
    def conditional(self) -> bool:
        return bool(self.config.get("conditional"))


def _read_run(run_dir: str | Path) -> _Run:
    run = RunDir(run_dir)
    config = run.read_config()
    evaluation = _read_json(run.file(EVALUATION_FILE))
    if not (isinstance(evaluation, dict) and isinstance(evaluation.get("samples"), dict)):
        evaluation = None
    return _Run(run, config, run.read_metrics(), evaluation, _study_of(run))


def card_text(run_dir: str | Path) -> str:
    """The model card of a run folder, as Markdown with YAML front matter."""
    info = _read_run(run_dir)
    if info.kind == STUDY:
        return _study_card(info)
    command, why_not = _command(info.run, info.config)
    lines = [
        "---",
        to_yaml(_metadata(info, command)).rstrip("\n"),
        "---",
        "",
        *_what_section(info),
        *_command_section(info, command, why_not),
        *_data_section(info),
        *_hardware_section(info),
        *_figures_section(info),
        *_usage_section(info),
        *_limits_section(info),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_card(run_dir: str | Path, log=None) -> Path | None:
    """Write (or rewrite) RUN/README.md; returns its path, or None when a README.md that zspace
    did not write is there (it is left alone, and `log`, stderr by default, says so)."""
    run = RunDir(run_dir)
    path = run.file(CARD_FILE)
    if path.exists() and not is_zspace_card(path):
        message = f"zspace: {path} was not written by zspace; left it alone (no model card written)"
        (log or (lambda line: print(line, file=sys.stderr)))(message)
        return None
    atomic_write_text(path, card_text(run.path))
    return path


def _title(info: _Run) -> str:
    model = info.config.get("model") or {}
    kind = info.kind
    if kind == AUTOENCODER:
        return f"`{model.get('preset')}` autoencoder, {model.get('latent_dim')}-d codes"
    if kind in (LATENT_GAN, PIXEL_GAN):
        mode = "conditional " if info.conditional else ""
        return f"{mode}{SAMPLER_TITLES[kind]}, preset `{model.get('preset')}`"
    if kind == GMM_BASELINE:
        return (
            f"class-conditional Gaussian mixtures, {info.config.get('components')} per digit, "
            "over autoencoder codes"
        )
    if kind == CLASSIFIER:
        return f"digit classifier ({(info.config.get('training') or {}).get('method', 'CNN')})"
    return RUN_KINDS[kind].description if kind in RUN_KINDS else kind


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric_entries(info: _Run) -> list[dict]:
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


def _task(info: _Run) -> dict:
    if info.kind == AUTOENCODER:
        return {"type": "image-to-image", "name": "image reconstruction"}
    if info.kind == CLASSIFIER:
        return {"type": "image-classification", "name": "digit classification"}
    if info.conditional:
        return {"type": "image-generation", "name": "class-conditional image generation"}
    return {"type": "unconditional-image-generation", "name": "unconditional image generation"}


def _metadata(info: _Run, command: Command | None) -> dict:
    datasets = [_dataset_id(info.dataset)]
    tags = ["zspace", info.kind, "mnist-style"]
    if info.kind in (LATENT_GAN, GMM_BASELINE):
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
        "training_seconds": _training_seconds(info),
    }
    if info.study is not None:
        zspace["study"], zspace["stage"] = info.study
    metadata["zspace"] = zspace
    return metadata


def _training_seconds(info: _Run) -> float | None:
    seconds = [r["seconds"] for r in info.metrics if isinstance(r.get("seconds"), (int, float))]
    return round(sum(seconds), 3) if seconds else None


def _what_section(info: _Run) -> list[str]:
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
        rows += [(f"`{key}`", _fmt(value)) for key, value in _architecture(kind, model).items()]
    for key in ("components", "latent_dim", "train_count", "conditional"):
        if key in info.config and not (isinstance(model, dict) and key in model):
            rows.append((f"`{key}`", _fmt(info.config[key])))
    weights = RUN_KINDS[kind].weights if kind in RUN_KINDS else None
    if weights is not None:
        count = _weight_count(info.run.file(weights))
        rows.append((f"parameters (in `{weights}`)", "–" if count is None else f"{count:,}"))
    if kind in (LATENT_GAN, PIXEL_GAN):
        training = info.config.get("training") or {}
        ema = bool(training.get("ema_decay"))
        rows.append(("samples drawn with", "the EMA of G's weights" if ema else "G's weights"))
        rows.append(("noise inverter", _fmt(info.run.file("inverter.safetensors").is_file())))
    autoencoder = info.config.get("autoencoder")
    if isinstance(autoencoder, dict):
        source = autoencoder.get("source") or autoencoder.get("run")
        rows.append(("autoencoder (decoder copied into this folder)", f"`{source}`"))
    return lines + _table(rows, ("setting (config.json)", "value"))


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


def _command_section(info: _Run, command: Command | None, why_not: str | None) -> list[str]:
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
            *_table(
                [(f"`{k}`", _fmt(a), _fmt(b)) for k, (a, b) in command.differences.items()],
                ("setting", "this run", "the command"),
            ),
        ]
    else:
        resumes = info.kind in (AUTOENCODER, LATENT_GAN, PIXEL_GAN)
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
        lines += _table([(f"`{k}`", _fmt(v)) for k, v in shown.items()], ("setting", "value"))
    return lines


def _seed(config: dict):
    for value in ((config.get("training") or {}).get("seed"), config.get("seed")):
        if value is not None:
            return value
    return "not recorded"


def _data_section(info: _Run) -> list[str]:
    dataset, limit = info.dataset, _limit(info.config)
    lines = ["## Data", ""]
    subset = "all training images" if limit is None else f"the first {limit:,} training images"
    if info.kind in (LATENT_GAN, GMM_BASELINE):
        subset += ", as codes of the autoencoder named above"
    if dataset.lower().endswith(".npz"):
        path = Path(dataset)
        lines.append(f"`{dataset}` (a user's `.npz` file), {subset}.")
        lines.append("")
        if path.is_file():
            rows = [(f"`{path.name}`", f"{path.stat().st_size:,}", f"`{_file_sha256(path)}`")]
            lines += _table(rows, ("file", "bytes", "SHA-256 (hashed when this card was written)"))
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
    return lines + _table(
        rows, ("file", "name", "SHA-256 of the decompressed file", "MD5 of the official .gz")
    )


def _hardware_section(info: _Run) -> list[str]:
    seconds = _training_seconds(info)
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
    rows = [(f"`{k}`", _fmt(v)) for k, v in environment.items()]
    return lines + _table(rows, ("item", "value"))


def _figures_section(info: _Run) -> list[str]:
    lines = ["## Evaluation", ""]
    record_rows = [
        (label, _fmt(info.last[key]))
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
        lines += [f"From {source}:", "", *_table(record_rows, ("figure", "value"))]
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
        f"From `{EVALUATION_FILE}`{made_by} ({_fmt(samples.get('count'))} {what}, judged by zspace's "
        f"evaluation classifier, test accuracy {_fmt(classifier.get('test_accuracy'), 4)}; "
        "Frechet distance, precision and recall in its feature space against the test set):",
        "",
    ]
    columns = [("this run", samples)]
    ceiling = evaluation.get("ceiling")
    if isinstance(ceiling, dict) and evaluation.get("kind") != AUTOENCODER:
        columns.append(("AE test reconstructions (ceiling)", ceiling))
    rows = [
        (name, *(_fmt(column.get(key), 4) for _, column in columns))
        for key, (_, name) in EVALUATION_METRICS.items()
    ]
    return lines + _table(rows, ("figure", *(name for name, _ in columns)))


def _usage_section(info: _Run) -> list[str]:
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


def _limits_section(info: _Run) -> list[str]:
    dataset, limit = info.dataset, _limit(info.config)
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
    if info.kind in (LATENT_GAN, PIXEL_GAN, GMM_BASELINE):
        lines.append(
            "- Its figures come from zspace's own evaluation classifier, not from people; a "
            "generated digit can fool it and still look wrong."
        )
    if info.kind in (LATENT_GAN, GMM_BASELINE):
        lines.append(
            "- It draws codes for the autoencoder it was trained on: its images are never "
            "sharper than that decoder's reconstructions."
        )
    return lines + [""]


# --- the study folder ---------------------------------------------------------------------------


def _study_card(info: _Run) -> str:
    study = info.config.get("study") or {}
    data = study.get("data") or {}
    folder = str(info.run.path)
    runs = []
    for config_path in sorted(info.run.path.glob("*/config.json")) + sorted(
        info.run.path.glob("*/*/config.json")
    ):
        config = _read_json(config_path)
        name = config.get("kind") if isinstance(config, dict) else None
        kind = RUN_KINDS.get(name) if isinstance(name, str) else None
        if kind is not None and kind.command is not None:
            runs.append((config_path.parent, config))
    metadata = {
        "library_name": "zspace",
        "tags": ["zspace", STUDY, "mnist-style"],
        "datasets": [data.get("dataset", "mnist")],
        "zspace": {
            "card": CARD_FORMAT,
            "kind": STUDY,
            "zspace_version": info.config.get("zspace_version"),
            "command": shlex.join(
                ["zspace", "run", "--config", f"{folder}/config.toml", "--out", folder]
            ),
        },
    }
    rows = []
    for path, config in runs:
        relative = path.relative_to(info.run.path).as_posix()
        seconds = _training_seconds(
            _Run(RunDir(path), config, RunDir(path).read_metrics(), None, None)
        )
        card = f"[{relative}/{CARD_FILE}]({relative}/{CARD_FILE})"
        has_card = (path / CARD_FILE).is_file()
        rows.append((f"`{relative}`", config["kind"], _fmt(seconds, 4), card if has_card else "–"))
    lines = [
        "---",
        to_yaml(metadata).rstrip("\n"),
        "---",
        "",
        f"# {info.name}: a whole zspace study",
        "",
        f"Made by `{metadata['zspace']['command']}` (seed {study.get('seed')}), with zspace "
        f"{info.config.get('zspace_version')}; the results are in `report.md` and "
        "`report.html`. Data: "
        f"`{data.get('dataset', 'mnist')}`"
        + ("" if data.get("limit") is None else f", the first {data['limit']:,} training images")
        + ". Each run folder of the study has its own card:",
        "",
        *_table(rows, ("run folder", "kind", "training seconds", "model card")),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
