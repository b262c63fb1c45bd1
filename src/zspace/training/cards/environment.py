"""What a run records about where it was trained: config.json's "environment"."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def run_environment(device: torch.device | str, processes: int = 1) -> dict:
    """The hardware and software a run is trained on, for config.json's "environment"."""
    device = torch.device(device)
    cpu = _cpu_name()
    name = cpu
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = f"Apple GPU (MPS) on {cpu}"
    return {
        "device": device.type,
        "device_name": name,
        "cpu": cpu,
        "processes": processes,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
