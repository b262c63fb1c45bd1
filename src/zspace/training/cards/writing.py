"""Writing RUN/README.md atomically, and never over a README.md that zspace did not write."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from zspace.checkpoint import atomic_write_text
from zspace.runs import RunDir
from zspace.training.cards.compose import card_text
from zspace.training.cards.file_names import CARD_FILE


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
