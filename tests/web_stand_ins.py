"""Stand-ins for the web tests: a deterministic classifier, restyle-lane calls that report on
or kill the worker process running them, and a wait for a `zspace serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
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


def stop_server(server, seconds: float = 30) -> None:
    """Ctrl-C a `zspace serve` process and wait for it (killed, and the test failed, if it
    takes longer than `seconds`)."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        server.kill()
        raise


def untrained_gan_sampler(conditional: bool = True):
    """A latent GAN sampler with random weights (seeded), for web tests that need no MNIST: it
    draws noise, not digits, through the same code paths as a trained run."""
    from zspace.models.autoencoder import Autoencoder
    from zspace.models.encoders import AutoencoderConfig
    from zspace.models.gan import CodeScaler, Generator, config_for_preset
    from zspace.sampling.gan import GANSampler

    torch.manual_seed(0)
    config = config_for_preset("reference", data_dim=64, conditional=conditional)
    autoencoder = Autoencoder(AutoencoderConfig(latent_dim=64)).eval()
    return GANSampler(config, Generator(config), CodeScaler(64), autoencoder).freeze()


def digit_picture_bytes(strokes, size: int, dark_on_light: bool, jpeg: bool) -> bytes:
    """A PNG (or JPEG) of `size` px square with `strokes` ((x0, y0, x1, y1) in 0..1) drawn
    thick: what a user's drawing of a digit looks like to the upload endpoints."""
    import io

    from PIL import Image, ImageDraw

    paper, ink = (255, 0) if dark_on_light else (0, 255)
    picture = Image.new("L", (size, size), paper)
    pen = ImageDraw.Draw(picture)
    for x0, y0, x1, y1 in strokes:
        # The middle 60% of the canvas, so the paper shows all around the digit.
        ends = [size * (0.2 + 0.6 * value) for value in (x0, y0, x1, y1)]
        pen.line(ends, fill=ink, width=max(2, size // 10))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG" if jpeg else "PNG")
    return buffer.getvalue()


def digit_pictures():
    """A hypothesis strategy for uploads that are pictures of a digit (never blank)."""
    from hypothesis import strategies as st

    unit = st.floats(0, 1)
    stroke = st.tuples(unit, unit, unit, unit)
    return st.builds(
        digit_picture_bytes,
        st.lists(stroke, min_size=1, max_size=4),
        st.integers(16, 96),
        st.booleans(),
        st.booleans(),
    )
