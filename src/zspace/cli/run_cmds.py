"""`zspace run` (the whole study) and `zspace runs` (list run folders)."""

from __future__ import annotations

import json

from zspace.cli.common import add_data_arguments

# The commands import zspace.pipeline (torch and all) when run, so that `zspace --help` stays light.


def register(subparsers) -> None:
    run = subparsers.add_parser("run", help="the whole study in one command, with a report")
    run.add_argument("--config", default=None, help="TOML file with settings (see --print-config)")
    run.add_argument("--out", default=None, help="run folder (default runs/study or runs/quick)")
    run.add_argument("--quick", action="store_true", help="subsets and few epochs (about a minute)")
    run.add_argument(
        "--full",
        action="store_true",
        help="also the reference GAN presets and the pixel-space cGAN (with --quick: on its "
        "subsets)",
    )
    run.add_argument("--print-config", action="store_true", help="show the effective config")
    run.add_argument(
        "--force", action="append", default=[], metavar="STAGE", help="redo this stage"
    )
    add_data_arguments(run, dataset=False)
    run.add_argument("--device", default="auto")
    run.add_argument("--no-progress", action="store_true")
    run.set_defaults(run=run_run)

    runs = subparsers.add_parser("runs", help="list run folders with their key figures")
    runs.add_argument("root", nargs="?", default="runs", help="folder holding runs (runs)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(run=run_runs)


def run_run(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.pipeline.config import config_to_toml, load_study_config
    from zspace.pipeline.runner import run_study

    config = load_study_config(args.config, quick=args.quick, full=args.full)
    if args.print_config:
        print(config_to_toml(config))
        return 0
    out = args.out or ("runs/quick" if args.quick else "runs/study")
    report = run_study(
        config,
        out,
        force=tuple(args.force),
        data_dir=args.data_dir,
        device=args.device,
        progress=not args.no_progress,
    )
    print(f"report: {report} (and {report.with_suffix('.html')})")
    return 0


def run_runs(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.pipeline.runner import list_runs

    entries = list_runs(args.root)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no runs under {args.root}")
        return 0
    width = max(len(e["path"]) for e in entries)
    for entry in entries:
        figures = ", ".join(f"{k}={v}" for k, v in entry["figures"].items())
        print(f"{entry['path']:<{width}}  {entry['kind']:<14} {figures}")
    return 0
