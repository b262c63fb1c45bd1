"""Stand-ins for the few-shot classifier package, used by the web tests until it exists.

`prepare_image_available` is an autouse-able fixture: it does nothing when
`zspace.fewshot.classify` imports, and otherwise installs a minimal `prepare_image`.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch
from PIL import Image


class StandInClassifier:
    """Stand-in with the few-shot classifier's `classify` contract: probabilities from how far
    the image's mean brightness is from ten fixed levels (deterministic, no training)."""

    def classify(self, images):
        images = torch.as_tensor(images).float().reshape(len(images), -1) / 255
        levels = torch.linspace(0.05, 0.5, 10)
        logits = -((images.mean(1, keepdim=True) - levels) ** 2) * 400
        probs = logits.softmax(1)
        return probs.argmax(1), probs


@pytest.fixture(scope="module", autouse=True)
def prepare_image_available():
    """Until the few-shot package lands, a stand-in for its `prepare_image` (grey 28x28)."""
    try:
        import zspace.fewshot.classify  # noqa: F401

        yield
        return
    except ImportError:
        pass
    import numpy as np

    def prepare_image(picture):
        grey = picture.convert("L").resize((28, 28), Image.BILINEAR)
        array = np.asarray(grey, dtype=np.uint8)
        inverted = array.mean() > 127
        return (255 - array if inverted else array), bool(inverted)

    package = types.ModuleType("zspace.fewshot")
    module = types.ModuleType("zspace.fewshot.classify")
    module.prepare_image = prepare_image
    package.classify = module
    sys.modules.update({"zspace.fewshot": package, "zspace.fewshot.classify": module})
    yield
    for name in ("zspace.fewshot.classify", "zspace.fewshot"):
        sys.modules.pop(name, None)


def exit_worker(service, code: int):
    """A restyle-lane call that kills the worker process running it (tests replacement)."""
    import os

    os._exit(code)


def worker_pid(service) -> int:
    """A restyle-lane call answering the id of the process that ran it."""
    import os

    return os.getpid()
