"""`zspace export RUN --format onnx --out DIR`: a run's networks as ONNX graphs + export.json."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    export = subparsers.add_parser(
        "export", help="write a run's networks as ONNX graphs for use outside Python"
    )
    export.add_argument(
        "run_dir", metavar="RUN", help="autoencoder, latent-gan, pixel-gan or classifier run"
    )
    export.add_argument("--format", default="onnx", help="onnx (the default and only format)")
    export.add_argument(
        "--out",
        required=True,
        help="folder to write (new, empty, or written by an earlier zspace export)",
    )
    export.set_defaults(run=run_export)


def run_export(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.export import export_run

    manifest = export_run(args.run_dir, args.out, format=args.format)
    run = manifest["run"]
    mode = "conditional" if run["conditional"] else "unconditional"
    kind = run["kind"] if run["kind"] in ("autoencoder", "classifier") else f"{mode} {run['kind']}"
    parts = []
    for graph in manifest["graphs"].values():
        check = graph["check"]
        parts.append(
            f"{graph['file']} ({graph['exporter']} exporter; ONNX Runtime within "
            f"{check['max_abs_error']:.1e} of PyTorch on {check['rows']} inputs)"
        )
    print(f"zspace export: {kind} run -> {Path(args.out)}: {', '.join(parts)}, export.json")
    return 0
