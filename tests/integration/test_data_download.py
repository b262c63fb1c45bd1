"""Fetching from mirrors against a local HTTP server (never the network), checksums, status."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import re
import shutil
import socket
import threading

import pytest

from zspace.cli import main as cli_main
from zspace.data import (
    DATASETS,
    DatasetSpec,
    FileSpec,
    dataset_status,
    fetch_dataset,
    load_dataset,
    registry,
)
from zspace.data.download import MARKER_NAME, checksum_problem
from zspace.errors import DataError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def server(mnist_dir, tmp_path_factory):
    """Serves /good/ (the shared MNIST files), /corrupt/ (wrong bytes, same names); anything
    else is a 404. Yields the base URL."""
    www = tmp_path_factory.mktemp("www")
    (www / "good").symlink_to(mnist_dir / "mnist", target_is_directory=True)
    (www / "corrupt").mkdir()
    for file_spec in DATASETS["mnist"].files.values():
        (www / "corrupt" / file_spec.name).write_bytes(b"<html>this is not the file</html>")
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def closed_port_url():
    """A URL on a port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture(scope="module")
def local_files(mnist_dir):
    """MNIST FileSpecs whose md5 is that of the shared (re-gzipped) copies, as if official."""
    files = {}
    for role, file_spec in DATASETS["mnist"].files.items():
        md5 = hashlib.md5((mnist_dir / "mnist" / file_spec.name).read_bytes()).hexdigest()
        files[role] = dataclasses.replace(file_spec, md5=md5)
    return files


def _spec(files, *mirrors):
    return DatasetSpec("mnist", files, tuple(mirrors), "MNIST served locally")


def _folder_files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_skips_bad_mirrors_and_uses_the_good_one(
    server, closed_port_url, local_files, tmp_path
):
    spec = _spec(
        local_files, closed_port_url, f"{server}/missing/", f"{server}/corrupt/", f"{server}/good/"
    )
    folder = fetch_dataset(spec, tmp_path, progress=False)
    assert folder == tmp_path / "mnist"
    names = sorted(f.name for f in spec.files.values())
    assert _folder_files(folder) == sorted([*names, MARKER_NAME])  # no .part files left
    assert all((folder / name).stat().st_mode & 0o777 == 0o644 for name in names)
    assert dataset_status("mnist", tmp_path)["state"] == "verified"
    data = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert data.train_images.shape == (60000, 28, 28)


def test_all_mirrors_bad_raises_and_leaves_nothing(server, closed_port_url, local_files, tmp_path):
    spec = _spec(local_files, closed_port_url, f"{server}/missing/", f"{server}/corrupt/")
    with pytest.raises(DataError) as info:
        fetch_dataset(spec, tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot download train-images-idx3-ubyte.gz: ")
    assert closed_port_url in message and re.search("refused", message, re.I)
    assert "HTTP 404" in message
    assert "checksum mismatch" in message
    assert _folder_files(tmp_path / "mnist") == []


def test_download_must_match_the_official_md5(server, tmp_path):
    # The shared copies have the official *content* but not the official gzip bytes: a download
    # is judged by the compressed md5, so it is rejected. Same for another dataset's entry.
    for name in ("mnist", "fashion-mnist"):
        spec = dataclasses.replace(DATASETS[name], mirrors=(f"{server}/good/",))
        with pytest.raises(DataError, match="checksum mismatch .md5"):
            fetch_dataset(spec, tmp_path, progress=False)
        assert _folder_files(tmp_path / name) == []


def test_timeout_moves_on(local_files, tmp_path):
    # A server that accepts connections but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataError, match="timed out"):
            fetch_dataset(_spec(local_files, url), tmp_path, progress=False, timeout=0.2)


def test_present_files_are_kept_unless_verify_finds_them_corrupt(server, local_files, tmp_path):
    spec = _spec(local_files, f"{server}/good/")
    folder = tmp_path / "mnist"
    folder.mkdir()
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(b"garbage")
    fetch_dataset(spec, tmp_path, progress=False)
    assert labels.read_bytes() == b"garbage"
    assert dataset_status(spec, tmp_path)["files"][labels.name] == "present"
    status = dataset_status(spec, tmp_path, verify=True)
    assert status["state"] == "corrupt" and labels.name in status["problems"]

    fetch_dataset(spec, tmp_path, progress=False, verify=True)
    assert checksum_problem(labels, spec.files["test_labels"]) is None
    assert dataset_status(spec, tmp_path)["state"] == "verified"


def test_checksum_problem_local_and_downloaded(mnist_dir, tmp_path):
    spec = DATASETS["mnist"].files["train_labels"]
    original = mnist_dir / "mnist" / spec.name
    # A local copy is judged by the content's sha256, whatever its gzip wrapper.
    assert checksum_problem(original, spec) is None
    assert "md5" in checksum_problem(original, spec, downloaded=True)
    damaged = tmp_path / spec.name
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert checksum_problem(damaged, spec) is not None
    # Without a known sha256, md5 decides.
    md5_only = FileSpec(spec.name, hashlib.md5(bytes(data)).hexdigest())
    assert checksum_problem(damaged, md5_only) is None


def test_load_dataset_downloads_missing_files(server, local_files, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.DATASETS, "mnist", _spec(local_files, f"{server}/good/"))
    data = load_dataset("mnist", data_dir=tmp_path, limit=10)
    assert data.train_images.shape == (10, 28, 28)
    assert dataset_status("mnist", tmp_path)["state"] == "verified"


def test_cli_fetch(server, local_files, mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ["zspace.cli.data_cmd"])
    monkeypatch.setitem(registry.DATASETS, "mnist", _spec(local_files, f"{server}/good/"))
    # Start with one file present so both paths run: verify what is there, download the rest.
    name = "train-labels-idx1-ubyte.gz"
    (tmp_path / "mnist").mkdir()
    shutil.copyfile(mnist_dir / "mnist" / name, tmp_path / "mnist" / name)
    assert cli_main.main(["data", "--fetch", "mnist", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "all 4 files verified" in out
    assert dataset_status("mnist", tmp_path)["state"] == "verified"
