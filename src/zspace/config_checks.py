"""Checks for config values that come from JSON files or flags.

Config dataclasses call these from `__post_init__`, so a value of the wrong type, sign or size
is refused in one line (a `ZspaceError` naming the field) wherever the config is built, before
a network is allocated or a run folder is written. The bounds are generous but finite: far
beyond any useful MNIST model, yet small enough that a typo cannot ask for terabytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from zspace.errors import RunError, ZspaceError

MAX_LATENT_DIM = 4096  # latent codes, GAN noise and data (784 pixels fit)
# Layer sizes: with these the largest MLP or conv autoencoder holds about 1 GB of weights.
MAX_WIDTH = 4096  # hidden units of one layer
MAX_CHANNELS = 512  # channels of one convolution
MAX_LAYERS = 8  # hidden layers of one MLP
HIDDEN_LAYER_COUNTS = range(0, MAX_LAYERS + 1)
MAX_CLASSES = 1000
MAX_SEED = 2**32 - 1  # what every RNG zspace seeds (NumPy included) accepts
MAX_COUNT = 10**9  # epochs, steps, batch sizes, sample counts: anything counted
MAX_LEARNING_RATE = 10.0  # far above any useful rate; beyond it training only overflows


def shown(value: Any) -> str:
    """`repr` cut to a readable length, so a hostile value cannot flood the one-line error."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def whole_number(name: str, value: Any, low: int, high: int) -> int:
    """`value` if it is an int (not a bool) in ``low..high``; else ZspaceError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ZspaceError(f"{name} must be a whole number from {low} to {high}, got {shown(value)}")
    return value


def optional_whole_number(name: str, value: Any, low: int, high: int) -> int | None:
    return None if value is None else whole_number(name, value, low, high)


def real_number(name: str, value: Any, low: float, high: float, include_low: bool = True) -> float:
    """`value` if it is a finite int or float in ``[low, high]`` (``(low, high]`` when
    `include_low` is false); else ZspaceError naming `name`."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    # ints are finite (and math.isfinite overflows on huge ones)
    finite = is_number and (isinstance(value, int) or math.isfinite(value))
    above = finite and (value >= low if include_low else value > low)
    if not (above and value <= high):
        bounds = f"from {low:g} to {high:g}" if include_low else f"above {low:g}, at most {high:g}"
        raise ZspaceError(f"{name} must be a finite number {bounds}, got {shown(value)}")
    return value


def learning_rate(name: str, value: Any) -> float:
    """A finite learning rate above 0 (and at most MAX_LEARNING_RATE)."""
    return real_number(name, value, 0.0, MAX_LEARNING_RATE, include_low=False)


def optional_real_number(
    name: str, value: Any, low: float, high: float, include_low: bool = True
) -> float | None:
    return None if value is None else real_number(name, value, low, high, include_low)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ZspaceError(f"{name} must be true or false, got {shown(value)}")
    return value


def choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ZspaceError(f"{name} must be one of {', '.join(allowed)}; got {shown(value)}")
    return value


def text(name: str, value: Any) -> str:
    """A non-empty string of one line."""
    if not isinstance(value, str) or not value.strip() or "\n" in value:
        raise ZspaceError(f"{name} must be a non-empty name, got {shown(value)}")
    return value


def whole_numbers(
    name: str, values: Any, low: int, high: int, lengths: range = HIDDEN_LAYER_COUNTS
) -> list[int]:
    """A list (or tuple) of whole numbers in ``low..high`` whose length is in `lengths`."""
    if not isinstance(values, (list, tuple)) or len(values) not in lengths:
        count = f"{lengths.start}" if len(lengths) == 1 else f"{lengths.start} to {lengths[-1]}"
        raise ZspaceError(f"{name} must be a list of {count} whole numbers, got {shown(values)}")
    for value in values:
        whole_number(f"each of {name}", value, low, high)
    return list(values)


def mapping(what: str, data: Any) -> dict:
    if not isinstance(data, dict):
        raise ZspaceError(f"{what} must be a JSON object, got {shown(data)}")
    return data


def known_keys_only(what: str, data: Any, config_class: type) -> dict:
    """`data` if it is a dict whose keys are all fields of `config_class`."""
    mapping(what, data)
    unknown = set(data) - {f.name for f in fields(config_class)}
    if unknown:
        listed = ", ".join(sorted(shown(key) for key in unknown))
        raise ZspaceError(f"unknown {what} keys: {listed}")
    return data


def known_fields(what: str, data: Any, config_class: type) -> dict:
    """The entries of `data` (a dict) that are fields of `config_class`; others are ignored,
    so a config written by a newer zspace still loads."""
    known = {f.name for f in fields(config_class)}
    return {key: value for key, value in mapping(what, data).items() if key in known}


def section(saved: dict, name: str) -> dict:
    """`saved[name]`, which must be a JSON object (a run config's "model" or "training")."""
    value = saved.get(name) if isinstance(saved, dict) else None
    if not isinstance(value, dict):
        raise ZspaceError(f"the '{name}' section is missing or not a JSON object")
    return value


@contextmanager
def reading(config_path: str | Path) -> Iterator[None]:
    """Turn any ZspaceError raised inside into a `RunError` line that names `config_path`."""
    try:
        yield
    except ZspaceError as error:
        raise RunError(f"{config_path}: {error}") from None
