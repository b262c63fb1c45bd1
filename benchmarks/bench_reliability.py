"""Does zspace keep a user's data when things go wrong? Four trials, each against a target:

    ZSPACE_DATA=../shared/data python benchmarks/bench_reliability.py [--only kill,disk,soak,fuzz]
        [--cycles 50] [--slow-sockets 1000] [--examples 10000] [--json out.json]

- kill: SIGKILL `zspace train-ae` at random moments `--cycles` times, resuming each time;
  every metric line kept and weights bit-identical to an uninterrupted run
  (reliability_training.py).
- disk: a resume under a file-size limit (a full disk) fails in one line and loses nothing;
  the next resume ends as an uninterrupted run does (reliability_training.py).
- soak: `zspace serve` under slowloris sockets and stalled uploads plus normal traffic;
  normal traffic's p99 within 2x of an idle server's, RSS back within 100 MB, no 5xx
  (reliability_soak.py).
- fuzz: `--examples` generated inputs per parser (IDX, .npz, configs, uploads); no exception
  other than a one-line ZspaceError (reliability_fuzz.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import reliability_training

TRIALS = ("kill", "disk", "soak", "fuzz")


def _soak(args, work: Path) -> dict:
    import reliability_soak  # imported here: only this trial needs the web extra

    run = args.run or _tiny_cgan(work / "soak-run")
    return reliability_soak.run_soak(
        str(run), slow_sockets=args.slow_sockets, seconds=args.soak_seconds
    )


def _tiny_cgan(out: Path) -> Path:
    """A small conditional latent GAN to serve when no --run is given (about a minute)."""
    import subprocess

    ae = out.parent / "soak-ae"
    for command in (
        ["train-ae", "--preset", "mlp", "--limit", "3000", "--epochs", "2", "--out", str(ae)],
        ["train-gan", "--ae", str(ae), "--conditional", "--limit", "3000", "--epochs", "2",
         "--out", str(out)],
    ):  # fmt: skip
        subprocess.run([sys.executable, "-m", "zspace", *command, "--no-progress"], check=True)
    return out


def _fuzz(args, work: Path) -> dict:
    import reliability_fuzz

    return reliability_fuzz.run_fuzz(examples_per_parser=args.examples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(TRIALS), help="trials to run (comma-separated)")
    parser.add_argument("--cycles", type=int, default=50, help="kill -9 cycles (50)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs of the killed run (2 x cycles + 10)"
    )
    parser.add_argument("--slow-sockets", type=int, default=1000)
    parser.add_argument("--soak-seconds", type=float, default=30.0)
    parser.add_argument("--run", default=None, help="sampler run to serve in the soak")
    parser.add_argument("--examples", type=int, default=10_000, help="fuzz inputs per parser")
    parser.add_argument("--work", default=None, help="folder for the trials' runs (a temp dir)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    trials = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(trials) - set(TRIALS))
    if unknown:
        parser.error(f"unknown trials {unknown}; choose from {', '.join(TRIALS)}")
    work = Path(args.work or tempfile.mkdtemp(prefix="zspace-reliability-"))
    results = {}
    for name in trials:
        print(f"[{name}] running ...", flush=True)
        began = time.perf_counter()
        if name == "kill":
            result = reliability_training.kill_loop(
                work / "kill", cycles=args.cycles, epochs=args.epochs
            )
        elif name == "disk":
            result = reliability_training.full_disk(work / "disk")
        elif name == "soak":
            result = _soak(args, work)
        else:
            result = _fuzz(args, work)
        result["trial_seconds"] = round(time.perf_counter() - began, 1)
        results[name] = result
        print(json.dumps({name: result}, indent=2), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
