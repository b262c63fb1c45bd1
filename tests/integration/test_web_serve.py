"""`zspace serve` as users start it: a real process on 127.0.0.1, one or several workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web_stand_ins import stop_server, wait_until_healthy

httpx = pytest.importorskip("httpx", reason="the web extra is not installed")
pytest.importorskip("uvicorn", reason="the web extra is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_serve(run, port: int, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zspace", "serve", str(run), "--port", str(port), *options],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_and_stops_cleanly(web_cgan_run, workers):
    port = _free_port()
    server = start_serve(web_cgan_run, port, "--workers", str(workers))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base, httpx)
        grids = {httpx.get(base + "/api/generate?digit=3&n=4&seed=5").content for _ in range(6)}
        assert len(grids) == 1  # every worker gives the same images for the same seed
        assert httpx.get(base + "/api/generate?digit=12").status_code == 422
        # bound to loopback: a page on another site that rebinds its name here is refused
        rebound = httpx.get(base + "/api/health", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
    finally:
        stop_server(server)
    assert server.returncode == 0


def restyle_workers(server_pid: int) -> list[int]:
    """The ids of the server's worker processes (multiprocessing's spawned children)."""
    children = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_sigterm_stops_the_server_within_5_s_even_with_a_stuck_worker(web_cgan_run):
    """A restyle worker that does not respond (stopped here; on a busy machine a nice-19
    worker can take a minute) must not hold the server's shutdown."""
    port = _free_port()
    server = start_serve(web_cgan_run, port)
    stuck = []
    try:
        wait_until_healthy(server, f"http://127.0.0.1:{port}", httpx)
        deadline = time.monotonic() + 60
        while not (stuck := restyle_workers(server.pid)):
            assert time.monotonic() < deadline, "no restyle worker started"
            time.sleep(0.2)
        for pid in stuck:
            os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert time.monotonic() - start < 5
    finally:
        if server.poll() is None:
            server.kill()
        for pid in stuck:  # gone if the server stopped it; else do not leave it stopped
            for stop in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, stop)
                except ProcessLookupError:
                    pass
