"""The FastAPI application: digits on demand, morphs, classification and restyling.

`create_app` loads the models once (run_info.py) and returns an app whose routes are thin:
each reads its parameters and runs a model call off the event loop, with a time limit, in one
of two lanes (lanes.py): quick calls (generate, interpolate, classify: a few ms) on a thread
pool, and restyles (a noise search, 5-50 ms each; restyle.py) in a worker process, so a quick
request never waits behind a restyle. A restyle by a translator run (`method=cycle` and the
like; translators.py) is a few small network passes and runs in the quick lane. User mistakes
become a 4xx response with a JSON body {"error": "...one line naming the problem..."}; every
status a route can answer is in the OpenAPI schema, which is cut to what the loaded run can do
(see run_schema).

Around the routes, two guards run first: a Host check (a server on loopback answers only
requests addressed to localhost, so a page on another site cannot reach it by DNS rebinding)
and BodyLimits (uploads.py: a size limit and a deadline for every request body).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from zspace import __version__
from zspace.errors import ZspaceError
from zspace.export.runtime import with_engine
from zspace.sampling.sampler import MAX_SEED
from zspace.web.imaging import UploadTooLarge, grid_png, image_data_urls, prepare_upload
from zspace.web.lanes import Lanes
from zspace.web.restyle import read_source, restyle_answer
from zspace.web.run_info import MAX_REQUEST_SAMPLES, MAX_STEPS, load_models, run_info
from zspace.web.service import DigitService, ServiceUnavailable
from zspace.web.translators import RESTYLE_METHOD, NoTranslator
from zspace.web.uploads import (
    BODY_TIMEOUT,
    UPLOAD_BODY,
    BodyLimits,
    BodyReadTimeout,
    read_upload,
)

STATIC_DIR = Path(__file__).parent / "static"
IMAGE_MEDIA = {"content": {"image/png": {}}, "description": "PNG image"}
# User mistakes other than 400 Bad Request (every other ZspaceError).
ERROR_STATUS = (
    (UploadTooLarge, 413),
    (BodyReadTimeout, 408),
    (ServiceUnavailable, 503),
    (NoTranslator, 404),
)
# Answers after which the connection closes: the request body was left unread.
CLOSING_STATUS = (408, 413)
LOG = logging.getLogger("zspace.web")


def error_responses(*statuses: int) -> dict:
    """OpenAPI `responses` for error statuses: each a JSON body {"error": "..."}."""
    meaning = {
        400: "A request the run cannot answer, an unusable upload, or a Host not allowed",
        404: "No translator of this method turns the upload's digit into the one asked for",
        408: "The request body did not arrive in time",
        413: "The upload is larger than 1 MB",
        422: "A parameter out of range or of the wrong type",
        503: "The models did not answer in time, or a model this needs is not loaded",
    }
    body = {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }
    }
    return {
        status: {"description": meaning[status], "content": {"application/json": body}}
        for status in statuses
    }


# Every route can answer 400 (a Host not allowed) and 503; a route with parameters 422.
PLAIN_ERRORS = error_responses(400, 503)
QUERY_ERRORS = error_responses(400, 422, 503)
UPLOAD_ERRORS = error_responses(400, 408, 413, 422, 503)
RESTYLE_ERRORS = error_responses(400, 404, 408, 413, 422, 503)

# `zspace serve --workers N` starts N server processes that share one listening socket; each
# builds its own app from the settings the command leaves in this variable.
SETTINGS_VARIABLE = "ZSPACE_SERVE_SETTINGS"


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
    engine: str = "pytorch",
    allowed_hosts: list[str] | None = None,
    body_timeout: float = BODY_TIMEOUT,
    translators_dir: str | Path | None = None,
) -> FastAPI:
    """The zspace web app.

    Args:
        run_dir: a sampler run folder (latent-gan, pixel-gan, gmm-baseline; loaded with
            `zspace.loading.load_sampler`) unless `generator` is given.
        generator: an already loaded Sampler (tests inject stand-ins here).
        classifier: an already loaded classifier with `.classify(images) -> (labels, probs)`;
            otherwise loaded from `classifier_dir` or the classifier that `run_dir` names.
        inference_timeout: seconds a request may wait for and use the models before a 503.
        inference_threads: quick model calls (generate, interpolate, classify) that may run
            at once.
        restyle_workers: restyles that may run at once, beside the quick calls; more wait
            their turn (within inference_timeout).
        restyle_processes: run restyles in worker processes that load `run_dir` themselves
            (when the app was given a run folder, not an already loaded generator, and the
            run can restyle); else in threads of this process.
        engine: what draws the digits of quick calls: "pytorch", or "onnxruntime" (a GAN's
            exported sampler graph, zspace.export.runtime; needs the export extra). Restyles
            and soft-label morphs stay in PyTorch.
        allowed_hosts: the Host header values (without port) answered; others get a 400.
            None answers any (`zspace serve` on loopback passes LOOPBACK_HOSTS).
        body_timeout: seconds a request body may take to arrive before a 408.
        translators_dir: a folder whose translator runs (up to two levels down) /api/restyle
            offers as methods; default: those in `run_dir` and, for a stage of a `zspace run`
            study, in the study's translation folder (translators.search_roots). A run that
            does not load is skipped with a line on stderr.
    """
    models = load_models(run_dir, generator, classifier, classifier_dir, device, translators_dir)
    models.generator = with_engine(models.generator, engine)
    service = DigitService(models.generator, models.classifier, models.translators)
    in_workers = generator is None and restyle_processes and service.can_restyle
    lanes = Lanes(
        service,
        models.run_dir if in_workers else None,
        device=device,
        threads=inference_threads,
        restyle_workers=restyle_workers,
        timeout=inference_timeout,
    )
    # FastAPI's own /docs pulls Swagger UI from a CDN; ours is a self-contained page (see
    # docs_page below) that renders /openapi.json, so the reference works offline.
    app = FastAPI(
        title="zspace",
        version=__version__,
        description="Digits on demand from a trained sampler run (a conditional latent GAN "
        "above all), morphs between digits, and a classifier for hand-drawn digits. "
        'Errors are JSON: {"error": "..."}.',
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    info = {**run_info(models), "restyle_methods": service.restyle_methods}
    app.state.service, app.state.lanes, app.state.info = service, lanes, info
    add_error_handlers(app)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(api)
    app.openapi = lambda: run_schema(app)
    # The last added runs first: the Host check before anything reads the body.
    app.add_middleware(BodyLimits, timeout=body_timeout)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHosts, hosts=allowed_hosts)
    return app


def app_from_environment() -> FastAPI:
    """`create_app(**settings)` with the JSON settings in $ZSPACE_SERVE_SETTINGS (a factory for
    uvicorn's worker processes)."""
    try:
        settings = json.loads(os.environ[SETTINGS_VARIABLE])
    except (KeyError, json.JSONDecodeError) as error:
        raise ZspaceError(f"${SETTINGS_VARIABLE} holds no server settings") from error
    return create_app(**settings)


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.lanes.start()
    # Everything loaded so far (models, FastAPI's routes) lives as long as the server: moving
    # it out of the collector's reach keeps full collections, which would walk all of it, from
    # pausing requests for milliseconds.
    gc.collect()
    gc.freeze()
    yield
    app.state.lanes.shutdown()


# --- guards ----------------------------------------------------------------------------------

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class TrustedHosts:
    """ASGI middleware: answer only requests whose Host header (port aside) is in `hosts`
    ("*" allows any); others get a 400. A request without a Host header passes (HTTP/1.0)."""

    def __init__(self, app, hosts: list[str]):
        self.app = app
        self.hosts = {host_name(host) for host in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and "*" not in self.hosts:
            host = host_header(scope)
            if host is not None and host_name(host) not in self.hosts:
                response = error_response(400, f"the Host {host[:60]!r} is not served here")
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def host_header(scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return value.decode("latin-1")
    return None


def host_name(host: str) -> str:
    """'LocalHost:8000' -> 'localhost', '[::1]:8000' -> '[::1]'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


# --- errors ----------------------------------------------------------------------------------


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(ZspaceError, on_user_error)
    app.add_exception_handler(Exception, on_bug)
    app.add_exception_handler(asyncio.TimeoutError, on_timeout)


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    if status in CLOSING_STATUS:
        headers = {**(headers or {}), "Connection": "close"}
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def on_validation_error(request: Request, error: RequestValidationError):
    return error_response(422, describe_validation(error))


async def on_http_error(request: Request, error: StarletteHTTPException):
    # Keeps the exception's headers: a 405 must say which methods are allowed (Allow).
    return error_response(error.status_code, str(error.detail), error.headers)


async def on_client_disconnect(request: Request, error: ClientDisconnect):
    # The client went away mid-upload: nobody to answer, and nothing worth a traceback.
    LOG.info("client disconnected before sending the whole body of %s", request.url.path)
    return Response(status_code=400)


async def on_user_error(request: Request, error: ZspaceError):
    status = next((code for kind, code in ERROR_STATUS if isinstance(error, kind)), 400)
    return error_response(status, str(error))


async def on_bug(request: Request, error: Exception):
    # A bug, not a user mistake: still answer JSON (the traceback goes to the server log).
    return error_response(500, f"internal error ({type(error).__name__}); see the server log")


async def on_timeout(request: Request, error: asyncio.TimeoutError):
    timeout = request.app.state.lanes.timeout
    return error_response(503, f"the models did not answer within {timeout:g} s; try again")


def describe_validation(error: RequestValidationError) -> str:
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


# --- the page --------------------------------------------------------------------------------

pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def index():
    return FileResponse(STATIC_DIR / "index.html")


@pages.get("/docs")
async def docs_page():
    return FileResponse(STATIC_DIR / "docs.html")


# --- the API ---------------------------------------------------------------------------------

api = APIRouter()


# Query() objects hold the parameter's name once used, so each parameter gets a fresh one.
def digit_query(description: str = "0-9"):
    return Query(None, ge=0, le=9, description=description)


def seed_query(description: str = "0 .. 2**63-1; the same seed gives the same images"):
    return Query(0, ge=0, le=MAX_SEED, description=description)


def scale_query():
    return Query(2, ge=1, le=8, description="pixels per MNIST pixel in the PNGs")


def format_query():
    return Query("png", description="png: one image; json: base64 PNGs and metadata")


def png_response(data: bytes) -> Response:
    return Response(data, media_type="image/png")


@api.get("/api/health", summary="Liveness and which models are loaded", responses=PLAIN_ERRORS)
async def health(request: Request):
    service = request.app.state.service
    return {
        "status": "ok",
        "generator": True,
        "conditional": service.conditional,
        "classifier": service.classifier is not None,
    }


@api.get("/api/info", summary="The run's config and key metrics", responses=PLAIN_ERRORS)
async def run_information(request: Request):
    return request.app.state.info


@api.get(
    "/api/generate",
    summary="Sample digits",
    description="`n` samples of `digit` as a PNG grid (or JSON with one base64 PNG per "
    "image). Without `digit`, a conditional run gives a row of `n` for each digit 0-9.",
    responses={200: IMAGE_MEDIA, **QUERY_ERRORS},
)
async def generate(
    request: Request,
    digit: int | None = digit_query(),
    n: int = Query(16, ge=1, le=MAX_REQUEST_SAMPLES),
    seed: int = seed_query(),
    scale: int = scale_query(),
    format: Literal["png", "json"] = format_query(),
):
    lanes = request.app.state.lanes
    return await lanes.quick(generate_answer, digit, n, seed, scale, format)


def generate_answer(service: DigitService, digit, n, seed, scale, format):
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
    return png_response(grid_png(images, scale=scale))


@api.get(
    "/api/interpolate",
    summary="Morph between two digits or two seeds",
    description="`steps` images from (`from_digit`, `seed`) to (`to_digit`, `to_seed`). "
    "`space=gan` walks the generator's noise and label; `space=ae` walks the straight "
    "line between the two ends' autoencoder codes. The noise of a seed is the same for "
    "every digit, so a morph between digits keeps one handwriting style. A run without "
    "noise (gmm-baseline) has only `space=ae`.",
    responses={200: IMAGE_MEDIA, **QUERY_ERRORS},
)
async def interpolate(
    request: Request,
    from_digit: int | None = digit_query(),
    to_digit: int | None = digit_query(),
    seed: int = seed_query(),
    to_seed: int | None = Query(None, ge=0, le=MAX_SEED, description="default: seed"),
    steps: int = Query(10, ge=2, le=MAX_STEPS),
    space: Literal["gan", "ae"] | None = Query(
        None, description="gan or ae; default: gan for a run with noise, else ae"
    ),
    scale: int = scale_query(),
    format: Literal["png", "json"] = format_query(),
):
    ends = (from_digit, to_digit, seed, seed if to_seed is None else to_seed)
    space = space or request.app.state.service.interpolation_spaces[0]
    lanes = request.app.state.lanes
    return await lanes.quick(interpolate_answer, ends, steps, space, scale, format)


def interpolate_answer(service: DigitService, ends: tuple, steps, space, scale, format):
    """`ends` is (from_digit, to_digit, seed, to_seed)."""
    images = service.interpolate(*ends, steps, space)
    if format == "png":
        return png_response(grid_png(images, ncols=steps, scale=scale))
    from_digit, to_digit, seed, to_seed = ends
    return {
        "from_digit": from_digit,
        "to_digit": from_digit if to_digit is None else to_digit,
        "seed": seed,
        "to_seed": to_seed,
        "steps": steps,
        "space": space,
        "images": image_data_urls(images, scale),
    }


@api.post(
    "/api/classify",
    summary="Read a hand-drawn digit",
    description="Answers the classifier's digit and its ten probabilities. Light-on-dark "
    "and dark-on-light images both work (`inverted` says which it was).",
    openapi_extra=UPLOAD_BODY,
    responses=UPLOAD_ERRORS,
)
async def classify(request: Request):
    data = await read_upload(request)
    return await request.app.state.lanes.quick(classify_answer, data)


def classify_answer(service: DigitService, data: bytes) -> dict:
    image, inverted = prepare_upload(data)
    result = service.classify(image)
    return {"digit": result.digit, "probabilities": result.probabilities, "inverted": inverted}


@api.post(
    "/api/restyle",
    summary="Redraw an uploaded digit as another digit in the same style",
    description="Redraws the uploaded digit (read by the classifier, or given as "
    "`source_digit`) as `digit`. `method=restyle` (the default) finds the generator noise "
    "whose rendering of the upload matches it, then draws that noise as `digit` (omit it "
    "for all ten digits); it needs a conditional run with noise (a GAN). Any other method "
    "is a translator run served beside the run (listed in /api/info): the pair's own run "
    "of that method, else its all-pairs run, moves the upload's autoencoder code to "
    "`digit`; without `digit`, to every digit the method reaches (JSON lists the others "
    "as `unreachable`); the upload's own digit is its autoencoder reconstruction. `seed` "
    "applies to `method=restyle` only.",
    openapi_extra=UPLOAD_BODY,
    responses={200: IMAGE_MEDIA, **RESTYLE_ERRORS},
)
async def restyle(
    request: Request,
    digit: int | None = digit_query(),
    source_digit: int | None = digit_query("the uploaded digit (default: classified)"),
    method: str | None = Query(
        None,
        max_length=40,
        description="restyle (default): the generator's noise; or a translator method "
        "served here (regular, cycle, paired, shift; see /api/info)",
    ),
    seed: int = seed_query(),
    scale: int = scale_query(),
    format: Literal["png", "json"] = format_query(),
):
    method = request.app.state.service.check_restyle_method(method)  # before the upload
    data = await read_upload(request)
    lanes = request.app.state.lanes
    if method != RESTYLE_METHOD:
        arguments = (data, method, digit, source_digit, format, scale)
        answer = await lanes.quick(translate_answer, *arguments)
        return png_response(answer) if format == "png" else answer
    digits = list(range(10)) if digit is None else [digit]
    deadline = lanes.deadline()  # one time limit for both steps
    source = await lanes.quick(read_source, data, source_digit, deadline=deadline)
    arguments = (source, digits, seed, format, scale)
    answer = await lanes.restyle(restyle_answer, *arguments, deadline=deadline)
    return png_response(answer) if format == "png" else answer


def translate_answer(
    service: DigitService, data: bytes, method, digit, source_digit, format, scale
):
    """A restyle by a translator `method`: PNG bytes (one row) or a JSON-ready dict."""
    image, inverted = prepare_upload(data)
    digits = None if digit is None else [digit]
    result = service.translate(image, method, digits, source_digit)
    if format == "png":
        return grid_png(result["images"], ncols=len(result["digits"]), scale=scale)
    classification = result["classification"]
    return {
        "method": method,
        "digits": result["digits"],
        "images": image_data_urls(result["images"], scale),
        "translators": result["translators"],
        "unreachable": result["unreachable"],
        "source_digit": result["source_digit"],
        "source": result["source"],
        "probabilities": None if classification is None else classification.probabilities,
        "reconstruction": image_data_urls(result["reconstruction"], scale)[0],
        "inverted": inverted,
    }


# --- the schema ------------------------------------------------------------------------------

DIGIT_PARAMETERS = ("digit", "from_digit", "to_digit", "source_digit")


def run_schema(app: FastAPI) -> dict:
    """The OpenAPI schema, cut to what the loaded run answers, so that every request the
    schema allows is one this server serves: no digits for an unconditional run, `from_digit`
    required for a conditional one, only the run's morph spaces, restyles only with a method
    (a conditional run with noise, or translator runs) and only the methods served, and
    classification only with a classifier."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        cut_to_run(schema["paths"], app.state.service)
        app.openapi_schema = schema
    return app.openapi_schema


def cut_to_run(paths: dict, service: DigitService) -> None:
    if not service.restyle_methods:
        paths.pop("/api/restyle", None)
    if service.classifier is None:
        paths.pop("/api/classify", None)
    for path, operations in paths.items():
        in_restyle = path == "/api/restyle"
        # Translators turn digits into digits whatever the run: a restyle keeps its digits.
        with_digits = service.conditional or in_restyle
        for operation in operations.values():
            operation["parameters"] = [
                _parameter_for_run(parameter, service, in_restyle)
                for parameter in operation.get("parameters", [])
                if with_digits or parameter["name"] not in DIGIT_PARAMETERS
            ]


def _parameter_for_run(parameter: dict, service: DigitService, in_restyle: bool) -> dict:
    name = parameter["name"]
    parameter = {**parameter, "schema": without_null(parameter["schema"])}
    if name == "from_digit" and service.conditional:
        parameter = {**parameter, "required": True}
    if name == "source_digit" and in_restyle and service.classifier is None:
        parameter = {**parameter, "required": True}  # nothing else can read the upload
    if name == "space":
        spaces = service.interpolation_spaces
        parameter = {**parameter, "schema": {"enum": spaces, "type": "string"}}
    if name == "method" and in_restyle:
        methods = service.restyle_methods
        parameter = {**parameter, "schema": {"enum": methods, "type": "string"}}
        if RESTYLE_METHOD not in methods:  # the default needs a generator that can restyle
            parameter["required"] = True
    return parameter


def without_null(schema: dict) -> dict:
    """A query parameter's schema without FastAPI's `null` choice: a query string cannot send
    null (`digit=null` is the text "null"); leaving the parameter out is how to say None."""
    choices = schema.get("anyOf")
    if not choices:
        return schema
    kept = [choice for choice in choices if choice.get("type") != "null"]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
