"""A run folder's card as text: the front matter, then the sections in order."""

from __future__ import annotations

from pathlib import Path

from zspace.runs import STUDY
from zspace.training.cards.command import rebuild_command
from zspace.training.cards.facts import read_run_facts
from zspace.training.cards.front_matter import card_metadata
from zspace.training.cards.sections import (
    command_section,
    data_section,
    figures_section,
    hardware_section,
    limits_section,
    usage_section,
    what_section,
)
from zspace.training.cards.study_card import study_card
from zspace.training.cards.yaml_text import to_yaml


def card_text(run_dir: str | Path) -> str:
    """The model card of a run folder, as Markdown with YAML front matter."""
    info = read_run_facts(run_dir)
    if info.kind == STUDY:
        return study_card(info)
    command, why_not = rebuild_command(info.run, info.config)
    lines = [
        "---",
        to_yaml(card_metadata(info, command)).rstrip("\n"),
        "---",
        "",
        *what_section(info),
        *command_section(info, command, why_not),
        *data_section(info),
        *hardware_section(info),
        *figures_section(info),
        *usage_section(info),
        *limits_section(info),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
