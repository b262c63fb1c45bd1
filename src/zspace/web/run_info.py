"""The run a server answers from: loading its sampler, classifier and translators, and what
/api/info shows.

/api/info names folders, never where they are: a path on the server's disk tells a client
about the machine (user names, layout) and nothing it can use, so absolute paths in configs
are cut to their last part.
"""

from __future__ import annotations

import json
import ntpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zspace import __version__
from zspace.errors import ZspaceError
from zspace.fewshot.classify import load_classifier
from zspace.loading import load_sampler
from zspace.runs import RunDir
from zspace.sampling.sampler import MAX_SEED
from zspace.web.imaging import MAX_UPLOAD_BYTES
from zspace.web.translators import TranslatorSet, find_translators

# One request's limits. A sampler draws up to zspace.sampling.sampler.MAX_SAMPLES per digit in
# a call; the server answers fewer, which keeps one request's PNG and time small.
MAX_REQUEST_SAMPLES = 256
MAX_STEPS = 64


@dataclass
class Models:
    """What a server answers with: a sampler, a classifier (or None), the translator runs
    served beside them, and where the first two came from."""

    generator: object
    classifier: object | None = None
    run_dir: Path | None = None
    classifier_dir: Path | None = None
    translators: TranslatorSet = field(default_factory=TranslatorSet)


def find_classifier_run(run_dir: str | Path) -> Path | None:
    """The classifier run a sampler run points at, if any.

    A run may name one in config.json ("classifier" or "classifier_run": a path, relative to
    the run folder or absolute), or hold one in a `classifier/` subfolder.
    """
    run = RunDir(run_dir)
    config = run.read_config()
    for key in ("classifier", "classifier_run"):
        value = config.get(key)
        if isinstance(value, str) and value:
            path = Path(value)
            path = path if path.is_absolute() else run.path / path
            if RunDir(path).exists():
                return path
    inside = run.path / "classifier"
    return inside if RunDir(inside).exists() else None


def load_models(
    run_dir: str | Path | None = None,
    generator=None,
    classifier=None,
    classifier_dir: str | Path | None = None,
    device: str = "cpu",
    translators_dir: str | Path | None = None,
) -> Models:
    """The given models, with whatever is missing loaded from the run folders.

    Without `generator`, the sampler run `run_dir` (any kind that draws digits); without
    `classifier`, the run `classifier_dir` or else the classifier run that `run_dir` names;
    the translator runs in `translators_dir`, else beside `run_dir` (translators.search_roots).
    ZspaceError for a folder that is not such a run.
    """
    run_path = None if run_dir is None else Path(run_dir)
    if generator is None:
        if run_path is None:
            raise ZspaceError("create_app needs a run folder or a generator")
        generator = load_sampler(run_path, device, action="be served")
        classifier_dir = classifier_dir or find_classifier_run(run_path)
    classifier_path = None if classifier_dir is None else Path(classifier_dir)
    if classifier is None and classifier_path is not None:
        classifier = load_classifier(classifier_path)
    translators = find_translators(run_path, translators_dir, device)
    return Models(generator, classifier, run_path, classifier_path, translators)


def run_info(models: Models) -> dict:
    """The run's config and its last logged metrics (what /api/info shows)."""
    generator = models.generator
    info: dict = {
        "zspace_version": __version__,
        "conditional": bool(generator.conditional),
        "model": repr(generator),
        # How restyles find an upload's noise: a fitted inverter or a flow's backward ODE
        # (fast), or Adam alone.
        "inverter": getattr(generator, "inverter", None) is not None
        or hasattr(generator, "invert_codes"),
        "limits": {
            "n": [1, MAX_REQUEST_SAMPLES],
            "steps": [2, MAX_STEPS],
            "seed": [0, MAX_SEED],
            "upload_bytes": MAX_UPLOAD_BYTES,
        },
    }
    if models.run_dir is not None:
        info.update(_run_folder_info(RunDir(models.run_dir)))
    info["classifier"] = _classifier_info(models.classifier_dir)
    info["classifier_loaded"] = models.classifier is not None
    info["translators"] = models.translators.info()
    return info


def _run_folder_info(run: RunDir) -> dict:
    """The run's path, config, last metrics line and evaluation reports (eval*.json)."""
    metrics = run.read_metrics()
    info = {
        "run": folder_name(run.path),
        "config": without_absolute_paths(run.read_config()),
        "metrics": metrics[-1] if metrics else None,
    }
    # Evaluation reports written next to the run (e.g. evaluation.json) are key metrics too.
    for path in sorted(run.path.glob("eval*.json")):
        try:
            report = without_absolute_paths(json.loads(path.read_text()))
            info.setdefault("evaluation", {})[path.stem] = report
        except (OSError, ValueError):
            continue
    return info


def _classifier_info(classifier_dir: Path | None) -> dict | None:
    if classifier_dir is None:
        return None
    config = without_absolute_paths(RunDir(classifier_dir).read_config())
    return {"run": folder_name(classifier_dir), "config": config}


def folder_name(path: Path) -> str:
    """A run folder's own name (the last part of its resolved path)."""
    return Path(path).resolve().name


def without_absolute_paths(value):
    """`value` (parsed JSON) with every absolute path in it cut to its last part."""
    if isinstance(value, dict):
        return {key: without_absolute_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_absolute_paths(item) for item in value]
    if isinstance(value, str) and is_absolute_path(value):
        return PurePosixPath(value.replace("\\", "/")).name
    return value


def is_absolute_path(text: str) -> bool:
    """'/home/x', '~/x', 'C:\\x' or '\\\\server\\share'; not '../x', not a URL."""
    return text.startswith(("/", "~", "\\")) or ntpath.isabs(text)
