"""The web app's lanes: restyles in a worker process (or threads), a dead worker replaced."""

from __future__ import annotations

import asyncio
import os

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from web_stand_ins import exit_worker, worker_pid  # noqa: E402

from zspace.web.app import create_app  # noqa: E402
from zspace.web.lanes import RestyleLane  # noqa: E402
from zspace.web.service import DigitService, ServiceUnavailable  # noqa: E402


def test_a_dead_restyle_worker_answers_503_and_is_replaced(web_cgan_run):
    import zspace

    lane = RestyleLane(DigitService(zspace.load(web_cgan_run)), web_cgan_run)
    assert lane.in_processes

    async def scenario():
        first = await lane.run(worker_pid)
        with pytest.raises(ServiceUnavailable, match="restyle worker stopped"):
            await lane.run(exit_worker, 3)
        second = await lane.run(worker_pid)
        return first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        lane.shutdown()
    assert os.getpid() not in (first, second) and first != second


def _restyle_twice(client, digit_png):
    files = {"image": ("d.png", digit_png, "image/png")}
    png = client.post("/api/restyle?digit=3&source_digit=7&seed=2&scale=1", files=files)
    body = client.post("/api/restyle?source_digit=7&seed=2&format=json", files=files)
    assert png.status_code == 200 and body.status_code == 200, (png.text, body.text)
    return png.content, body.json()


def test_restyles_in_threads_match_restyles_in_a_worker(web_cgan_run, digit_png):
    """The same restyle whether it ran in the worker process or in a thread of the server."""
    import zspace

    answers = []
    for app in (
        create_app(web_cgan_run),
        create_app(web_cgan_run, restyle_processes=False),
        create_app(generator=zspace.load(web_cgan_run)),  # no run folder: threads
    ):
        with TestClient(app) as client:
            answers.append(_restyle_twice(client, digit_png))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][1]["source"] == "request" and len(answers[0][1]["images"]) == 10


@pytest.fixture(scope="module")
def digit_png(mnist_dir) -> bytes:
    import io

    from PIL import Image

    from zspace.data import load_dataset

    dataset = load_dataset("mnist", data_dir=mnist_dir)
    buffer = io.BytesIO()
    Image.fromarray(dataset.test_images[0].numpy(), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()
