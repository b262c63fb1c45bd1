"""The cached evaluation classifier and the `zspace evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.errors import ZspaceError
from zspace.evaluation import classifier as classifier_module
from zspace.evaluation.classifier import (
    EvalClassifierConfig,
    EvalCNN,
    EvalTrainingConfig,
    cache_key,
    load_eval_classifier,
    random_shift,
)
from zspace.evaluation.sources import format_report
from zspace.training.classifier import train_classifier
from zspace.training.loop import one_cycle_lr, shuffled_batches

QUICK = {"limit": 4000, "epochs": 2}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("zspace-cache")


@pytest.fixture(scope="module")
def quick_classifier(mnist_dir, cache_dir):
    return load_eval_classifier(
        "mnist", data_dir=mnist_dir, cache_dir=cache_dir, progress=False, **QUICK
    )


def test_quick_classifier_beats_chance_by_far(quick_classifier, mnist_dir):
    test = load_dataset("mnist", data_dir=mnist_dir)
    labels, probs = quick_classifier.predict(test.test_images[:2000])
    assert labels.dtype == torch.int64 and labels.shape == (2000,)
    assert probs.shape == (2000, 10)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2000), atol=1e-5)
    assert (labels == test.test_labels[:2000]).float().mean() > 0.8
    assert quick_classifier.test_accuracy > 0.8  # measured once after training, stored in the cache
    # Float (N, 1, 28, 28) input in [0, 1] gives the same answers as uint8 input.
    floats = test.test_images[:50].float().div(255).unsqueeze(1)
    assert torch.equal(quick_classifier.predict(floats)[0], labels[:50])
    features = quick_classifier.features(test.test_images[:10])
    assert features.shape == (10, EvalClassifierConfig().feature_dim)
    together = quick_classifier.predict_with_features(test.test_images[:10])
    assert torch.equal(together[0], labels[:10]) and torch.allclose(together[2], features)


def test_cache_round_trip_loads_without_training(
    quick_classifier, mnist_dir, cache_dir, monkeypatch
):
    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded, not retrained")

    monkeypatch.setattr(classifier_module, "train_eval_classifier", no_training)
    loaded = load_eval_classifier(
        "mnist", data_dir=mnist_dir, cache_dir=cache_dir, progress=False, **QUICK
    )
    original = quick_classifier.model.state_dict()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, original[key]), key
    assert loaded.info["key"] == quick_classifier.info["key"]
    folder = cache_dir / loaded.info["key"]
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    # Different settings are a different cache entry, so they would train.
    with pytest.raises(AssertionError, match="should have been loaded"):
        load_eval_classifier("mnist", data_dir=mnist_dir, cache_dir=cache_dir, limit=4000, epochs=1)


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


def test_bad_image_shapes_are_user_errors(quick_classifier):
    with pytest.raises(ZspaceError, match="images must be"):
        quick_classifier.predict(torch.zeros(3, 32, 32, dtype=torch.uint8))


def write_samples(path, images, labels=None):
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = labels
    np.savez(path, **arrays)
    return path


def quick_cli(*argv):
    return list(argv) + ["--classifier-limit", "4000", "--classifier-epochs", "2", "--no-progress"]


def test_evaluate_cli_on_a_small_npz(
    quick_classifier, mnist_dir, cache_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ZSPACE_CACHE", str(cache_dir))
    test = load_dataset("mnist", data_dir=mnist_dir)
    images = test.test_images[:300].numpy()
    labels = test.test_labels[:300].numpy()
    path = write_samples(tmp_path / "samples.npz", images, labels)
    out = tmp_path / "report.json"
    code = main(quick_cli("evaluate", str(path), "--data-dir", str(mnist_dir), "--json", str(out)))
    assert code == 0
    table = capsys.readouterr().out
    assert "Frechet distance" in table and "judged as requested digit" in table
    result = json.loads(out.read_text())
    samples = result["samples"]
    assert samples["count"] == 300 and result["kind"] == "samples"
    # Real test images: mostly judged right, close to the test set, precise.
    assert samples["requested_accuracy"] > 0.8
    assert samples["precision"] > 0.7 and samples["kl_from_uniform"] < 0.1
    assert result["ceiling"] is None

    # Without labels there is no requested-digit accuracy; blank images score far worse.
    write_samples(tmp_path / "blank.npz", np.zeros((300, 28, 28), np.uint8))
    assert (
        main(
            quick_cli(
                "evaluate",
                str(tmp_path / "blank.npz"),
                "--data-dir",
                str(mnist_dir),
                "--json",
                str(out),
            )
        )
        == 0
    )
    blank = json.loads(out.read_text())["samples"]
    assert blank["requested_accuracy"] is None
    assert blank["frechet_distance"] > 5 * samples["frechet_distance"]
    assert blank["recall"] < 0.05 and blank["kl_from_uniform"] > 1.0


def test_evaluate_cli_on_a_gmm_run_and_an_ae_run(
    small_ae_run, mnist_dir, cache_dir, tmp_path, monkeypatch, capsys
):
    from zspace.evaluation.gmm import fit_gmm_baseline

    monkeypatch.setenv("ZSPACE_CACHE", str(cache_dir))
    run = tmp_path / "gmm"
    fit_gmm_baseline(small_ae_run, run, components=2, data_dir=mnist_dir, limit=3000)
    out = tmp_path / "report.json"
    argv = quick_cli("evaluate", str(run), "-n", "30", "--no-ceiling", "--data-dir", str(mnist_dir))
    assert main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["kind"] == "gmm-baseline" and result["ceiling"] is None
    # (small_ae_run is trained too briefly for recognisable digits; quality is benchmarked.)
    samples = result["samples"]
    assert samples["count"] == 300
    assert 0 <= samples["requested_accuracy"] <= 1 and len(samples["per_digit_accuracy"]) == 10

    # An autoencoder run evaluates its test reconstructions, judged against the true labels.
    argv = quick_cli("evaluate", str(small_ae_run), "--data-dir", str(mnist_dir))
    assert main([*argv, "--json", str(out)]) == 0
    assert "test reconstructions" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["kind"] == "autoencoder" and result["samples"]["count"] == 10_000
    assert result["samples"] == result["ceiling"]
    # The test set's features were computed once and cached beside the classifier.
    assert len(list(cache_dir.glob("eval-cnn-*/reference-*.safetensors"))) == 1


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
        ({"images": np.zeros((5, 32, 32), np.uint8)}, "must be uint8 (N, 28, 28)"),
        ({"images": np.zeros((5, 28, 28), np.float32)}, "must be uint8 (N, 28, 28)"),
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


def test_inference_with_folded_batch_norms_matches_the_network(quick_classifier):
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = quick_classifier.model
    with torch.no_grad():
        expected_features = model.embed(images)
        expected_logits = model(images)
    assert torch.allclose(quick_classifier.features(images), expected_features, atol=1e-4)
    assert torch.allclose(quick_classifier.logits(images), expected_logits, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in quick_classifier._embed.modules())


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
