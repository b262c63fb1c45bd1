"""`zspace` command: parses arguments, dispatches to a command module, turns user errors
into one line on stderr and a nonzero exit code."""

from __future__ import annotations

import argparse
import importlib
import sys

from zspace.errors import ZspaceError
from zspace.version import __version__

# Each module defines register(subparsers) and gives its parser a `run(args) -> int | None`.
COMMAND_MODULES = [
    "zspace.cli.data_cmd",
    "zspace.cli.autoencoder_cmds",
    "zspace.cli.fewshot_cmds",
    "zspace.cli.cluster_cmds",
    "zspace.cli.evaluate_cmds",
    "zspace.cli.gan_cmds",
    "zspace.cli.flow_cmds",
    "zspace.cli.translate_cmds",
    "zspace.cli.serve_cmd",
    "zspace.cli.export_cmd",
    "zspace.cli.run_cmds",
]


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the whole usage on a mistake; we print one line that says what is wrong."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="zspace",
        description="Learning in the latent space of an autoencoder.",
    )
    parser.add_argument("--version", action="version", version=f"zspace {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser
    )
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ZspaceError as error:
        print(f"zspace {args.command}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        # The machine refused (no permission, a full disk, a file where a folder must be):
        # the user's to fix, so one line, not a traceback.
        where = f": {error.filename}" if error.filename else ""
        print(f"zspace {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"zspace {args.command}: interrupted", file=sys.stderr)
        return 130
