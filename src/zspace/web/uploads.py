"""Reading an uploaded image from a request: the body, at most 1 MB, raw or multipart.

`read_upload` answers the image's bytes; it does not decode them (imaging.py does, in a lane).
`BodyLimits` guards every request body before any route sees it: a size limit and a deadline,
so that a stalled or endless upload is answered (413, 408) and its memory freed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import json

from fastapi import Request

from zspace.errors import ZspaceError
from zspace.web.imaging import MAX_UPLOAD_BYTES, UploadTooLarge

# Multipart framing around a 1 MB file is a few hundred bytes; allow a little more than that.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 16_384
# Seconds a whole request body may take to arrive (1 MB at 100 kB/s; a drawing is a few kB).
BODY_TIMEOUT = 10.0
# Bodies at least this large are worth returning their memory to the OS after (see below).
LARGE_BODY_BYTES = 256 * 1024
TRIM_DELAY = 0.5  # seconds from a large body to malloc_trim; a burst shares one call


class BodyReadTimeout(ZspaceError):
    """A request body that did not arrive within its deadline (answered with 408)."""

    def __init__(self, timeout: float):
        super().__init__(f"the request body did not arrive within {timeout:g} s")


# The OpenAPI description of the request body that upload endpoints take. JSON Schema cannot
# say "a picture of a digit"; the media types and the description do, and bytes that do not
# decode, or a blank picture, are answered 400.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "A picture of one digit (PNG or JPEG, at most 1 MB; not blank), either "
        "as a multipart form field named `image` or as the raw request body.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                    "required": ["image"],
                    "additionalProperties": False,
                },
                "encoding": {"image": {"contentType": "image/png, image/jpeg"}},
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def read_upload(request: Request) -> bytes:
    """The uploaded image bytes (multipart field `image`, or the raw body), at most 1 MB."""
    body = await read_body(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        raise ZspaceError(
            "a form without a file was sent; upload the image as multipart/form-data "
            "(field image) or as the raw request body"
        )
    if not content_type.startswith("multipart/form-data"):
        return body
    return await multipart_image(request, body)


async def read_body(request: Request) -> bytes:
    """The whole request body (BodyLimits has bounded its size and time)."""
    chunks = [chunk async for chunk in request.stream()]
    return b"".join(chunks)


async def multipart_image(request: Request, body: bytes) -> bytes:
    """The file in a multipart `body`: field `image`, else the form's only file."""

    async def replay():  # hands the already read body to Starlette's form parser
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except Exception as error:  # python-multipart raises several types for broken framing
        raise ZspaceError(f"the multipart upload cannot be parsed ({error})") from None
    try:
        return await _image_field(form).read()
    finally:
        await form.close()


def _image_field(form):
    """The form's upload to use; ZspaceError when it holds none, or text in `image`."""
    upload = form.get("image")
    if upload is None:
        files = [value for value in form.values() if hasattr(value, "read")]
        if not files:
            raise ZspaceError("the multipart upload has no file; send it in a field named image")
        upload = files[0]
    if not hasattr(upload, "read"):
        raise ZspaceError("the form field image must be a file, not text")
    return upload


class BodyLimits:
    """ASGI middleware: every request body at most `max_bytes`, arriving within `timeout` s.

    A declared Content-Length over the limit is answered 413 before a byte is read; a body that
    grows past it, or is still arriving at its deadline, raises UploadTooLarge or
    BodyReadTimeout in the route reading it (answered 413 or 408). Either way the connection
    closes, since the rest of the body is never read.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, timeout: float = BODY_TIMEOUT):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await send_closing_error(send, 413, str(UploadTooLarge(declared)))
        limited = LimitedReceive(receive, self.max_bytes, self.timeout)
        try:
            await self.app(scope, limited, send)
        finally:
            if limited.received >= LARGE_BODY_BYTES:
                return_freed_memory()


class LimitedReceive:
    """An ASGI `receive` that enforces a body's size and deadline until the body is complete."""

    def __init__(self, receive, max_bytes: int, timeout: float):
        self.receive, self.max_bytes, self.timeout = receive, max_bytes, timeout
        self.received = 0
        self.body_complete = False
        self.deadline = asyncio.get_running_loop().time() + timeout

    async def __call__(self):
        if self.body_complete:  # later calls wait for a disconnect: no deadline
            return await self.receive()
        time_left = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self.receive(), max(time_left, 0))
        except asyncio.TimeoutError:
            raise BodyReadTimeout(self.timeout) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                raise UploadTooLarge()
            self.body_complete = not message.get("more_body", False)
        return message


def declared_length(scope) -> int | None:
    """The request's Content-Length, or None when it has none (or an unreadable one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def send_closing_error(send, status: int, message: str) -> None:
    """Answer {"error": message} and close the connection (its body is left unread)."""
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def return_freed_memory() -> None:
    """Soon hand the memory freed after large bodies back to the OS (one call for a burst).

    glibc keeps freed heap memory for reuse, so a burst of large uploads would otherwise leave
    the server's RSS high for good. A no-op off glibc.
    """
    global _trim_pending
    trim = _malloc_trim()
    if trim is None or _trim_pending:
        return
    _trim_pending = True

    def run_trim():
        global _trim_pending
        _trim_pending = False
        trim(0)

    asyncio.get_running_loop().call_later(TRIM_DELAY, run_trim)


_trim_pending = False


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
