"""`zspace fewshot --curve`: the learning curve with adaptive draws, on a subset."""

from __future__ import annotations

import json

import pytest
import torch

from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.fewshot.curve import CURVE_HEAD, CurveConfig, curve_draws, curve_study, run_curve

ENCODER_CELL = ("encoder+mlp", CURVE_HEAD)
KNN_CELL = ("knn-codes", "-")


def _cli_curve(small_ae_run, mnist_dir, out) -> dict:
    """20 labels (balanced) and 25 (random); a target no 6 draws can reach, so every point
    grows from 3 draws to --max-draws 6."""
    args = ["fewshot", "--ae", str(small_ae_run), "--out", str(out), "--curve", "20,25",
            "--draws", "3", "--max-draws", "6", "--target-halfwidth", "0.01",
            "--methods", "knn-codes", "--limit", "2000", "--test-limit", "300", "--steps", "30",
            "--data-dir", str(mnist_dir), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    return json.loads((out / "fewshot.json").read_text())


def test_curve_cli_draws_up_to_the_cap_and_writes_its_outputs(small_ae_run, mnist_dir, tmp_path):
    out = tmp_path / "curve"
    summary = _cli_curve(small_ae_run, mnist_dir, out)
    points = {(p["method"], p["head"], p["labels"]): p for p in summary["curve"]}
    assert set(points) == {
        (*cell, count) for cell in (ENCODER_CELL, KNN_CELL) for count in (20, 25)
    }
    for point in points.values():
        assert point["draws"] == 6 and len(point["accuracies"]) == 6
        assert not point["target_reached"] and point["half_width"] > 0.0001
        low, high = point["ci95"]
        assert point["half_width"] == pytest.approx((high - low) / 2)
        assert 0 <= low <= point["mean"] <= high <= 1 and point["mean"] > 0.3
    assert points[(*KNN_CELL, 20)]["draw_rule"] == "2 per class"
    assert points[(*KNN_CELL, 25)]["draw_rule"] == "random"
    assert summary["config"]["max_draws"] == 6
    assert summary["config"]["target_halfwidth_points"] == 0.01
    assert summary["evaluated_on"] == "test" and summary["evaluation_images"] == 300
    table = (out / "table.md").read_text()
    assert (
        "| labels | draws | draw rule | encoder+mlp `(sigmoid,64)->(softmax,10)` | knn-codes |"
        in table
    )
    assert "| 25 | 6 | random |" in table and "†" in table
    assert (out / "learning_curve.png").stat().st_size > 0 and (out / "fewshot.csv").is_file()

    # A loose target stops at the first batch of 3 draws: the first 3 of the 6 above.
    config = CurveConfig(
        curve_study(
            str(small_ae_run),
            draws=3,
            methods=["knn-codes"],
            data_dir=str(mnist_dir),
            train_limit=2000,
            test_limit=300,
            device="cpu",
        ),
        labels=[20, 25],
        target_halfwidth_points=100,
        max_draws=6,
    )
    config.study.head_training.steps = 30
    short = run_curve(config, log=lambda line: None)
    for point in short["curve"]:
        assert point["draws"] == 3 and point["target_reached"]
        longer = points[(point["method"], point["head"], point["labels"])]["accuracies"][:3]
        # kNN repeats exactly; heads trained 3 or 6 at once may differ in float rounding
        assert point["accuracies"] == pytest.approx(longer, abs=0.01 if point["head"] != "-" else 0)
    labels = load_dataset("mnist", data_dir=mnist_dir, limit=2000).train_labels
    assert torch.equal(curve_draws(labels, 25, 0, 6, 0)[3:], curve_draws(labels, 25, 3, 6, 0))


def test_curve_flags_are_checked_in_one_line(small_ae_run, tmp_path, capsys):
    base = ["fewshot", "--ae", str(small_ae_run), "--out", str(tmp_path / "o")]
    assert main([*base, "--max-draws", "10"]) == 1
    assert "go with --curve" in capsys.readouterr().err
    assert main([*base, "--curve", "--max-draws", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--max-draws must be at least 3" in err and "\n" not in err
    assert main([*base, "--curve", "--draws", "20", "--max-draws", "10"]) == 1
    assert "more than --max-draws" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --curve and --labels exclude each other
        main([*base, "--curve", "--labels", "50"])
    assert not (tmp_path / "o").exists()
