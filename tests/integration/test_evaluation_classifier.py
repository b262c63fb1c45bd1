"""The cached evaluation classifier and the `zspace evaluate` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.errors import ZspaceError
from zspace.evaluation import classifier as classifier_module
from zspace.evaluation.classifier import (
    EvalClassifierConfig,
    load_eval_classifier,
)

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


def test_inference_with_folded_batch_norms_matches_the_network(quick_classifier):
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model = quick_classifier.model
    with torch.no_grad():
        expected_features = model.embed(images)
        expected_logits = model(images)
    assert torch.allclose(quick_classifier.features(images), expected_features, atol=1e-4)
    assert torch.allclose(quick_classifier.logits(images), expected_logits, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in quick_classifier._embed.modules())
