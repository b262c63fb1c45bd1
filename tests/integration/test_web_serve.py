"""`zspace serve` as users start it: a real process on 127.0.0.1, one or several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from web_stand_ins import wait_until_healthy

httpx = pytest.importorskip("httpx", reason="the web extra is not installed")
pytest.importorskip("uvicorn", reason="the web extra is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_and_stops_cleanly(web_cgan_run, workers):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zspace",
            "serve",
            str(web_cgan_run),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base, httpx)
        grids = {httpx.get(base + "/api/generate?digit=3&n=4&seed=5").content for _ in range(6)}
        assert len(grids) == 1  # every worker gives the same images for the same seed
        assert httpx.get(base + "/api/generate?digit=12").status_code == 422
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0
