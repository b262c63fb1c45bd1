"""Block-style YAML text for a card's front matter, with no YAML library."""

from __future__ import annotations

import json
import math
import re


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
