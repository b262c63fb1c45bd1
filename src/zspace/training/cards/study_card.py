"""The card of a `zspace run` study folder: its command and a table of its runs' cards."""

from __future__ import annotations

import shlex

from zspace.runs import RUN_KINDS, STUDY, RunDir
from zspace.training.cards.facts import RunFacts, read_json, training_seconds
from zspace.training.cards.file_names import CARD_FILE, CARD_FORMAT
from zspace.training.cards.markdown import format_value, markdown_table
from zspace.training.cards.yaml_text import to_yaml


def study_card(info: RunFacts) -> str:
    study = info.config.get("study") or {}
    data = study.get("data") or {}
    folder = str(info.run.path)
    runs = []
    for config_path in sorted(info.run.path.glob("*/config.json")) + sorted(
        info.run.path.glob("*/*/config.json")
    ):
        config = read_json(config_path)
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
        seconds = training_seconds(
            RunFacts(RunDir(path), config, RunDir(path).read_metrics(), None, None)
        )
        card = f"[{relative}/{CARD_FILE}]({relative}/{CARD_FILE})"
        has_card = (path / CARD_FILE).is_file()
        rows.append(
            (f"`{relative}`", config["kind"], format_value(seconds, 4), card if has_card else "–")
        )
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
        *markdown_table(rows, ("run folder", "kind", "training seconds", "model card")),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
