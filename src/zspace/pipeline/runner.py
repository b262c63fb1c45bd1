"""`zspace run`: the whole study into one run folder, stage by stage, then the report."""

from __future__ import annotations

import json
from pathlib import Path

from zspace.checkpoint import atomic_write_text
from zspace.errors import ZspaceError
from zspace.pipeline.config import StudyConfig, config_to_toml
from zspace.pipeline.report import write_report
from zspace.pipeline.stages import StageContext, run_stages
from zspace.pipeline.study import study_stages
from zspace.runs import STUDY, RunDir


def run_study(
    config: StudyConfig,
    out: str | Path,
    force: tuple[str, ...] = (),
    data_dir: str | None = None,
    device: str = "auto",
    progress: bool = True,
    log=print,
) -> Path:
    """Run (or finish) the study in `out`; returns the path of report.md."""
    run = RunDir(out)
    if run.exists() and run.read_config()["kind"] != STUDY:
        raise ZspaceError(f"{run.path} holds a {run.read_config()['kind']} run, not a study")
    run.write_config(STUDY, {"study": config.to_dict()})
    config_text = config_to_toml(config)
    atomic_write_text(run.file("config.toml"), config_text)
    context = StageContext(
        run_dir=run.path,
        config=config,
        data_dir=data_dir,
        device=device,
        progress=progress,
        log=log,
    )
    records = run_stages(study_stages(context), context, force=force)
    return write_report(run.path, records, config, config_text)


def list_runs(root: str | Path) -> list[dict]:
    """Every run folder under `root` (one level deep, and study stages) with key figures."""
    root = Path(root)
    if not root.is_dir():
        raise ZspaceError(f"{root} is not a folder")
    found = []
    for config_path in sorted(root.glob("*/config.json")) + sorted(root.glob("*/*/config.json")):
        try:
            config = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(config, dict) or "kind" not in config:
            continue
        run = RunDir(config_path.parent)
        entry = {
            "path": str(run.path),
            "kind": config["kind"],
            "figures": _key_figures(run, config),
        }
        found.append(entry)
    return found


def _key_figures(run: RunDir, config: dict) -> dict:
    if config["kind"] == STUDY:
        figures = {}
        stages = run.path / "stages"
        for name, key in (("autoencoder", "test_mse"), ("fewshot", "best")):
            try:
                summary = json.loads((stages / f"{name}.json").read_text())["summary"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                continue
            if key in summary:
                figures[f"{name}.{key}"] = summary[key]
        figures["report"] = (run.path / "report.md").is_file()
        return figures
    metrics = run.read_metrics()
    if not metrics:
        return {}
    last = metrics[-1]
    keep = ("epoch", "test_mse", "requested_accuracy", "kl_from_uniform", "d_loss", "g_loss")
    return {k: round(v, 5) if isinstance(v, float) else v for k, v in last.items() if k in keep}
