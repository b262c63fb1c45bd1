"""Argument conventions shared by zspace commands."""

from __future__ import annotations

import argparse
import dataclasses
import math

from zspace import config_checks


def whole_number_in(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number in ``minimum..maximum``, with a one-line message
    otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if maximum is None and value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        if maximum is not None and not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {minimum} to {maximum}, got {value}"
            )
        return value

    return parse


positive_int = whole_number_in(1)
non_negative_int = whole_number_in(0)
latent_dim_int = whole_number_in(1, config_checks.MAX_LATENT_DIM)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def learning_rate_float(text: str) -> float:
    """An argparse type: a learning rate, finite, above 0 and at most the configs' limit."""
    value = positive_float(text)
    if value > config_checks.MAX_LEARNING_RATE:
        raise argparse.ArgumentTypeError(
            f"expected a learning rate of at most {config_checks.MAX_LEARNING_RATE:g}, "
            f"got {value:g}"
        )
    return value


def add_data_arguments(parser: argparse.ArgumentParser, dataset: bool = True) -> None:
    if dataset:
        parser.add_argument(
            "--dataset", default=None, help="mnist (default), fashion-mnist, kmnist or a .npz file"
        )
    parser.add_argument(
        "--data-dir", default=None, help="where datasets live (default: $ZSPACE_DATA or cache)"
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The conventions every training command follows."""
    parser.add_argument("--out", required=True, help="run folder to create (or resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--epochs", type=positive_int, default=None)
    parser.add_argument("--seed", type=non_negative_int, default=None)
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N training images"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def with_settings(config, **settings):
    """A copy of a config dataclass with the settings that were given (not None) replaced."""
    return dataclasses.replace(config, **{k: v for k, v in settings.items() if v is not None})
