"""`zspace cluster` end to end on a subset, through the CLI."""

from __future__ import annotations

import json

import numpy as np

from zspace.cli.main import main


def cluster_args(ae_run, mnist_dir, out, *extra):
    return ["cluster", "--ae", str(ae_run), "--out", str(out), "--limit", "2000",
            "--test-limit", "500", "--data-dir", str(mnist_dir), "--device", "cpu", *extra]  # fmt: skip


def test_cluster_cli_writes_its_evaluation(small_ae_run, mnist_dir, tmp_path, capsys):
    out = tmp_path / "clusters"
    assert main(cluster_args(small_ae_run, mnist_dir, out)) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "N2D" in printed
    summary = json.loads((out / "cluster.json").read_text())
    assert {"features", "clusters", "train", "test", "reference", "seconds", "mapping"} <= set(
        summary
    )
    assert summary["features"] == "hog-pca" and summary["clusters"] == 10
    assert summary["reference"] == {"N2D": 0.979}
    # Far above chance (about 0.11 for 10 matched clusters) even on 2,000 images.
    assert summary["train"]["accuracy"] > 0.8 and summary["test"]["accuracy"] > 0.8
    assert 0.6 < summary["train"]["nmi"] <= 1 and 0.6 < summary["test"]["nmi"] <= 1
    assert sorted(summary["mapping"].values()) == list(range(10))
    with np.load(out / "cluster_assignments.npz") as saved:
        train = saved["train"]
        assert train.shape == (2000,) and saved["test"].shape == (500,) and train.max() < 10
    assert (out / "clusters.png").stat().st_size > 0
    # A rerun writes over its own output, and the same seed gives the same clusters.
    assert main(cluster_args(small_ae_run, mnist_dir, out)) == 0
    with np.load(out / "cluster_assignments.npz") as saved:
        assert np.array_equal(saved["train"], train)
    assert main(cluster_args(small_ae_run, mnist_dir, out, "--features", "encoder")) == 0
    again = json.loads((out / "cluster.json").read_text())
    assert again["features"] == "encoder" and again["train"]["accuracy"] > 0.4


def test_a_foreign_folder_and_unknown_features_are_refused_in_one_line(
    small_ae_run, mnist_dir, tmp_path, capsys
):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not zspace's")
    assert main(cluster_args(small_ae_run, mnist_dir, foreign)) != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "notes.txt" in error
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert main(cluster_args(small_ae_run, mnist_dir, tmp_path / "new", "--features", "sift")) != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "sift" in error and "hog-pca" in error
    assert not (tmp_path / "new").exists()
