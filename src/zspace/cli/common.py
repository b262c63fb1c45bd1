"""Argument conventions shared by zspace commands."""

from __future__ import annotations

import argparse


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= `minimum`, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
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


def refuse_changed_settings(out, checks: dict) -> None:
    """On --resume the saved config wins: a flag given with a different value is a mistake.

    `checks` maps a flag to (value given on the command line or None, value the run holds).
    """
    from zspace.errors import ZspaceError

    for flag, (given, stored) in checks.items():
        if given is not None and given != stored:
            raise ZspaceError(f"{out} was trained with {flag} {stored}; drop {flag} to resume it")
