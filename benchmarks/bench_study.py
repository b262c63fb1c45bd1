"""The whole study's targets: wall clock and peak memory of `zspace run`.

    python benchmarks/bench_study.py [--quick] [--full] [--out runs/bench_study] [--json out.json]

Runs `zspace run` (a fresh run folder, so no stage is skipped) in a child process and reports
its wall-clock time, its peak resident memory (the child's maximum RSS) and each stage's
seconds from the run's stage records. Targets on the project's 2-core machine: the default
run <= 8 minutes and <= 2 GB; `--quick` <= 60 s; `--full` (the stages the default run leaves
out as well) has no target. Run it alone on the machine. The evaluation
classifier is cached across runs (~/.cache/zspace/models or $ZSPACE_CACHE); a first run
anywhere also trains it, which this benchmark reports as its own stage.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {"default": {"seconds": 480, "peak_mb": 2048}, "quick": {"seconds": 60}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time `zspace run --quick`")
    parser.add_argument("--full", action="store_true", help="time `zspace run --full`")
    parser.add_argument("--out", default=None, help="run folder (replaced; default a temp name)")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()

    mode = ("quick" if args.quick else "default") + ("-full" if args.full else "")
    out = Path(args.out or f"runs/bench_study_{mode}")
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "zspace", "run", "--out", str(out), "--no-progress"]
    command += ["--quick"] * args.quick + ["--full"] * args.full
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    # ru_maxrss of RUSAGE_CHILDREN: the largest RSS of any finished child, in KiB on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stages = {
        path.stem: json.loads(path.read_text())["seconds"]
        for path in sorted((out / "stages").glob("*.json"))
    }
    targets = TARGETS.get(mode, {})
    result = {
        "mode": mode,
        "seconds": round(seconds, 1),
        "peak_mb": round(peak_mb),
        "stages": stages,
        "targets": targets,
        "checks": {
            **({"seconds": seconds <= targets["seconds"]} if "seconds" in targets else {}),
            **({"peak_mb": peak_mb <= targets["peak_mb"]} if "peak_mb" in targets else {}),
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
