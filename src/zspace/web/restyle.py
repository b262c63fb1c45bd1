"""Restyles: what runs in the restyle lane, and the entry of its worker processes.

A restyle runs in two steps: `read_source` (in the quick lane: decode the upload and find its
digit) and `restyle_answer` (in the restyle lane: the noise search and the rendering). When the
app was loaded from a run folder, the restyle lane is a pool of worker processes (see lanes.py);
`start_worker` sets each one up and `call_in_worker` runs a call there. Everything that crosses
into a worker is a module-level function of this module or a plain value, so it pickles.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from dataclasses import dataclass

import numpy as np
import torch

from zspace.loading import load_sampler
from zspace.web.imaging import grid_png, image_data_urls, prepare_upload
from zspace.web.service import Classification, DigitService, one_torch_thread
from zspace.web.translators import RESTYLE_METHOD

# The restyle workers' nice value (0 normal .. 19 lowest). A restyle costs 5 (with an inverter)
# to 50 grids' worth of CPU; at the lowest priority it takes mostly what the quick requests
# leave (with a core idle, it still runs at full speed). Measured with bench_web.py: grid p99
# about 2 ms lower than at nice 10, within the noise of single runs.
RESTYLE_NICENESS = 19


@dataclass
class RestyleSource:
    """An upload to restyle: uint8 (28, 28) pixels, whether its colours were inverted, its
    digit and the classification it came from (None when the request named the digit)."""

    image: np.ndarray
    inverted: bool
    digit: int
    classification: Classification | None


def read_source(service: DigitService, data: bytes, source_digit: int | None) -> RestyleSource:
    """Decode an upload and find its digit (given, or the classifier's); runs in the quick lane.

    Raises if this run cannot restyle at all, or without a classifier when no digit is given.
    """
    image, inverted = prepare_upload(data)
    digit, classification = service.restyle_source(image, source_digit)
    # A NumPy array travels to the worker inside the pickle; a tensor would go through
    # torch's shared-memory file-descriptor handoff (measured: 0.4 ms a call against 0.13).
    return RestyleSource(image.numpy(), inverted, digit, classification)


def restyle_answer(
    service: DigitService,
    source: RestyleSource,
    digits: list[int],
    seed: int,
    format: str,
    scale: int,
) -> bytes | dict:
    """The upload's style drawn as each of `digits`, as PNG bytes or a JSON-ready dict.

    Runs in the restyle lane (a worker process), so it takes and returns plain values.
    """
    result = service.restyle(torch.from_numpy(source.image), digits, source.digit, seed)
    if format == "png":
        return grid_png(result["images"], ncols=len(digits), scale=scale)
    classification = source.classification
    return {
        "method": RESTYLE_METHOD,
        "digits": digits,
        "images": image_data_urls(result["images"], scale),
        "source_digit": source.digit,
        "source": "request" if classification is None else "classifier",
        "probabilities": None if classification is None else classification.probabilities,
        "reconstruction": image_data_urls(result["reconstruction"], scale)[0],
        "code_error": result["code_error"],
        "inverted": source.inverted,
    }


# Each worker process's own service, set once by start_worker (the process pool's initializer).
_worker_service: DigitService | None = None


def start_worker(run_dir: str, device: str) -> None:
    """Set up a restyle worker process: its own copy of the run's sampler, at low priority."""
    global _worker_service
    threading.Thread(target=_exit_when_parent_exits, daemon=True).start()
    one_torch_thread()
    try:
        os.nice(RESTYLE_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform: run at the normal priority
        pass
    _worker_service = DigitService(load_sampler(run_dir, device, action="restyle"))
    _warm_up(_worker_service)


def _warm_up(service: DigitService) -> None:
    """Pay the first restyle's one-off costs (torch's lazy set-up, PNG encoding) now, not on
    the first user's drawing."""
    if service.can_restyle:
        source = RestyleSource(np.zeros((28, 28), dtype=np.uint8), False, 0, None)
        restyle_answer(service, source, [0], seed=0, format="png", scale=1)


def _exit_when_parent_exits() -> None:
    # A server killed outright (SIGKILL, or a signal re-raised right after shutdown) never
    # tells its workers to stop; without this they would live on, holding its stdout open.
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def call_in_worker(function, args: tuple):
    """`function(service, *args)` with this worker process's service."""
    return function(_worker_service, *args)


def worker_ready(service: DigitService | None) -> bool:
    return service is not None
