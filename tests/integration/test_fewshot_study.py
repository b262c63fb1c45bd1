"""The few-shot study end to end on a subset, through the CLI."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.fewshot.context import StudyContext
from zspace.fewshot.stats import accuracy_ci95, mean
from zspace.fewshot.study import StudyConfig, load_context, run_study


def test_fewshot_cli_smoke(small_ae_run, mnist_dir, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["fewshot", "--ae", str(small_ae_run), "--out", str(out), "--labels", "20,50",
            "--draws", "3", "--limit", "3000", "--test-limit", "500", "--steps", "40",
            "--heads", "(softmax,10)", "(relu,16)->(softmax,10)",
            "--methods", "knn-codes,spreading-codes,poisson-deskewed",
            "--data-dir", str(mnist_dir), "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "fewshot.json").read_text())
    results = summary["results"]
    # 2 label counts x (2 heads x 2 pipelines + 3 methods)
    assert len(results) == 2 * (2 * 2 + 3)
    for result in results:
        assert set(result) == {"method", "head", "labels", "mean", "ci95", "accuracies"}
        assert len(result["accuracies"]) == 3
        # Accuracies are fractions of the 500 test images, summarised by accuracy_ci95 ...
        for accuracy in result["accuracies"]:
            assert 0 <= accuracy <= 1 and abs(500 * accuracy - round(500 * accuracy)) < 1e-3
        assert result["mean"] == pytest.approx(mean(result["accuracies"]))
        assert result["ci95"] == pytest.approx(list(accuracy_ci95(result["accuracies"])))
        assert 0 <= result["ci95"][0] <= result["mean"] <= result["ci95"][1] <= 1
        # ... and every head and method is far above chance (0.1), where a broken one would sit.
        assert min(result["accuracies"]) > 0.3, result
    by_key = {(r["method"], r["head"], r["labels"]): r for r in results}
    assert by_key[("encoder+mlp", "(softmax,10)", 50)]["mean"] > 0.3  # far above chance
    assert by_key[("poisson-deskewed", "-", 50)]["mean"] > 0.6
    assert len(summary["differences"]) == 4
    assert summary["evaluated_on"] == "test" and summary["evaluation_images"] == 500
    rows = list(csv.DictReader((out / "fewshot.csv").open()))
    assert len(rows) == len(results) and rows[0]["method"] == results[0]["method"]
    table = (out / "table.md").read_text()
    assert "| architecture | pixels+MLP | reference | encoder+MLP | reference |" in table
    assert "64.04" in table and "poisson-deskewed" in table
    assert (out / "fewshot.png").stat().st_size > 0 and (out / "learning_curve.png").is_file()


def test_validation_split_and_too_few_draws_for_an_interval(small_ae_run, mnist_dir, tmp_path):
    out = tmp_path / "validation"
    args = ["fewshot", "--ae", str(small_ae_run), "--out", str(out), "--labels", "20",
            "--draws", "2", "--limit", "3000", "--steps", "30", "--heads", "(softmax,10)",
            "--methods", "knn-codes", "--validation", "--data-dir", str(mnist_dir),
            "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "fewshot.json").read_text())
    # the last sixth of the 3,000 training images is the evaluation set; the test set is unused
    assert summary["evaluated_on"] == "validation" and summary["evaluation_images"] == 500
    assert summary["config"]["validation"] is True
    assert all(r["ci95"] is None for r in summary["results"] + summary["differences"])
    table = (out / "table.md").read_text()
    assert "Validation accuracy (%) on 500 validation images" in table and "n/a" in table
    assert (out / "fewshot.png").stat().st_size > 0
    config = StudyConfig(ae_run=str(small_ae_run), data_dir=str(mnist_dir), train_limit=3000,
                         validation=True, device="cpu")  # fmt: skip
    context = load_context(config)
    train = load_dataset("mnist", data_dir=mnist_dir, limit=3000)
    assert torch.equal(context.train_images, train.train_images[:2500])
    assert torch.equal(context.test_images, train.train_images[2500:])
    assert torch.equal(context.test_labels, train.train_labels[2500:])


def test_both_pipelines_get_the_same_draws_and_reruns_repeat(small_ae_run, mnist_dir, monkeypatch):
    """Record the labelled indices each pipeline trains on: identical draws for both, and a
    rerun with the same seed gives identical accuracies."""
    seen = []
    import zspace.fewshot.study as study

    original = study.head_accuracies

    def spy(context, pipeline, spec, draws, seeds, training):
        seen.append((pipeline, draws.clone()))
        return original(context, pipeline, spec, draws, seeds, training)

    monkeypatch.setattr(study, "head_accuracies", spy)
    config = StudyConfig(ae_run=str(small_ae_run), draws=2, heads=["(softmax,10)"], data_dir=str(mnist_dir),
                         train_limit=2000, test_limit=300, device="cpu")  # fmt: skip
    config.head_training.steps = 20
    first = study.run_study(config, log=lambda line: None)
    assert [p for p, _ in seen] == ["pixels+mlp", "encoder+mlp"]
    assert torch.equal(seen[0][1], seen[1][1])
    second = study.run_study(config, log=lambda line: None)
    assert [r["accuracies"] for r in first["results"]] == [
        r["accuracies"] for r in second["results"]
    ]


def test_finetuning_changes_the_encoder_copy_only(small_ae_run, mnist_dir):
    config = StudyConfig(ae_run=str(small_ae_run), draws=1, heads=["(softmax,10)"], finetune=True,
                         data_dir=str(mnist_dir), train_limit=2000, test_limit=300, device="cpu")  # fmt: skip
    config.head_training.steps = 10
    context: StudyContext = load_context(config)
    before = [p.clone() for p in context.autoencoder.parameters()]
    summary = run_study(config, log=lambda line: None)
    assert {r["method"] for r in summary["results"]} >= {"finetuned-encoder+mlp"}
    assert all(torch.equal(a, b) for a, b in zip(before, context.autoencoder.parameters()))


def test_bad_cli_input_is_one_line(small_ae_run, tmp_path, capsys):
    code = main(
        ["fewshot", "--ae", str(small_ae_run), "--out", str(tmp_path / "o"), "--heads", "(relu,32)"]
    )
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "last layer must be (softmax,10)" in err and "\n" not in err
    assert main(["fewshot", "--ae", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert (
        main(
            [
                "fewshot",
                "--ae",
                str(small_ae_run),
                "--out",
                str(tmp_path / "o"),
                "--methods",
                "magic",
            ]
        )
        == 1
    )
    assert "unknown method 'magic'" in capsys.readouterr().err
