"""Kill -9 and full-disk trials of zspace training (used by bench_reliability.py and by the
integration tests, which run short versions).

Each trial drives the real `zspace train-ae` command in subprocesses on a small MLP
autoencoder, so that it exercises what a user's kill or full disk would hit: the atomic
writes, the resume, and the one-line errors.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

# Small enough that a process spends most of its life inside the epochs and their writes.
TRAIN_FLAGS = [
    "--preset", "mlp", "--latent-dim", "8", "--limit", "1000", "--batch-size", "100",
    "--seed", "0", "--device", "cpu", "--no-progress",
]  # fmt: skip


def train_command(out: Path, epochs: int, resume: bool = False) -> list[str]:
    command = [sys.executable, "-m", "zspace", "train-ae", *TRAIN_FLAGS]
    command += ["--epochs", str(epochs), "--out", str(out)]
    return command + (["--resume"] if resume else [])


def _environment() -> dict:
    # One torch thread: the trials must not fight over the cores with what they measure.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train(out: Path, epochs: int, resume: bool = False, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        train_command(out, epochs, resume),
        capture_output=True,
        text=True,
        env=_environment(),
        **kwargs,
    )


def same_weights(a: Path, b: Path) -> bool:
    first, second = load_file(str(a)), load_file(str(b))
    return first.keys() == second.keys() and all(first[k].equal(second[k]) for k in first)


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def metric_epochs(run: Path) -> list[int]:
    return [record["epoch"] for record in _metrics(run)]


def kill_loop(
    work: Path, cycles: int = 50, epochs: int | None = None, seed: int = 0, log=print
) -> dict:
    """Kill `zspace train-ae --resume` with SIGKILL at random moments, `cycles` times, then let
    it finish; compare with an uninterrupted run of `epochs` (default 2 * cycles + 10).

    Each kill comes a random 0 to 3 epochs' time after the start-up the uninterrupted run
    measured, so kills land late in start-up, inside epochs and inside their writes, and the
    run makes about 1.5 epochs of progress per cycle."""
    epochs = epochs or 2 * cycles + 10
    work.mkdir(parents=True, exist_ok=True)
    reference, victim = work / "uninterrupted", work / "killed"
    started = time.perf_counter()
    finished_at = _train_timing_epochs(reference, epochs)
    reference_seconds = time.perf_counter() - started
    per_epoch = (finished_at[-1] - finished_at[0]) / max(1, len(finished_at) - 1)
    startup = max(0.5, finished_at[0] - per_epoch)
    rng = random.Random(seed)
    kills, finished_early = 0, 0
    for cycle in range(cycles):
        process = subprocess.Popen(
            train_command(victim, epochs, resume=cycle > 0),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        try:
            process.wait(timeout=startup + rng.uniform(0.0, 3.0) * per_epoch)
            finished_early += 1  # it finished (or failed) before the kill came
            if process.returncode != 0:
                raise RuntimeError(f"cycle {cycle}: {process.stderr.read().strip()}")
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
        if cycle % 10 == 9:
            log(f"  kill loop: {cycle + 1}/{cycles} cycles, {kills} kills")
    final = train(victim, epochs, resume=True)
    if final.returncode != 0:
        raise RuntimeError(f"the final resume failed: {final.stderr.strip()}")
    lines = metric_epochs(victim)
    return {
        "cycles": cycles,
        "kills": kills,
        "cycles_that_finished_before_the_kill": finished_early,
        "epochs": epochs,
        "metric_lines_kept": lines == list(range(1, epochs + 1)),
        "metric_epochs": len(lines),
        "weights_identical": same_weights(
            reference / "model.safetensors", victim / "model.safetensors"
        ),
        "stale_temporaries": sorted(p.name for p in victim.rglob(".*.tmp")),
        "uninterrupted_seconds": round(reference_seconds, 1),
        "start_up_seconds": round(startup, 1),
        "seconds_per_epoch": round(per_epoch, 2),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _train_timing_epochs(out: Path, epochs: int) -> list[float]:
    """Train uninterrupted, noting when each epoch's metric line appeared (seconds since the
    process started): what a kill's timing is drawn from."""
    began = time.perf_counter()
    process = subprocess.Popen(
        train_command(out, epochs), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=_environment(),
    )  # fmt: skip
    seen: list[float] = []
    while process.poll() is None:
        metrics = out / "metrics.jsonl"
        lines = metrics.read_text().count("\n") if metrics.is_file() else 0
        seen += [time.perf_counter() - began] * (lines - len(seen))
        time.sleep(0.02)
    if process.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {process.stderr.read().strip()}")
    return seen or [time.perf_counter() - began]


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _config_without_epochs(run: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    config["training"].pop("epochs")
    return config


def full_disk(work: Path, epochs: int = 2, limit_bytes: int = 64_000) -> dict:
    """Resume a run under a file-size limit (what a full disk does to a write): it must fail in
    one line, keep every file it had, and a later resume must end where an uninterrupted run
    ends."""
    work.mkdir(parents=True, exist_ok=True)
    run, reference = work / "run", work / "uninterrupted"
    # The reference extends a run the same way, without a full disk: a run extended from 2 to
    # 4 epochs differs from a 4-epoch run (the learning-rate schedule spans the epochs).
    for folder, count, resume in ((run, epochs, False), (reference, epochs, False),
                                  (reference, epochs + 2, True)):  # fmt: skip
        done = train(folder, count, resume=resume)
        if done.returncode != 0:
            raise RuntimeError(f"training {folder.name} failed: {done.stderr.strip()}")
    before = _digests(run)
    config_before = _config_without_epochs(run)

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    refused = train(run, epochs + 2, resume=True, preexec_fn=limit_file_size)
    after = _digests(run)
    changed = sorted(name for name in before if after.get(name) != before[name])
    # The metric line of an epoch whose checkpoint could not be written is the one change a
    # resume may make (and the next resume drops it): see RunDir.keep_metrics_through.
    lost = [name for name in changed if name not in ("metrics.jsonl", "config.json")]
    if _config_without_epochs(run) != config_before:  # a resume may only raise the epochs
        lost.append("config.json")
    lost += sorted(set(before) - set(after))
    kept_lines = metric_epochs(run)[:epochs] == list(range(1, epochs + 1))
    error_lines = refused.stderr.strip().splitlines()
    resumed = train(run, epochs + 2, resume=True)
    return {
        "file_size_limit_bytes": limit_bytes,
        "exit_code": refused.returncode,
        "stderr": refused.stderr.strip(),
        "one_line": len(error_lines) == 1 and "Traceback" not in refused.stderr,
        "files_lost_or_changed": lost,
        "new_files": sorted(set(after) - set(before)),
        "metric_lines_kept": kept_lines,
        "later_resume_exit_code": resumed.returncode,
        "later_resume_identical": resumed.returncode == 0
        and same_weights(reference / "model.safetensors", run / "model.safetensors")
        and metric_epochs(run) == list(range(1, epochs + 3)),
    }
