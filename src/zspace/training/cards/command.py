"""The `zspace` command that makes a run: `Command`, the settings in which a run differs
from it, and rebuilding it with the builder that each kind's row in `zspace.runs.RUN_KINDS`
names as "module:function" text."""

from __future__ import annotations

import importlib
import shlex
from dataclasses import dataclass, field

from zspace.errors import ZspaceError
from zspace.runs import RUN_KINDS, RunDir


@dataclass
class Command:
    """A `zspace` command line (after "zspace") and the settings it does not reproduce:
    dotted setting -> (what the run has, what the command gives). Empty: the command is exact."""

    args: list
    differences: dict = field(default_factory=dict)

    def text(self) -> str:
        return shlex.join(["zspace", *(str(a) for a in self.args)])


def setting_differences(saved: dict, rebuilt: dict) -> dict:
    """Dotted settings whose values differ between two nested dicts: key -> (saved, rebuilt)."""
    flat_saved, flat_rebuilt = _flatten(saved), _flatten(rebuilt)
    return {
        key: (flat_saved.get(key), flat_rebuilt.get(key))
        for key in sorted(set(flat_saved) | set(flat_rebuilt))
        if flat_saved.get(key) != flat_rebuilt.get(key)
    }


def _flatten(settings, prefix: str = "") -> dict:
    flat = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return flat


def rebuild_command(run: RunDir, config: dict) -> tuple[Command | None, str | None]:
    """(the command, None), or (None, why it could not be rebuilt)."""
    kind = RUN_KINDS.get(config["kind"])
    builder = None if kind is None else kind.command
    if builder is None:
        return None, f"zspace has no single command for a {config['kind']} run"
    module_name, function_name = builder.split(":")
    try:
        # Imported here: the builders' modules import this package to write their cards.
        command = getattr(importlib.import_module(module_name), function_name)(run, config)
    except (ZspaceError, AttributeError, KeyError, TypeError, ValueError) as error:
        return None, f"config.json does not name a setting the command needs ({error})"
    device = (config.get("environment") or {}).get("device")
    if device and "--device" not in command.args:
        command.args += ["--device", device]
    return command, None
