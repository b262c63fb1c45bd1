"""The FastAPI application: digits on demand, morphs, classification and restyling.

`create_app` loads the models once and returns an app; every request that touches a model runs
off the event loop, with a time limit, in one of two lanes (see lanes.py): quick calls
(generate, interpolate, classify: a few ms) on a thread pool, and restyles (a noise search,
5-50 ms each) in a worker process, so a quick request never waits behind a restyle. User mistakes
become a 4xx response with a JSON body {"error": "...one line naming the problem..."}.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from zspace import __version__
from zspace.errors import ZspaceError
from zspace.runs import RunDir
from zspace.web.imaging import (
    MAX_UPLOAD_BYTES,
    UploadTooLarge,
    grid_png,
    image_data_urls,
    prepare_upload,
)
from zspace.web.lanes import RestyleLane, one_torch_thread
from zspace.web.service import Classification, DigitService, ServiceUnavailable

STATIC_DIR = Path(__file__).parent / "static"
MAX_SEED = 2**63 - 1  # seeds are int64
MAX_SAMPLES = 256
MAX_STEPS = 64
# Multipart framing around a 1 MB file is a few hundred bytes; allow a little more than that.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 16_384
IMAGE_MEDIA = {"content": {"image/png": {}}, "description": "PNG image"}


# Query() objects hold the parameter's name once used, so each parameter gets a fresh one.
def digit_query(description: str = "0-9"):
    return Query(None, ge=0, le=9, description=description)


def seed_query(description: str = "0 .. 2**63-1; the same seed gives the same images"):
    return Query(0, ge=0, le=MAX_SEED, description=description)


def scale_query():
    return Query(2, ge=1, le=8, description="pixels per MNIST pixel in the PNGs")


def format_query():
    return Query("png", description="png: one image; json: base64 PNGs and metadata")


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


def find_classifier_run(run_dir: str | Path) -> Path | None:
    """The classifier run a GAN run points at, if any.

    A run may name one in config.json ("classifier" or "classifier_run": a path, relative to
    the run folder or absolute), or hold one in a `classifier/` subfolder.
    """
    run = RunDir(run_dir)
    config = run.read_config()
    for key in ("classifier", "classifier_run"):
        value = config.get(key)
        if isinstance(value, str) and value:
            path = Path(value)
            path = path if path.is_absolute() else run.path / path
            if RunDir(path).exists():
                return path
    inside = run.path / "classifier"
    return inside if RunDir(inside).exists() else None


def load_models(run_dir, classifier_dir=None, device="cpu"):
    """(generator, classifier or None) from run folders; ZspaceError for wrong folders."""
    import zspace

    generator = zspace.load(run_dir, device=device)
    if not hasattr(generator, "sample_with_labels"):
        kind = RunDir(run_dir).read_config()["kind"]
        raise ZspaceError(f"{run_dir} is a {kind} run; the server needs a latent-gan run")
    classifier_dir = classifier_dir or find_classifier_run(run_dir)
    classifier = None
    if classifier_dir is not None:
        from zspace.fewshot.classify import load_classifier

        classifier = load_classifier(classifier_dir)
    return generator, classifier, classifier_dir


def run_info(run_dir: Path | None, generator, classifier_dir: Path | None) -> dict:
    """The run's config and its last logged metrics (what /api/info shows)."""
    info: dict = {
        "zspace_version": __version__,
        "conditional": bool(generator.conditional),
        "model": repr(generator),
        # How restyles find an upload's noise: a fitted inverter (fast) or Adam alone.
        "inverter": getattr(generator, "inverter", None) is not None,
        "limits": {
            "n": [1, MAX_SAMPLES],
            "steps": [2, MAX_STEPS],
            "seed": [0, MAX_SEED],
            "upload_bytes": MAX_UPLOAD_BYTES,
        },
    }
    if run_dir is not None:
        run = RunDir(run_dir)
        info["run"] = str(run.path)
        info["config"] = run.read_config()
        metrics = run.read_metrics()
        info["metrics"] = metrics[-1] if metrics else None
        # Evaluation reports written next to the run (e.g. evaluation.json) are key metrics too.
        for path in sorted(run.path.glob("eval*.json")):
            try:
                info.setdefault("evaluation", {})[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
    info["classifier"] = None if classifier_dir is None else {"run": str(classifier_dir)}
    if classifier_dir is not None:
        config = RunDir(classifier_dir).read_config()
        info["classifier"]["config"] = config
    return info


def restyle_answer(
    service: DigitService,
    image,
    inverted: bool,
    digits: list[int],
    source_digit: int,
    classification: Classification | None,
    seed: int,
    format: str,
    scale: int,
) -> bytes | dict:
    """A restyle of an upload whose digit is known, as PNG bytes or a JSON-ready dict.

    `image` is a uint8 (28, 28) NumPy array. Runs in the restyle lane (a worker process), so
    it takes and returns plain values.
    """
    result = service.restyle(torch.from_numpy(image), digits, source_digit, seed)
    if format == "png":
        return grid_png(result["images"], ncols=len(digits), scale=scale)
    return {
        "digits": digits,
        "images": image_data_urls(result["images"], scale),
        "source_digit": source_digit,
        "source": "request" if classification is None else "classifier",
        "probabilities": None if classification is None else classification.probabilities,
        "reconstruction": image_data_urls(result["reconstruction"], scale)[0],
        "code_error": result["code_error"],
        "inverted": inverted,
    }


def _png_response(data: bytes) -> Response:
    return Response(data, media_type="image/png")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _describe_validation(error: RequestValidationError) -> str:
    """FastAPI's validation details -> 'seed: Input should be ... (got -1)'."""
    parts = []
    for problem in error.errors():
        location = [str(p) for p in problem.get("loc", ()) if p not in ("query", "body", "path")]
        name = ".".join(location) or "request"
        text = f"{name}: {problem.get('msg', 'invalid value')}"
        if "input" in problem and not isinstance(problem["input"], dict | list):
            text += f" (got {str(problem['input'])[:40]!r})"
        parts.append(text)
    return "; ".join(parts) or "invalid request"


async def _read_upload(request: Request) -> bytes:
    """The uploaded image bytes (multipart field `image`, or the raw body), at most 1 MB."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise UploadTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise UploadTooLarge()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        raise ZspaceError(
            "a form without a file was sent; upload the image as multipart/form-data "
            "(field image) or as the raw request body"
        )
    if not content_type.startswith("multipart/form-data"):
        return bytes(body)

    async def replay():
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    except Exception as error:  # python-multipart raises several types for broken framing
        raise ZspaceError(f"the multipart upload cannot be parsed ({error})") from None
    upload = form.get("image")
    if upload is None:
        files = [value for value in form.values() if hasattr(value, "read")]
        if not files:
            raise ZspaceError("the multipart upload has no file; send it in a field named image")
        upload = files[0]
    if not hasattr(upload, "read"):
        raise ZspaceError("the form field image must be a file, not text")
    data = await upload.read()
    await form.close()
    return data


def create_app(
    run_dir: str | Path | None = None,
    *,
    generator=None,
    classifier=None,
    classifier_dir: str | Path | None = None,
    device: str = "cpu",
    inference_timeout: float = 30.0,
    inference_threads: int = 1,
    restyle_workers: int = 1,
    restyle_processes: bool = True,
) -> FastAPI:
    """The zspace web app.

    Args:
        run_dir: a latent-gan run folder (loaded with `zspace.load`) unless `generator` is given.
        generator: an already loaded sampler (tests inject stand-ins here).
        classifier: an already loaded classifier with `.classify(images) -> (labels, probs)`;
            otherwise loaded from `classifier_dir` or the classifier that `run_dir` names.
        inference_timeout: seconds a request may wait for and use the models before a 503.
        inference_threads: quick model calls (generate, interpolate, classify) that may run
            at once.
        restyle_workers: restyles that may run at once, beside the quick calls; more wait
            their turn (within inference_timeout).
        restyle_processes: run restyles in worker processes that load `run_dir` themselves
            (when the app was given a run folder, not an already loaded generator); else in
            threads of this process.
    """
    run_path = None if run_dir is None else Path(run_dir)
    generator_given = generator
    if generator is None:
        if run_path is None:
            raise ZspaceError("create_app needs a run folder or a generator")
        generator, loaded_classifier, classifier_dir = load_models(run_path, classifier_dir, device)
        classifier = classifier if classifier is not None else loaded_classifier
    elif classifier is None and classifier_dir is not None:
        from zspace.fewshot.classify import load_classifier

        classifier = load_classifier(classifier_dir)
    service = DigitService(generator, classifier)
    info = run_info(run_path, generator, None if classifier_dir is None else Path(classifier_dir))
    info["classifier_loaded"] = classifier is not None
    quick_lane = ThreadPoolExecutor(
        max_workers=inference_threads,
        thread_name_prefix="zspace-infer",
        initializer=one_torch_thread,
    )
    from_run = run_path is not None and generator_given is None and restyle_processes
    restyle_lane = RestyleLane(
        service, run_path if from_run else None, device=device, workers=restyle_workers
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        restyle_lane.start()
        # Everything loaded so far (models, FastAPI's routes) lives as long as the server:
        # moving it out of the collector's reach keeps full collections, which would walk all
        # of it, from pausing requests for milliseconds.
        gc.collect()
        gc.freeze()
        yield
        quick_lane.shutdown(wait=False, cancel_futures=True)
        restyle_lane.shutdown()

    # FastAPI's own /docs pulls Swagger UI from a CDN; ours is a self-contained page (see
    # docs_page below) that renders /openapi.json, so the reference works offline.
    app = FastAPI(
        title="zspace",
        version=__version__,
        description="Digits on demand from a conditional latent GAN, morphs between digits, "
        'and a classifier for hand-drawn digits. Errors are JSON: {"error": "..."}.',
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service

    async def infer(function):
        """Run a model call in the quick lane, with a time limit (waiting included)."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            loop.run_in_executor(quick_lane, function), timeout=inference_timeout
        )

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError):
        return _error(422, _describe_validation(error))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException):
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(ServiceUnavailable)
    async def on_unavailable(request: Request, error: ServiceUnavailable):
        return _error(503, str(error))

    @app.exception_handler(ZspaceError)
    async def on_user_error(request: Request, error: ZspaceError):
        return _error(400, str(error))

    @app.exception_handler(UploadTooLarge)
    async def on_too_large(request: Request, error: UploadTooLarge):
        return _error(413, str(error))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, error: Exception):
        # A bug, not a user mistake: still answer JSON (the traceback goes to the server log).
        return _error(500, f"internal error ({type(error).__name__}); see the server log")

    @app.exception_handler(asyncio.TimeoutError)
    async def on_timeout(request: Request, error: asyncio.TimeoutError):
        return _error(503, f"the models did not answer within {inference_timeout:g} s; try again")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs_page():
        return FileResponse(STATIC_DIR / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/health", summary="Liveness and which models are loaded")
    async def health():
        return {
            "status": "ok",
            "generator": True,
            "conditional": service.conditional,
            "classifier": service.classifier is not None,
        }

    @app.get("/api/info", summary="The run's config and key metrics")
    async def run_information():
        return info

    @app.get(
        "/api/generate",
        summary="Sample digits",
        description="`n` samples of `digit` as a PNG grid (or JSON with one base64 PNG per "
        "image). Without `digit`, a conditional run gives a row of `n` for each digit 0-9.",
        responses={200: IMAGE_MEDIA},
    )
    async def generate(
        digit: int | None = digit_query(),
        n: int = Query(16, ge=1, le=MAX_SAMPLES),
        seed: int = seed_query(),
        scale: int = scale_query(),
        format: Literal["png", "json"] = format_query(),
    ):
        def work():
            images, labels = service.generate(digit, n, seed)
            if format == "json":
                return {
                    "digit": digit,
                    "n": n,
                    "seed": seed,
                    "labels": None if labels is None else labels.tolist(),
                    "images": image_data_urls(images, scale),
                }
            if digit is None and labels is not None:  # one row per digit
                images = images.reshape(10, n, 1, 28, 28)
            return _png_response(grid_png(images, scale=scale))

        return await infer(work)

    @app.get(
        "/api/interpolate",
        summary="Morph between two digits or two seeds",
        description="`steps` images from (`from_digit`, `seed`) to (`to_digit`, `to_seed`). "
        "`space=gan` walks the generator's noise and label; `space=ae` walks the straight "
        "line between the two ends' autoencoder codes. The noise of a seed is the same for "
        "every digit, so a morph between digits keeps one handwriting style.",
        responses={200: IMAGE_MEDIA},
    )
    async def interpolate(
        from_digit: int | None = digit_query(),
        to_digit: int | None = digit_query(),
        seed: int = seed_query(),
        to_seed: int | None = Query(None, ge=0, le=MAX_SEED, description="default: seed"),
        steps: int = Query(10, ge=2, le=MAX_STEPS),
        space: Literal["gan", "ae"] = Query("gan"),
        scale: int = scale_query(),
        format: Literal["png", "json"] = format_query(),
    ):
        to_seed = seed if to_seed is None else to_seed

        def work():
            images = service.interpolate(from_digit, to_digit, seed, to_seed, steps, space)
            if format == "png":
                return _png_response(grid_png(images, ncols=steps, scale=scale))
            return {
                "from_digit": from_digit,
                "to_digit": from_digit if to_digit is None else to_digit,
                "seed": seed,
                "to_seed": to_seed,
                "steps": steps,
                "space": space,
                "images": image_data_urls(images, scale),
            }

        return await infer(work)

    @app.post(
        "/api/classify",
        summary="Read a hand-drawn digit",
        description="Answers the classifier's digit and its ten probabilities. Light-on-dark "
        "and dark-on-light images both work (`inverted` says which it was).",
        openapi_extra=UPLOAD_BODY,
    )
    async def classify(request: Request):
        data = await _read_upload(request)

        def work():
            image, inverted = prepare_upload(data)
            result = service.classify(image)
            return {
                "digit": result.digit,
                "probabilities": result.probabilities,
                "inverted": inverted,
            }

        return await infer(work)

    @app.post(
        "/api/restyle",
        summary="Redraw an uploaded digit as another digit in the same style",
        description="Finds the generator noise whose rendering of the uploaded digit (read by "
        "the classifier, or given as `source_digit`) matches the upload, then draws that noise "
        "as `digit` (omit it for all ten digits).",
        openapi_extra=UPLOAD_BODY,
        responses={200: IMAGE_MEDIA},
    )
    async def restyle(
        request: Request,
        digit: int | None = digit_query(),
        source_digit: int | None = digit_query("the uploaded digit (default: classified)"),
        seed: int = seed_query(),
        scale: int = scale_query(),
        format: Literal["png", "json"] = format_query(),
    ):
        data = await _read_upload(request)
        digits = list(range(10)) if digit is None else [digit]

        def read_upload():
            image, inverted = prepare_upload(data)
            return image, inverted, *service.restyle_source(image, source_digit)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + inference_timeout
        image, inverted, digit_shown, classification = await infer(read_upload)
        # A NumPy array travels to the worker inside the pickle; a tensor would go through
        # torch's shared-memory file-descriptor handoff (measured: 0.4 ms a call against 0.13).
        image = image.numpy()
        arguments = (image, inverted, digits, digit_shown, classification, seed, format, scale)
        answer = await asyncio.wait_for(
            restyle_lane.run(restyle_answer, *arguments),
            timeout=max(deadline - loop.time(), 0.001),
        )
        return _png_response(answer) if format == "png" else answer

    return app


# `zspace serve --workers N` starts N server processes that share one listening socket; each
# builds its own app from the settings the command leaves in this variable.
SETTINGS_VARIABLE = "ZSPACE_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """`create_app(**settings)` with the JSON settings in $ZSPACE_SERVE_SETTINGS (a factory for
    uvicorn's worker processes)."""
    try:
        settings = json.loads(os.environ[SETTINGS_VARIABLE])
    except (KeyError, json.JSONDecodeError) as error:
        raise ZspaceError(f"${SETTINGS_VARIABLE} holds no server settings") from error
    return create_app(**settings)
