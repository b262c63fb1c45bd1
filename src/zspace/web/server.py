"""Running the app under uvicorn, with limits that keep slow or idle clients from holding it.

uvicorn gives a connection no deadline for its first request head (its keep-alive timer
starts only after a response, and any byte resets it), so a slowloris client that sends one
header byte every few seconds holds a socket for good; and its `limit_concurrency` answers 503
to everyone once that many sockets are open, slow ones included. `GuardedHttpToolsProtocol`
instead gives every request head a deadline, and keeps at most `max_connections` sockets by
closing the one that has waited on its client longest (for a request head or a request body)
when a new one arrives; a socket whose request is being answered is never closed for room, so
normal traffic is served while slow clients are dropped. The request body's own deadline (an
answer of 408) and size limit are the app's (uploads.BodyLimits).
"""

from __future__ import annotations

import asyncio
import functools
import resource
import time
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# File descriptors kept free of client sockets: the models, logs and worker pipes need some.
RESERVED_FILES = 64


@dataclass(frozen=True)
class ServerLimits:
    """What one server process allows its clients.

    Args:
        head_timeout: seconds a connection may take to send a whole request head, counted from
            when it opened or its last response ended.
        max_connections: open sockets at most; more close the one waiting longest on its client.
        keep_alive: seconds an idle keep-alive connection stays open.
        shutdown_grace: seconds running requests get to finish on SIGTERM or Ctrl-C.
    """

    head_timeout: float = 10.0
    max_connections: int = 2048
    keep_alive: int = 5
    shutdown_grace: int = 3


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools connection with a request-head deadline and a connection cap."""

    def __init__(self, *args, limits: ServerLimits, **kwargs):
        super().__init__(*args, **kwargs)
        self.limits = limits
        # When this connection began waiting on its client (for a request head or body);
        # None while its request is being answered.
        self.waiting_since: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._wait_for_head()
        make_room(self.connections, self, self.limits.max_connections)

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self.waiting_since = time.monotonic()  # for the body, if any (the app's deadline)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.waiting_since = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._wait_for_head()

    def _wait_for_head(self) -> None:
        self.waiting_since = time.monotonic()
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def make_room(connections: set, newcomer, max_connections: int) -> None:
    """Above `max_connections`, close the connection waiting longest on its client (the
    newcomer itself if every other one is being answered)."""
    if len(connections) <= max_connections:
        return
    waiting = [
        connection
        for connection in connections
        if connection is not newcomer and getattr(connection, "waiting_since", None) is not None
    ]
    victim = min(waiting, key=lambda c: c.waiting_since) if waiting else newcomer
    victim.transport.close()


def guarded_protocol(limits: ServerLimits):
    """The `http` protocol for uvicorn.Config (a partial, so it pickles for --workers)."""
    return functools.partial(GuardedHttpToolsProtocol, limits=limits)


def raise_file_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files toward `wanted` (up to the hard limit);
    returns the client sockets it leaves room for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < target:
        soft = target if hard == resource.RLIM_INFINITY else min(target, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        except (ValueError, OSError):
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_FILES))


def uvicorn_options(limits: ServerLimits) -> dict:
    """uvicorn.run keyword arguments that apply `limits`."""
    return {
        "http": guarded_protocol(limits),
        "timeout_keep_alive": limits.keep_alive,
        "timeout_graceful_shutdown": limits.shutdown_grace,
    }
