"""Stand-ins for the web tests: a deterministic classifier, restyle-lane calls that report on
or kill the worker process running them, and a wait for a `zspace serve` process."""

from __future__ import annotations

import os
import time

import torch


class StandInClassifier:
    """Stand-in with the few-shot classifier's `classify` contract: probabilities from how far
    the image's mean brightness is from ten fixed levels (deterministic, no training)."""

    def classify(self, images):
        images = torch.as_tensor(images).float().reshape(len(images), -1) / 255
        levels = torch.linspace(0.05, 0.5, 10)
        logits = -((images.mean(1, keepdim=True) - levels) ** 2) * 400
        probs = logits.softmax(1)
        return probs.argmax(1), probs


def exit_worker(service, code: int):
    """A restyle-lane call that kills the worker process running it (tests replacement)."""
    os._exit(code)


def worker_pid(service) -> int:
    """A restyle-lane call answering the id of the process that ran it."""
    return os.getpid()


def wait_until_healthy(server, base: str, httpx, seconds: float = 90) -> None:
    """Wait until the `zspace serve` process `server` answers /api/health at `base`; fail with
    its output if it exits first, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, server.stdout.read()
        try:
            if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)
