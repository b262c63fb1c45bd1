"""Server soak: slowloris sockets and stalled uploads against `zspace serve`, beside normal traffic.

    python benchmarks/reliability_soak.py --run RUN [--slow-sockets 1000] [--seconds 30]
        [--stalled-uploads 100] [--json out.json]

`zspace serve RUN` runs in a subprocess on a free port. First normal traffic alone (one client
sending GET /api/generate?digit=3&n=4 back to back) gives the idle p99. Then, for `--seconds`:
`--slow-sockets` connections that send a request head one byte a second (slowloris) and
`--stalled-uploads` that send 99% of a 1 MB upload and stop, each reopened as soon as the
server drops it, while the same normal traffic runs. It reports normal traffic's p99 idle and
under load, the server's RSS (its worker processes included) at the start, at the peak and
5 s after the attack ends, the 5xx answers and the failed requests.

Targets (issue 17): normal traffic's p99 under load within 2x of idle, RSS back within 100 MB of
its start, no 5xx, no failed normal request. The client shares the CPUs with the server: run it
alone on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NORMAL_PATH = "/api/generate?digit=3&n=4&seed=1"
UPLOAD_BYTES = 1_000_000
SETTLE_SECONDS = 5.0  # after the attack, before the final RSS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*"):
            try:
                tree += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
        index += 1
    return tree


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MB."""
    total_kb = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def start_server(run_dir: str, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "zspace", "serve", run_dir, "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_until_healthy(server: subprocess.Popen, port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited while starting; see its log")
        try:
            status, _ = await http_get(port, "/api/health")
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError("the server did not start")


async def http_get(port: int, path: str, timeout: float = 30) -> tuple[int, float]:
    """(status, seconds) of one GET on a fresh connection."""
    start = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        head = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        writer.write(head.encode())
        answer = await asyncio.wait_for(reader.read(), timeout)  # until the server closes
    finally:
        writer.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, time.perf_counter() - start


class Tally:
    def __init__(self):
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.dropped = {"slow": 0, "stalled": 0}


async def normal_traffic(port: int, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            status, seconds = await http_get(port, NORMAL_PATH)
        except (OSError, asyncio.TimeoutError, IndexError, ValueError):
            tally.errors += 1
            continue
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status == 200:
            tally.latencies.append(seconds)
        else:
            tally.errors += 1


async def reconnect(port: int, stop: asyncio.Event):
    """(reader, writer) of a new connection, retried every 0.5 s; None once `stop` is set."""
    while not stop.is_set():
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
    return None


async def slow_socket(port: int, tally: Tally, stop: asyncio.Event) -> None:
    """Send a request head one byte a second; reopen whenever the server closes it."""
    head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200
    while (connection := await reconnect(port, stop)) is not None:
        reader, writer = connection
        try:
            for byte in head:
                if stop.is_set() or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        except OSError:
            pass
        finally:
            writer.close()
        tally.dropped["slow"] += 1


async def stalled_upload(port: int, tally: Tally, stop: asyncio.Event) -> None:
    """Send 99% of a 1 MB upload and stop; reopen when the server answers or closes."""
    head = (
        "POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        f"Content-Length: {UPLOAD_BYTES}\r\n\r\n"
    ).encode()
    body = b"\x89PNG" + bytes(UPLOAD_BYTES * 99 // 100)
    while (connection := await reconnect(port, stop)) is not None:
        reader, writer = connection
        try:
            writer.write(head + body)
            await writer.drain()
            read = asyncio.ensure_future(reader.read())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([read, stopped], return_when=asyncio.FIRST_COMPLETED)
            read.cancel()
            stopped.cancel()
        except OSError:
            pass
        finally:
            writer.close()
        tally.dropped["stalled"] += 1


async def sample_rss(pid: int, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb(pid))
        await asyncio.sleep(0.5)


def p99_ms(latencies: list[float]) -> float:
    return float(np.percentile(latencies, 99) * 1000) if latencies else float("nan")


async def measure_idle(port: int, seconds: float) -> Tally:
    tally, stop = Tally(), asyncio.Event()
    task = asyncio.ensure_future(normal_traffic(port, tally, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return tally


async def soak(port: int, pid: int, slow_sockets: int, stalled_uploads: int, seconds: float):
    await measure_idle(port, 3)  # warm-up
    idle = await measure_idle(port, min(seconds, 15))
    rss_start = rss_mb(pid)
    load, stop, peak = Tally(), asyncio.Event(), [rss_start]
    attackers = [slow_socket(port, load, stop) for _ in range(slow_sockets)]
    attackers += [stalled_upload(port, load, stop) for _ in range(stalled_uploads)]
    tasks = [asyncio.ensure_future(task) for task in attackers]
    tasks.append(asyncio.ensure_future(sample_rss(pid, peak, stop)))
    await asyncio.sleep(2)  # let the attack build up before measuring
    tasks.append(asyncio.ensure_future(normal_traffic(port, load, stop)))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(SETTLE_SECONDS)
    rss_final = rss_mb(pid)
    server_errors = sum(count for status, count in load.statuses.items() if status >= 500)
    return {
        "slow_sockets": slow_sockets,
        "stalled_uploads": stalled_uploads,
        "seconds": seconds,
        "idle_p99_ms": round(p99_ms(idle.latencies), 2),
        "load_p99_ms": round(p99_ms(load.latencies), 2),
        "p99_ratio": round(p99_ms(load.latencies) / p99_ms(idle.latencies), 2),
        "normal_requests": len(load.latencies),
        "statuses": load.statuses,
        "server_errors_5xx": server_errors,
        "failed_requests": load.errors,
        "slow_sockets_dropped": load.dropped["slow"],
        "stalled_uploads_dropped": load.dropped["stalled"],
        "rss_start_mb": round(rss_start, 1),
        "rss_peak_mb": round(peak[0], 1),
        "rss_final_mb": round(rss_final, 1),
        "rss_final_minus_start_mb": round(rss_final - rss_start, 1),
    }


def run_soak(
    run_dir: str,
    slow_sockets: int = 1000,
    seconds: float = 30,
    stalled_uploads: int = 100,
    log_path: str | None = None,
) -> dict:
    """Soak a `zspace serve RUN_DIR` subprocess; the figures described in the module docstring."""
    raise_open_files(slow_sockets + stalled_uploads + 256)
    port = free_port()
    log_path = log_path or os.devnull
    with open(log_path, "w") as log:
        server = start_server(str(run_dir), port, log)
        try:
            asyncio.run(wait_until_healthy(server, port))
            result = asyncio.run(soak(port, server.pid, slow_sockets, stalled_uploads, seconds))
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    result["targets_met"] = (
        result["p99_ratio"] <= 2
        and result["rss_final_minus_start_mb"] <= 100
        and result["server_errors_5xx"] == 0
        and result["failed_requests"] == 0
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a sampler run folder to serve")
    parser.add_argument("--slow-sockets", type=int, default=1000)
    parser.add_argument("--stalled-uploads", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--log", default=None, help="write the server's output here")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    result = run_soak(args.run, args.slow_sockets, args.seconds, args.stalled_uploads, args.log)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
