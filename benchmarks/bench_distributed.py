"""Time per epoch of `zspace train-ae` with 1 process and under torchrun with 2 processes.

    python benchmarks/bench_distributed.py [--epochs 1] [--preset conv] [--json out.json]

On a 2-core CPU machine little gain is expected (each process gets one core and gloo adds an
all-reduce per step); the point of the test suite is correctness, this script shows the cost.
On a machine with GPUs, pass --device cuda and --processes N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def train(out: Path, processes: int, args) -> list[dict]:
    command = [sys.executable, "-m"]
    if processes > 1:
        command += ["torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m"]
    command += [
        "zspace",
        "train-ae",
        "--preset",
        args.preset,
        "--epochs",
        str(args.epochs),
        "--device",
        args.device,
        "--out",
        str(out),
        "--no-progress",
    ]
    env = dict(os.environ)
    if processes > 1 and args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // processes))
    subprocess.run(command, check=True, env=env)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--preset", default="conv")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as folder:
        for processes in (1, args.processes):
            metrics = train(Path(folder) / f"p{processes}", processes, args)
            figures[f"{processes} process(es)"] = {
                "seconds_per_epoch": round(sum(m["seconds"] for m in metrics) / len(metrics), 2),
                "test_mse": round(metrics[-1]["test_mse"], 5),
            }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
