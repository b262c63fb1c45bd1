"""`zspace serve RUN`: the web page and API for a sampler run (above all a conditional GAN)."""

from __future__ import annotations

import ipaddress
import json
import os

from zspace.cli.common import positive_float, positive_int
from zspace.errors import ZspaceError

# zspace.web.server.ServerLimits' default, repeated so that --help needs no web extra.
DEFAULT_MAX_CONNECTIONS = 2048


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve", help="serve the digits page and API over HTTP")
    serve.add_argument(
        "run_dir", metavar="RUN", help="sampler run folder (latent-gan, pixel-gan or gmm-baseline)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host header to answer besides localhost, 127.0.0.1 and [::1] (repeatable; for "
        "a proxy or a name in front of the server; '*' answers any). On a loopback --host "
        "other Hosts are refused, which keeps web pages from reaching the server through DNS "
        "rebinding; on other addresses every Host is answered unless this is given",
    )
    serve.add_argument(
        "--max-connections",
        type=positive_int,
        default=DEFAULT_MAX_CONNECTIONS,
        help=f"open connections at most (default {DEFAULT_MAX_CONNECTIONS}); beyond it "
        "the connection that has waited longest on its client is closed",
    )
    serve.add_argument(
        "--classifier",
        default=None,
        metavar="RUN",
        help="classifier run for /api/classify (default: the one RUN names, if any)",
    )
    serve.add_argument(
        "--translators",
        default=None,
        metavar="DIR",
        help="a folder of translator runs (zspace train-translator; up to two levels down) "
        "that /api/restyle offers as method=NAME (default: those in RUN and, for a stage of a "
        "zspace run study, in the study's translation folder)",
    )
    serve.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    serve.add_argument(
        "--engine",
        default="pytorch",
        help="what draws the digits: pytorch (default) or onnxruntime (a GAN run's exported "
        "sampler graph, faster on CPU; needs zspace[export])",
    )
    serve.add_argument(
        "--timeout", type=positive_float, default=30.0, help="seconds per request (default 30)"
    )
    serve.add_argument(
        "--inference-threads",
        type=positive_int,
        default=1,
        help="threads for the quick calls (generate, interpolate, classify; default 1, each "
        "with one torch thread)",
    )
    serve.add_argument(
        "--restyle-workers",
        type=positive_int,
        default=1,
        help="worker processes for restyles, which run apart from the quick calls (default 1)",
    )
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes sharing the port, each with its own copy of the models "
        "(default 1; one process serves about one core's worth of requests)",
    )
    serve.set_defaults(run=run_serve)


def run_serve(args) -> int:
    try:
        # Imported when this command runs: the web extra is optional, and the other commands
        # and --help do not load it.
        import uvicorn

        from zspace.web.app import LOOPBACK_HOSTS, SETTINGS_VARIABLE, create_app
        from zspace.web.server import ServerLimits, raise_file_limit, uvicorn_options
    except ImportError as error:
        raise ZspaceError(
            f"the web server needs the web extra ({error.name} is missing): "
            "pip install 'zspace[web]'"
        ) from None
    if not 0 <= args.port <= 65535:
        raise ZspaceError(f"--port must be in 0..65535, got {args.port}")
    settings = {
        "run_dir": str(args.run_dir),
        "classifier_dir": args.classifier,
        "translators_dir": args.translators,
        "device": args.device,
        "inference_timeout": args.timeout,
        "inference_threads": args.inference_threads,
        "restyle_workers": args.restyle_workers,
        "engine": args.engine,
        "allowed_hosts": allowed_hosts(args.host, args.allowed_host, LOOPBACK_HOSTS),
    }
    app = create_app(**settings)  # with several workers: only to report a bad run here, once
    limits = ServerLimits(max_connections=raise_file_limit(args.max_connections))
    options = {"host": args.host, "port": args.port, "log_level": "warning"}
    options.update(uvicorn_options(limits))
    print(f"zspace serve: {args.run_dir} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    _note_slow_restyles(app.state.service, args.run_dir)
    _note_translators(app.state.service)
    if args.workers == 1:
        uvicorn.run(app, **options)
        return 0
    del app
    os.environ[SETTINGS_VARIABLE] = json.dumps(settings)
    uvicorn.run(
        "zspace.web.app:app_from_environment", factory=True, workers=args.workers, **options
    )
    return 0


def allowed_hosts(host: str, extra: list[str], loopback: tuple[str, ...]) -> list[str] | None:
    """The Host header values to answer: on a loopback address its names plus `extra`;
    elsewhere only `extra` when given, else any (None)."""
    if is_loopback(host):
        return [*loopback, *extra]
    return [*loopback, *extra] if extra else None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _note_slow_restyles(service, run_dir) -> None:
    """Say so when restyles apply but the run has no noise inverter to make them fast."""
    generator = service.generator
    exact = hasattr(generator, "invert_codes")  # a flow inverts by its ODE: fast without one
    if service.can_restyle and not exact and getattr(generator, "inverter", None) is None:
        print(
            "zspace serve: this run has no noise inverter, so restyles search with Adam alone "
            f"(about 10 times slower); zspace fit-inverter {run_dir} fits one"
        )


def _note_translators(service) -> None:
    """Name the restyle methods the translator runs found add (see zspace.web.translators)."""
    translators = service.translators
    if len(translators):
        print(
            f"zspace serve: {len(translators)} translator run(s) found; /api/restyle methods: "
            f"{', '.join(service.restyle_methods)}"
        )
