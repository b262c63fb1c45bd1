"""MNIST-style image preparation, saved classifiers and `zspace classify`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.fewshot.classify import load_classifier, prepare_image


def _correlation(a, b) -> float:
    """Correlation after a 5x5 box blur, so a one-pixel offset of a thin stroke is forgiven."""
    blur = torch.nn.functional.avg_pool2d
    a, b = (
        blur(torch.tensor(x, dtype=torch.float64)[None, None], 5, 1, 2).ravel().numpy()
        for x in (a, b)
    )
    return float(np.corrcoef(a, b)[0, 1])


def _big_png(image: np.ndarray, path, invert=False, size=(90, 120), offset=(10, 30)):
    """Paste a 28x28 digit, enlarged, off-centre on a larger canvas (as a phone photo might)."""
    digit = Image.fromarray(image).resize((70, 70), Image.BILINEAR)
    canvas = Image.new("L", size, 0)
    canvas.paste(digit, offset)
    array = np.asarray(canvas)
    if invert:
        array = 255 - array
    Image.fromarray(array).convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return load_dataset("mnist", data_dir=mnist_dir)


def test_prepare_image_recovers_an_mnist_digit(tmp_path, mnist_test):
    original = mnist_test.test_images[0].numpy()
    plain, inverted = prepare_image(_big_png(original, tmp_path / "plain.png"))
    assert plain.shape == (28, 28) and plain.dtype == np.uint8 and not inverted
    assert _correlation(plain, original) > 0.8
    dark_on_white, inverted = prepare_image(_big_png(original, tmp_path / "ink.png", invert=True))
    assert inverted
    assert _correlation(dark_on_white, plain) > 0.95
    # centred by centre of mass, and the ink fits a 20x20 box
    ys, xs = np.indices(plain.shape)
    mass = plain.astype(float).sum()
    assert (
        abs((ys * plain).sum() / mass - 13.5) < 1.0 and abs((xs * plain).sum() / mass - 13.5) < 1.0
    )
    rows, cols = np.nonzero(plain)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21


@pytest.fixture(scope="module")
def quick_classifier(mnist_dir, tmp_path_factory):
    """The best method end to end on 3,000 training images (one epoch): fast, not accurate."""
    out = tmp_path_factory.mktemp("clf") / "run"
    code = main(
        [
            "train-classifier",
            "--out",
            str(out),
            "--limit",
            "3000",
            "--epochs",
            "1",
            "--data-dir",
            str(mnist_dir),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    return out


def test_saved_classifier_classifies_pngs_and_npz(quick_classifier, mnist_test, tmp_path, capsys):
    config = json.loads((quick_classifier / "config.json").read_text())
    assert config["kind"] == "classifier" and config["training"]["per_class"] == 5
    classifier = load_classifier(quick_classifier)
    images = mnist_test.test_images[:200]
    labels, probs = classifier.classify(images)
    assert probs.shape == (200, 10) and torch.allclose(probs.sum(1), torch.ones(200), atol=1e-5)
    assert (labels == mnist_test.test_labels[:200]).float().mean() > 0.6  # far above chance

    digit = images[3].numpy()
    expected = int(classifier.classify(prepare_image(_big_png(digit, tmp_path / "a.png"))[0])[0][0])
    capsys.readouterr()
    assert (
        main(
            [
                "classify",
                str(_big_png(digit, tmp_path / "b.png", invert=True)),
                "--model",
                str(quick_classifier),
                "--json",
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)
    assert record["inverted"] is True and record["digit"] == expected
    assert len(record["probabilities"]) == 10

    assert main(["classify", str(tmp_path / "b.png"), "--model", str(quick_classifier)]) == 0
    text = capsys.readouterr().out
    assert "inverted" in text and f"digit {expected}" in text

    np.savez(tmp_path / "few.npz", images=images[:3].numpy())
    assert (
        main(["classify", str(tmp_path / "few.npz"), "--model", str(quick_classifier), "--json"])
        == 0
    )
    records = json.loads(capsys.readouterr().out)
    assert [r["digit"] for r in records] == labels[:3].tolist()


def test_classify_batch_mode_writes_predictions_and_the_accuracy(
    quick_classifier, mnist_test, tmp_path, capsys
):
    images, labels = mnist_test.test_images[:500].numpy(), mnist_test.test_labels[:500].numpy()
    np.savez(tmp_path / "test.npz", images=images, labels=labels)
    out = tmp_path / "predictions.npz"
    argv = ["classify", str(tmp_path / "test.npz"), "--model", str(quick_classifier)]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    with np.load(out, allow_pickle=False) as saved:
        predictions, probabilities = saved["predictions"], saved["probabilities"]
        assert saved["labels"].tolist() == labels.tolist()
    expected, _ = load_classifier(quick_classifier).classify(images)
    assert predictions.tolist() == expected.tolist() and probabilities.shape == (500, 10)
    assert summary["images"] == 500
    assert summary["accuracy"] == pytest.approx(float((predictions == labels).mean()))
    # Without labels there is no accuracy; wrong labels and a user's file are one line each.
    np.savez(tmp_path / "unlabelled.npz", images=images[:10])
    argv[1] = str(tmp_path / "unlabelled.npz")
    assert main([*argv, "--out", str(out)]) == 0
    assert "classified 10 images" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", images=images[:10], labels=np.arange(9))
    argv[1] = str(tmp_path / "bad.npz")
    assert main([*argv, "--out", str(out)]) == 1
    assert "9 labels for 10 images" in capsys.readouterr().err
    mine = tmp_path / "mine.npz"
    mine.write_bytes(b"my own file")
    assert main([*argv, "--out", str(mine)]) == 1
    assert (
        "zspace did not write it" in capsys.readouterr().err and mine.read_bytes() == b"my own file"
    )


def test_one_label_per_class_learns_from_the_clusters(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    arguments = ["train-classifier", "--out", str(out), "--per-class", "1", "--limit", "2000"]
    arguments += ["--epochs", "1", "--data-dir", str(mnist_dir), "--device", "cpu"]
    assert main(arguments) == 0
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["labels_from"] == "cluster-then-label" and training["per_class"] == 1
    # The clusters of 2,000 digits name most test digits right even from ten labels.
    assert training["test_accuracy"] > 0.6
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["train-classifier", "--out", str(tmp_path / "other"), "--labels-from", "votes"])
    assert stopped.value.code == 2 and "votes" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
