"""`zspace data`: list the datasets and their local state, fetch one, or verify one."""

from __future__ import annotations

import argparse

from zspace.data import DATASETS, dataset_status, fetch_dataset
from zspace.errors import DataError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list, fetch or verify datasets",
        description="List the datasets with their folder and status; --fetch downloads one, "
        "--verify checks the checksums of its local files.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--fetch", metavar="NAME", help="download a dataset (and verify it)")
    action.add_argument("--verify", metavar="NAME", help="check the checksums of a dataset's files")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding the datasets (default: $ZSPACE_DATA, else ~/.cache/zspace)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.fetch:
        fetch_dataset(args.fetch, args.data_dir, progress=True, verify=True)
        return _verify(args.fetch, args.data_dir)
    if args.verify:
        return _verify(args.verify, args.data_dir)
    _list(args.data_dir)
    return 0


def _list(data_dir: str | None) -> None:
    """One block per dataset: name, state and folder, then the description."""
    for name in DATASETS:
        status = dataset_status(name, data_dir)
        print(f"{name:<14} {status['state']:<9} {status['folder']}")
        print(f"{'':<14} {status['description']}")


def _verify(name: str, data_dir: str | None) -> int:
    """Checksum every file, print one line per file; DataError if any is missing or corrupt."""
    status = dataset_status(name, data_dir, verify=True)
    for file_name, state in status["files"].items():
        problem = status["problems"].get(file_name)
        print(f"{file_name:<28} {state}" + (f" ({problem})" if problem else ""))
    bad = [f for f, state in status["files"].items() if state != "verified"]
    if bad:
        raise DataError(
            f"{status['name']}: {len(bad)} of {len(status['files'])} files missing or corrupt in "
            f"{status['folder']}; run `zspace data --fetch {status['name']}`"
        )
    print(f"{status['name']}: all {len(status['files'])} files verified in {status['folder']}")
    return 0
