"""Dataset status, the registry, and fetch errors that need no server."""

from __future__ import annotations

import re

from zspace.cli import main as cli_main
from zspace.data import (
    DATASETS,
    dataset_status,
)


def _folder_files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_status_of_a_missing_dataset(tmp_path):
    status = dataset_status("kmnist", tmp_path)
    assert status["state"] == "missing" and status["folder"] == tmp_path / "kmnist"
    assert set(status["files"].values()) == {"missing"}


def test_registry_entries():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "kmnist"}
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.description
        assert [f.name for f in spec.files.values()] == [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ]
        assert all(re.fullmatch("[0-9a-f]{32}", f.md5) for f in spec.files.values())
        assert spec.mirrors and all(m.startswith(("http://", "https://")) for m in spec.mirrors)
    assert len(DATASETS["mnist"].mirrors) >= 2
    assert DATASETS["mnist"].files["train_images"].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert all(f.sha256_raw for f in DATASETS["mnist"].files.values())
    assert hash(DATASETS["mnist"])  # usable as a cache key despite the files dict


def test_cli_fetch_unknown_dataset(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ["zspace.cli.data_cmd"])
    assert cli_main.main(["data", "--fetch", "nope", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown dataset 'nope'" in err
    assert _folder_files(tmp_path) == []
