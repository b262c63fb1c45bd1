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
from dataclasses import dataclass, field
from pathlib import Path

from zspace.checkpoint import atomic_write_json
from zspace.errors import ZspaceError
from zspace.memory import release_memory
from zspace.pipeline.config import StudyConfig


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
    results: dict[str, dict] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / name


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
    records_dir = context.run_dir / "stages"
    records_dir.mkdir(parents=True, exist_ok=True)
    keys: dict[str, str] = {}
    rerun: set[str] = set()
    records: dict[str, dict] = {}
    for stage in stages:
        key = stage_key(stage, context.config, [keys[d] for d in stage.depends_on])
        keys[stage.name] = key
        record_path = records_dir / f"{stage.name}.json"
        started_path = records_dir / f"{stage.name}.started"
        record = _read_json(record_path)
        upstream_rerun = any(d in rerun for d in stage.depends_on)
        if (
            record is not None
            and record.get("key") == key
            and stage.name not in force
            and not upstream_rerun
        ):
            context.log(f"[{stage.name}] up to date, skipped")
            records[stage.name] = record
            context.results[stage.name] = record["summary"]
            continue
        started = _read_json(started_path)
        resumable = (
            record is None
            and started is not None
            and started.get("key") == key
            and stage.name not in force
            and not upstream_rerun
        )
        record_path.unlink(missing_ok=True)
        if not resumable:
            shutil.rmtree(context.stage_dir(stage.name), ignore_errors=True)
        atomic_write_json(started_path, {"key": key})
        context.log(f"[{stage.name}] {'resuming' if resumable else 'running'}: {stage.description}")
        began = time.perf_counter()
        summary = stage.run(context)
        release_memory()  # so the next stage's peak does not stack on this one's leftovers
        record = {"key": key, "seconds": round(time.perf_counter() - began, 2), "summary": summary}
        atomic_write_json(record_path, record)
        started_path.unlink(missing_ok=True)
        rerun.add(stage.name)
        records[stage.name] = record
        context.results[stage.name] = summary
    return records
