"""`zspace serve RUN`: the web page and API for a sampler run (above all a conditional GAN)."""

from __future__ import annotations

import json
import os

from zspace.cli.common import positive_float, positive_int
from zspace.errors import ZspaceError


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve", help="serve the digits page and API over HTTP")
    serve.add_argument(
        "run_dir", metavar="RUN", help="sampler run folder (latent-gan, pixel-gan or gmm-baseline)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    serve.add_argument(
        "--classifier",
        default=None,
        metavar="RUN",
        help="classifier run for /api/classify (default: the one RUN names, if any)",
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
    # Imported here: the web extra is optional, and `zspace --help` stays light without it.
    try:
        # Imported when this command runs: the other commands and --help do not load it.
        import uvicorn

        # Imported when this command runs: the other commands and --help do not load it.
        from zspace.web.app import SETTINGS_VARIABLE, create_app
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
        "device": args.device,
        "inference_timeout": args.timeout,
        "inference_threads": args.inference_threads,
        "restyle_workers": args.restyle_workers,
        "engine": args.engine,
    }
    app = create_app(**settings)  # with several workers: only to report a bad run here, once
    print(f"zspace serve: {args.run_dir} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    _note_slow_restyles(app.state.service, args.run_dir)
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    del app
    os.environ[SETTINGS_VARIABLE] = json.dumps(settings)
    uvicorn.run(
        "zspace.web.app:app_from_environment",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level="warning",
    )
    return 0


def _note_slow_restyles(service, run_dir) -> None:
    """Say so when restyles apply but the run has no noise inverter to make them fast."""
    if service.can_restyle and getattr(service.generator, "inverter", None) is None:
        print(
            "zspace serve: this run has no noise inverter, so restyles search with Adam alone "
            f"(about 10 times slower); zspace fit-inverter {run_dir} fits one"
        )
