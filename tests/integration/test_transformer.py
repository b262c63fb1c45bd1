"""The transformer autoencoder preset: patches, positional encodings and their ablation,
permutation (in)variance, run folders, resume and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from zspace.cli.main import main
from zspace.models.autoencoder import Autoencoder
from zspace.models.presets import ae_config_for_preset as config_for_preset
from zspace.models.presets import transformer_config
from zspace.sampling.latent import load_autoencoder
from zspace.training.autoencoder import (
    AETrainingConfig,
    reconstruction_mse,
    train_autoencoder,
)


def _model(seed: int = 0, **options) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(transformer_config(**options)).eval()


@pytest.fixture(scope="module")
def transformer_run(mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("tf") / "run"
    model = train_autoencoder(
        out,
        transformer_config(positional="learned"),
        AETrainingConfig(limit=2000, epochs=2, seed=0),
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out, model


def test_short_training_lowers_the_loss(transformer_run, mnist_dir):
    from zspace.data import load_dataset

    out, _ = transformer_run
    test_images = load_dataset("mnist", data_dir=mnist_dir).test_images[:2000]
    untrained = reconstruction_mse(_model(positional="learned"), test_images)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[1]["train_loss"] < metrics[0]["train_loss"]
    trained = reconstruction_mse(load_autoencoder(out), test_images)
    assert trained < 0.7 * untrained


def test_run_folder_round_trip(transformer_run):
    out, trained = transformer_run
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["preset"] == "transformer"
    assert config["model"]["extra"]["positional"] == "learned"
    weights = load_file(str(out / "model.safetensors"))
    assert "encoder.positions.encoding" in weights
    loaded = load_autoencoder(out)
    images = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.encode(images), trained.encode(images))
        assert torch.equal(loaded(images), trained(images))


def test_resume_after_interruption_matches_uninterrupted_run(
    mnist_dir, tmp_path, kill_after_checkpoint
):
    config = config_for_preset("transformer")
    settings = AETrainingConfig(limit=400, batch_size=100, epochs=2, seed=2)
    kwargs = dict(data_dir=mnist_dir, device="cpu", progress=False)
    train_autoencoder(tmp_path / "full", config, settings, **kwargs)

    with kill_after_checkpoint(epoch=1), pytest.raises(KeyboardInterrupt):
        train_autoencoder(tmp_path / "cut", config, settings, **kwargs)
    train_autoencoder(tmp_path / "cut", config, settings, resume=True, **kwargs)

    full = load_file(str(tmp_path / "full" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_cli_train_encode_reconstruct_with_ablation(mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data-dir", str(mnist_dir)]
    train = ["train-ae", *common, "--preset", "transformer", "--out", str(run), "--no-progress"]
    assert main([*train, "--positional", "none", "--limit", "500", "--epochs", "1"]) == 0
    saved = json.loads((run / "config.json").read_text())["model"]
    assert saved["extra"]["positional"] == "none"
    assert main(["encode", str(run), *common, "--out", str(tmp_path / "codes.npz")]) == 0
    with np.load(tmp_path / "codes.npz") as codes:
        assert codes["codes"].shape == (10_000, 64)
    assert (
        main(["reconstruct", str(run), *common, "-n", "4", "--out", str(tmp_path / "r.png")]) == 0
    )
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # resuming with a different --positional is refused in one line
    assert main([*train, "--positional", "sinusoidal", "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --positional" in err[0]
    # --positional means nothing to a conv autoencoder
    conv = ["train-ae", *common, "--preset", "conv", "--positional", "none"]
    assert main([*conv, "--out", str(tmp_path / "conv")]) == 1
    assert "transformer" in capsys.readouterr().err
