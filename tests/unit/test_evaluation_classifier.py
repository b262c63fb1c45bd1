"""The cached evaluation classifier and the `zspace evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zspace.cli.main import main
from zspace.evaluation import classifier as classifier_module
from zspace.evaluation.classifier import (
    EvalClassifierConfig,
    EvalCNN,
    EvalTrainingConfig,
    cache_key,
    random_shift,
)
from zspace.evaluation.sources import format_report
from zspace.training.classifier import train_classifier
from zspace.training.loop import one_cycle_lr, shuffled_batches


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSPACE_CACHE", str(tmp_path))
    assert classifier_module.default_cache_dir() == tmp_path
    monkeypatch.delenv("ZSPACE_CACHE")
    assert classifier_module.default_cache_dir().parts[-3:] == (".cache", "zspace", "models")


def test_cache_key_names_the_dataset_and_settings():
    full = cache_key(EvalClassifierConfig(), EvalTrainingConfig())
    quick = cache_key(EvalClassifierConfig(), EvalTrainingConfig(limit=4000, epochs=2))
    assert full.startswith("eval-cnn-mnist-e3-nall-s0-")
    assert quick.startswith("eval-cnn-mnist-e2-n4000-s0-") and quick != full
    fashion = cache_key(EvalClassifierConfig(), EvalTrainingConfig(dataset="fashion-mnist"))
    assert "fashion-mnist" in fashion


def test_network_shapes_and_random_shift():
    model = EvalCNN(EvalClassifierConfig())
    images = torch.rand(4, 1, 28, 28)
    assert model(images).shape == (4, 10) and model.embed(images).shape == (4, 128)
    dot = torch.zeros(64, 1, 28, 28)
    dot[:, 0, 14, 14] = 1
    shifted = random_shift(dot, 2, torch.Generator().manual_seed(0))
    where = shifted[:, 0].nonzero()[:, 1:]
    assert shifted.sum() == 64  # nothing falls off the edge for a central dot
    assert (where - 14).abs().max() <= 2 and len({tuple(w) for w in where.tolist()}) > 5


def test_report_table_shows_samples_beside_the_ceiling():
    report = {
        "count": 10,
        "requested_accuracy": 0.5,
        "per_digit_accuracy": None,
        "frechet_distance": 1.25,
        "precision": 0.75,
        "recall": 0.5,
        "class_histogram": [0.1] * 10,
        "kl_from_uniform": 0.0,
        "diversity": 1.0,
    }
    result = {
        "source": "runs/cgan",
        "kind": "latent-gan",
        "dataset": "mnist",
        "classifier": {"key": "k", "test_accuracy": 0.99},
        "samples": report,
        "ceiling": {**report, "frechet_distance": 0.5},
    }
    table = format_report(result)
    line = next(row for row in table.splitlines() if row.startswith("Frechet distance"))
    assert line.split()[-2:] == ["1.2500", "0.5000"]
    assert "AE ceiling" in table and "class histogram (AE ceiling)" in table


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"pictures": np.zeros((5, 28, 28), np.uint8)}, "has no 'images'"),
        ({"images": np.zeros((5, 32, 32), np.uint8)}, "expected (N, 28, 28)"),
        ({"images": np.zeros((5, 28, 28), np.float32)}, "expected uint8"),
        ({"images": np.zeros((5, 28, 28), np.uint8), "labels": np.zeros(4, np.int64)}, "'labels'"),
        ({"images": np.zeros((5, 28, 28), np.uint8), "labels": np.full(5, 12)}, "0..9"),
    ],
)
def test_evaluate_cli_rejects_bad_npz_in_one_line(arrays, message, tmp_path, capsys):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert main(["evaluate", str(path)]) == 1
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_evaluate_cli_rejects_missing_and_foreign_inputs(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 1
    assert "file not found" in capsys.readouterr().err
    (tmp_path / "notzip.npz").write_text("hello")
    assert main(["evaluate", str(tmp_path / "notzip.npz")]) == 1
    assert "not a valid .npz" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "not a zspace run" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"kind": "mystery"}))
    assert main(["evaluate", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err.strip()
    assert "mystery" in error and "\n" not in error


def _small_classifier(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 3)
    )


def _train_small_classifier(seed: int, inputs, targets, drop_last=False, seen=None):
    """A small MLP with dropout trained by the shared classifier loop for 5 epochs; with a
    list `seen`, records (batch before augmentation, learning rate) of every step."""
    model = _small_classifier(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    noise = torch.Generator().manual_seed(seed + 1)

    def jitter(batch):
        if seen is not None:
            seen.append((batch.clone(), optimizer.param_groups[0]["lr"]))
        return batch + 0.05 * torch.randn(batch.shape, generator=noise)

    losses = train_classifier(model, optimizer, inputs, targets, epochs=5, batch_size=32,
                              learning_rate=0.02, seed=seed, transform=jitter,
                              drop_last=drop_last)  # fmt: skip
    return model, losses


def test_classifier_loop_learns_and_repeats_with_the_seed():
    """The shared training loop on random tensors (no MNIST): the loss falls, the same seed
    gives the same weights, batches follow shuffled_batches and the rate one_cycle_lr."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(200, 8, generator=generator)
    targets = inputs[:, :3].argmax(1)  # learnable: the largest of the first three features
    seen = []
    model, losses = _train_small_classifier(3, inputs, targets, seen=seen)
    assert not model.training  # left in eval mode
    with torch.no_grad():
        before = F.cross_entropy(_small_classifier(3).eval()(inputs), targets).item()
        after = F.cross_entropy(model(inputs), targets).item()
        accuracy = (model(inputs).argmax(1) == targets).float().mean().item()
    assert after < 0.5 * before and accuracy > 0.8
    assert len(losses) == 5 and losses[-1] < losses[0]

    # 200 items in batches of 32: 6 full batches and one of 8 per epoch, in the seeded order.
    assert [len(batch) for batch, _ in seen[:7]] == [32] * 6 + [8] and len(seen) == 35
    order = [i for epoch in range(1, 6) for i in shuffled_batches(200, 32, seed=3, epoch=epoch)]
    assert all(torch.equal(batch, inputs[i]) for (batch, _), i in zip(seen, order, strict=True))
    assert [lr for _, lr in seen] == [one_cycle_lr(step, 35, 0.02) for step in range(35)]

    again, again_losses = _train_small_classifier(3, inputs, targets)
    assert again_losses == losses
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    other, _ = _train_small_classifier(4, inputs, targets)
    assert not torch.equal(other[0].weight, model[0].weight)

    # drop_last skips the ragged batch: 6 steps per epoch, so a shorter schedule.
    seen = []
    _train_small_classifier(3, inputs, targets, drop_last=True, seen=seen)
    assert [len(batch) for batch, _ in seen] == [32] * 30
    assert [lr for _, lr in seen] == [one_cycle_lr(step, 30, 0.02) for step in range(30)]
