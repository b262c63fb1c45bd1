"""Cached, resumable stages.

Each stage's key hashes the config sections it reads, the seed, and its dependencies' keys.
A finished stage with the same key is skipped; a changed setting changes the key of that stage
and of everything downstream. A stage that was interrupted has a `started` marker with its key
but no record: rerunning it resumes inside its folder (the training procedures resume from their
checkpoints). A stage whose key changed, or that is forced, starts again from an empty folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zspace.checkpoint import atomic_write_json
from zspace.errors import ZspaceError
from zspace.memory import release_memory
from zspace.pipeline.config import StudyConfig

RECORDS_FOLDER = "stages"  # RUN/stages/<stage>.json (finished) and <stage>.started


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[StageContext], dict]  # returns a JSON-able summary
    sections: tuple[str, ...] = ()  # config sections the stage reads
    depends_on: tuple[str, ...] = ()
    description: str = ""


@dataclass
class StageContext:
    run_dir: Path
    config: StudyConfig
    data_dir: str | None = None
    device: str = "auto"
    progress: bool = True
    log: Callable[[str], None] = print

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / name

    def relative(self, path: Path) -> str:
        """`path` relative to the run folder, as the report links figures."""
        return str(Path(path).relative_to(self.run_dir))


def stage_key(stage: Stage, config: StudyConfig, dependency_keys: list[str]) -> str:
    text = json.dumps(
        {
            "stage": stage.name,
            "seed": config.seed,
            "sections": {name: config.section_json(name) for name in stage.sections},
            "dependencies": dependency_keys,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run_stages(
    stages: list[Stage], context: StageContext, force: tuple[str, ...] = ()
) -> dict[str, dict]:
    """Run stages in order, skipping finished ones; returns {stage: record}."""
    names = [stage.name for stage in stages]
    for name in force:
        if name not in names:
            raise ZspaceError(f"--force: unknown stage {name!r}; stages are {names}")
    (context.run_dir / RECORDS_FOLDER).mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}
    rerun: set[str] = set()
    records: dict[str, dict] = {}
    for stage in stages:
        key = stage_key(stage, context.config, [keys[d] for d in stage.depends_on])
        keys[stage.name] = key
        fresh = stage.name in force or any(d in rerun for d in stage.depends_on)
        record = _read_json(_record_path(context, stage.name))
        if record is not None and record.get("key") == key and not fresh:
            context.log(f"[{stage.name}] up to date, skipped")
        else:
            started = _read_json(_started_path(context, stage.name)) or {}
            resumable = record is None and started.get("key") == key and not fresh
            record = _run_stage(stage, context, key, resumable)
            rerun.add(stage.name)
        records[stage.name] = record
    return records


def _record_path(context: StageContext, name: str) -> Path:
    return context.run_dir / RECORDS_FOLDER / f"{name}.json"


def _started_path(context: StageContext, name: str) -> Path:
    return context.run_dir / RECORDS_FOLDER / f"{name}.started"


def _empty_stage_folder(context: StageContext, name: str) -> None:
    """Delete a stage's folder before it runs afresh, but only when the study's own records
    prove that zspace made it (the stage started or finished here before); a folder that
    appeared in the study from elsewhere is refused in one line and kept."""
    folder = context.stage_dir(name)
    if not folder.exists():
        return
    ours = _record_path(context, name).is_file() or _started_path(context, name).is_file()
    if not ours:
        raise ZspaceError(
            f"{folder} was not written by this study; move it out of {context.run_dir} and rerun"
        )
    shutil.rmtree(folder)


def _run_stage(stage: Stage, context: StageContext, key: str, resumable: bool) -> dict:
    """Run one stage, in its kept folder when `resumable`, else in an empty one; its record."""
    if not resumable:
        _empty_stage_folder(context, stage.name)
    _record_path(context, stage.name).unlink(missing_ok=True)
    atomic_write_json(_started_path(context, stage.name), {"key": key})
    context.log(f"[{stage.name}] {'resuming' if resumable else 'running'}: {stage.description}")
    began = time.perf_counter()
    summary = stage.run(context)
    release_memory()  # so the next stage's peak does not stack on this one's leftovers
    record = {"key": key, "seconds": round(time.perf_counter() - began, 2), "summary": summary}
    atomic_write_json(_record_path(context, stage.name), record)
    _started_path(context, stage.name).unlink(missing_ok=True)
    return record
