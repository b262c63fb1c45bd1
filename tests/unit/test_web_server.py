"""The server's guards against hostile or broken clients, on a real uvicorn server in a thread
(no MNIST: an untrained GAN and the stand-in classifier), with short limits so each test takes
about a second: the Host check, body size and deadline, request-head deadline, connection cap,
quiet client disconnects, 405s that say what is allowed, no paths on the server's disk."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time

import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from web_stand_ins import StandInClassifier, untrained_gan_sampler  # noqa: E402

from zspace.cli.serve_cmd import allowed_hosts  # noqa: E402
from zspace.web.app import LOOPBACK_HOSTS, create_app  # noqa: E402
from zspace.web.imaging import MAX_ANSWER_PIXELS, fitted_scale, grid_png  # noqa: E402
from zspace.web.run_info import without_absolute_paths  # noqa: E402
from zspace.web.server import ServerLimits, uvicorn_options  # noqa: E402

SHORT = 0.5  # seconds: the body and request-head deadlines of the test server
MAX_CONNECTIONS = 6


@pytest.fixture(scope="module")
def sampler():
    return untrained_gan_sampler()


@pytest.fixture(scope="module")
def server(sampler):
    """(host, port) of a uvicorn server with the guards and short limits, in a thread."""
    app = create_app(
        generator=sampler,
        classifier=StandInClassifier(),
        allowed_hosts=list(LOOPBACK_HOSTS),
        body_timeout=SHORT,
    )
    limits = ServerLimits(head_timeout=SHORT, max_connections=MAX_CONNECTIONS)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="info", **uvicorn_options(limits)
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield running.servers[0].sockets[0].getsockname()[:2]
    running.should_exit = True
    thread.join(10)


def connect(address) -> socket.socket:
    connection = socket.create_connection(address, timeout=5)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def request_head(method: str, path: str, host: str = "127.0.0.1", length: int | None = None):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if length is not None:
        lines += ["Content-Type: image/png", f"Content-Length: {length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def closed_by_server(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def get(address, path: str, host: str = "127.0.0.1") -> bytes:
    with connect(address) as connection:
        connection.sendall(
            request_head("GET", path, host).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        )
        return read_answer(connection)


# --- the request body ------------------------------------------------------------------------


def test_a_stalled_upload_gets_408_and_the_connection_closes(server):
    with connect(server) as connection:
        connection.sendall(request_head("POST", "/api/classify", length=10_000) + b"\x89PNG")
        start = time.monotonic()
        answer = read_answer(connection)  # returns once the server closes
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"error"' in answer and b"did not arrive within 0.5 s" in answer
    assert time.monotonic() - start < SHORT + 3


def test_a_declared_oversized_body_is_refused_before_it_is_sent(server):
    with connect(server) as connection:
        connection.sendall(request_head("POST", "/api/classify", length=50_000_000))
        answer = read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 413") and b"1 MB" in answer


def test_a_body_without_a_length_is_cut_off_at_the_limit(sampler):
    app = create_app(generator=sampler, classifier=StandInClassifier())
    with TestClient(app) as client:
        chunks = (bytes(10_000) for _ in range(200))  # streamed: no Content-Length to check
        response = client.post("/api/classify", content=chunks)
    assert response.status_code == 413 and "1 MB" in response.json()["error"]


def test_a_client_that_leaves_mid_upload_is_not_a_logged_error(server, caplog):
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            with connect(server) as connection:
                connection.sendall(request_head("POST", "/api/classify", length=100_000))
                connection.sendall(b"\x89PNG" + bytes(5000))
                time.sleep(0.1)
        time.sleep(0.3)
    loud = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not loud, [record.getMessage() for record in loud]
    assert not any(record.exc_info for record in caplog.records)


# --- connections -----------------------------------------------------------------------------


def test_a_slow_request_head_is_dropped(server):
    with connect(server) as connection:
        connection.sendall(b"GET /api/health HTTP/1.1\r\nHo")  # and then nothing more
        assert closed_by_server(connection, within=SHORT + 2)


def test_idle_sockets_beyond_the_cap_make_room_for_requests(server):
    idle = [connect(server)]
    time.sleep(0.05)  # the first waits longest
    idle += [connect(server) for _ in range(MAX_CONNECTIONS - 1)]
    try:
        time.sleep(0.1)  # let the server accept them all
        answer = get(server, "/api/health")
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        # the one that waited longest was closed to make room, well before its head deadline
        assert closed_by_server(idle[0], within=SHORT / 5)
    finally:
        for connection in idle:
            connection.close()


def test_head_deadline_and_cap_are_in_the_uvicorn_options():
    options = uvicorn_options(ServerLimits())
    assert options["timeout_graceful_shutdown"] <= 3 and options["timeout_keep_alive"] <= 5


# --- the Host check --------------------------------------------------------------------------


def test_only_loopback_hosts_are_answered_on_loopback(server):
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
        assert get(server, "/api/health", host).startswith(b"HTTP/1.1 200"), host
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.2"):
        answer = get(server, "/api/health", host)
        assert answer.startswith(b"HTTP/1.1 400") and b"is not served here" in answer, host


def test_which_hosts_serve_allows():
    assert allowed_hosts("127.0.0.1", [], LOOPBACK_HOSTS) == list(LOOPBACK_HOSTS)
    assert allowed_hosts("::1", ["proxy.lan"], LOOPBACK_HOSTS) == [*LOOPBACK_HOSTS, "proxy.lan"]
    assert allowed_hosts("0.0.0.0", [], LOOPBACK_HOSTS) is None
    assert allowed_hosts("0.0.0.0", ["digits.example"], LOOPBACK_HOSTS)[-1] == "digits.example"
    app = create_app(generator=untrained_gan_sampler(), allowed_hosts=["digits.example"])
    with TestClient(app, base_url="http://digits.example:9000") as client:
        assert client.get("/api/health").status_code == 200


# --- answers ---------------------------------------------------------------------------------


def test_405_says_which_methods_are_allowed(sampler):
    with TestClient(create_app(generator=sampler)) as client:
        for method, path, allowed in (
            ("POST", "/api/generate", "GET"),
            ("DELETE", "/api/info", "GET"),
            ("GET", "/api/classify", "POST"),
        ):
            response = client.request(method, path)
            assert response.status_code == 405 and response.headers["allow"] == allowed
            assert "error" in response.json()


def test_no_absolute_paths_in_info():
    config = {
        "autoencoder": {"source": "/home/ada/runs/ae", "windows": "C:\\runs\\ae"},
        "classifier": "../clf",
        "data_dir": "~/mnist",
        "notes": ["/srv/x", "plain text", 3],
    }
    assert without_absolute_paths(config) == {
        "autoencoder": {"source": "ae", "windows": "ae"},
        "classifier": "../clf",
        "data_dir": "mnist",
        "notes": ["x", "plain text", 3],
    }


def test_a_huge_answer_is_drawn_at_a_lower_scale_not_refused():
    # 2,560 digits at scale 8 would be a 128 Mpx PNG; the scale drops until it fits 16 Mpx.
    assert fitted_scale(16, 8) == 8
    assert fitted_scale(2560, 8) == 2 and 2560 * 56**2 <= MAX_ANSWER_PIXELS
    assert fitted_scale(100_000, 8) == 1
    rows = torch.zeros(10, 256, 1, 28, 28)
    with Image.open(io.BytesIO(grid_png(rows, scale=8))) as picture:
        assert picture.width * picture.height <= MAX_ANSWER_PIXELS * 1.1  # padding included
