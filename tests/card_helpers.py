"""Reading model cards in tests: the YAML front matter and the figures of its model-index."""

from __future__ import annotations

import yaml


def split_card(text: str) -> tuple[dict, str]:
    """A card's text -> (its parsed front matter, the markdown body after it)."""
    head, body = text.removeprefix("---\n").split("\n---\n", 1)
    return yaml.safe_load(head), body


def figures(metadata: dict) -> dict:
    """{metric name: value} over the card's model-index."""
    return {
        metric["name"]: metric["value"]
        for entry in metadata.get("model-index", [])
        for result in entry["results"]
        for metric in result["metrics"]
    }
