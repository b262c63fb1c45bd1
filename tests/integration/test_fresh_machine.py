"""A machine that has never seen zspace: an empty HOME, no ZSPACE_DATA, and a local mirror
standing in for the internet. The README's setup fetches MNIST once; then a study runs and the
test command's data look-up finds MNIST where the fetch put it."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

TINY_STUDY = """
[data]
limit = 2000
[autoencoder]
epochs = 1
[presets]
names = []
[fewshot]
draws = 2
label_sweep = [20]
sweep_draws = 2
test_limit = 500
[gan]
epochs = 1
inverter_steps = 20
[flow]
time_budget = 0
epochs = 1
distill_pairs = 500
distill_epochs = 1
[interpolation]
pairs = 1
steps = 4
[evaluation]
samples_per_digit = 20
classifier_epochs = 1
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(mnist_dir):
    """http://127.0.0.1:PORT/ serving mnist/ from the offline copy, like an official mirror."""
    handler = functools.partial(_QuietHandler, directory=str(mnist_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _zspace(args: list[str], env: dict, cwd: Path, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "zspace", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_fetch_then_study_then_the_test_data_look_up(mirror, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ZSPACE_DATA", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), ZSPACE_MIRROR=mirror, OMP_NUM_THREADS="2")

    fetched = _zspace(["data", "--fetch", "mnist"], env, tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    cache = home / ".cache" / "zspace" / "mnist"
    assert sorted(p.name for p in cache.glob("*.gz")) == sorted(
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
        + ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    )

    (tmp_path / "tiny.toml").write_text(TINY_STUDY)
    study = _zspace(
        ["run", "--config", "tiny.toml", "--out", "study", "--no-progress"], env, tmp_path
    )
    assert study.returncode == 0, study.stderr[-2000:]
    assert (tmp_path / "study" / "report.md").is_file()

    # The README's test command finds MNIST where the fetch put it: no ZSPACE_DATA needed.
    repo = Path(__file__).resolve().parents[2]
    look_up = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(repo),
            str(repo / "tests/integration/test_data_load.py"),
            "-k",
            "shapes_dtypes_and_ranges",
        ],
        env=env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert look_up.returncode == 0, look_up.stdout[-2000:]
    assert " passed" in look_up.stdout and "skipped" not in look_up.stdout
