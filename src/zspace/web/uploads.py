"""Reading an uploaded image from a request: the body, at most 1 MB, raw or multipart.

`read_upload` answers the image's bytes; it does not decode them (imaging.py does, in a lane).
"""

from __future__ import annotations

from fastapi import Request

from zspace.errors import ZspaceError
from zspace.web.imaging import MAX_UPLOAD_BYTES, UploadTooLarge

# Multipart framing around a 1 MB file is a few hundred bytes; allow a little more than that.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 16_384

# The OpenAPI description of the request body that upload endpoints take.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "An image of one digit (PNG or JPEG, at most 1 MB), either as a "
        "multipart form field named `image` or as the raw request body.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "format": "binary"}},
                    "required": ["image"],
                }
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
    """The whole request body; UploadTooLarge as soon as it (or its declared size) is too big."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise UploadTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise UploadTooLarge()
    return bytes(body)


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
