"""Autoencoder models, run folders, checkpoints, resume and the train-ae/encode/reconstruct CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from zspace.checkpoint import load_tensors
from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.models.presets import ae_config_for_preset as config_for_preset
from zspace.sampling.latent import load_autoencoder
from zspace.training.autoencoder import AETrainingConfig, train_autoencoder


def test_small_run_has_every_artifact_and_learns(small_ae_run):
    names = {p.name for p in small_ae_run.iterdir()}
    for expected in (
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.jsonl",
        "reconstructions.png",
        "loss_curve.png",
    ):
        assert expected in names
    config = json.loads((small_ae_run / "config.json").read_text())
    assert config["kind"] == "autoencoder" and config["model"]["latent_dim"] == 64
    metrics = [
        json.loads(line)
        for line in (small_ae_run / "metrics.jsonl").read_text().split("\n")
        if line
    ]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert metrics[-1]["test_mse"] < 0.02  # an untrained decoder sits near 0.1
    with Image.open(small_ae_run / "reconstructions.png") as picture:
        assert picture.format == "PNG" and picture.height > 2 * 28


def _weights(run):
    return load_file(str(run / "model.safetensors"))


def test_same_seed_same_weights(mnist_dir, tmp_path):
    settings = AETrainingConfig(limit=1500, epochs=1, seed=7)
    for name in ("a", "b"):
        train_autoencoder(
            tmp_path / name, training=settings, data_dir=mnist_dir, device="cpu", progress=False
        )
    first, second = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_resume_after_interruption_matches_uninterrupted_run(
    mnist_dir, tmp_path, kill_after_checkpoint
):
    config = config_for_preset("mlp")
    full = AETrainingConfig(limit=1500, epochs=3, seed=3)
    train_autoencoder(
        tmp_path / "full", config, full, data_dir=mnist_dir, device="cpu", progress=False
    )

    # Kill the run right after its first checkpoint, as SIGKILL would between epochs.
    with kill_after_checkpoint(epoch=1), pytest.raises(KeyboardInterrupt):
        train_autoencoder(
            tmp_path / "cut", config, full, data_dir=mnist_dir, device="cpu", progress=False
        )
    # A metric line from a half-finished epoch 2 must not survive the resume.
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"epoch": 2, "train_loss": 9.9}) + "\n")
    train_autoencoder(
        tmp_path / "cut",
        config,
        full,
        data_dir=mnist_dir,
        device="cpu",
        resume=True,
        progress=False,
    )

    reference, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(reference[k], resumed[k]) for k in reference)
    epochs = [
        json.loads(line)["epoch"]
        for line in (tmp_path / "cut" / "metrics.jsonl").read_text().split("\n")
        if line
    ]
    assert epochs == [1, 2, 3]


def test_existing_run_without_resume_is_refused(small_ae_run, mnist_dir):
    with pytest.raises(ZspaceError, match="already holds a run"):
        train_autoencoder(small_ae_run, data_dir=mnist_dir, device="cpu", progress=False)


def test_loading_mismatched_weights_is_a_clear_error(small_ae_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(small_ae_run, broken)
    config = json.loads((broken / "config.json").read_text())
    config["model"]["latent_dim"] = 32
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="do not fit the saved config"):
        load_autoencoder(broken)


def test_corrupt_weights_file(small_ae_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(small_ae_run, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(RunError, match="not a readable safetensors"):
        load_autoencoder(broken)


def test_cli_train_encode_reconstruct(mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data-dir", str(mnist_dir)]
    assert (
        main(
            [
                "train-ae",
                *common,
                "--preset",
                "mlp",
                "--limit",
                "800",
                "--epochs",
                "1",
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    assert main(["encode", str(run), *common, "--out", str(tmp_path / "codes.npz")]) == 0
    with np.load(tmp_path / "codes.npz") as codes:
        assert codes["codes"].shape == (10_000, 64) and codes["labels"].shape == (10_000,)
    assert (
        main(["reconstruct", str(run), *common, "-n", "8", "--out", str(tmp_path / "r.png")]) == 0
    )
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Resuming with a conflicting setting is refused in one line.
    assert main(["train-ae", *common, "--preset", "conv", "--out", str(run), "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --preset" in err[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train-ae", "--out", "x", "--epochs", "0"], "--epochs"),
        (["train-ae", "--out", "x", "--preset", "nope"], "unknown autoencoder preset"),
        (["train-ae", "--out", "x", "--device", "tpu"], "device"),
        (["encode", "/no/such/run", "--out", "c.npz"], "does not exist"),
    ],
)
def test_cli_user_mistakes_are_one_line(argv, message, capsys, tmp_path, monkeypatch, mnist_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZSPACE_DATA", str(mnist_dir))
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert "Traceback" not in err[0]


def test_saved_weights_hold_plain_tensors_only(small_ae_run, tmp_path):
    # safetensors cannot hold pickled objects; check a foreign file is rejected cleanly, too.
    save_file({"x": torch.zeros(1)}, str(tmp_path / "w.safetensors"))
    tensors, _ = load_tensors(small_ae_run / "checkpoint.safetensors")
    assert all(torch.is_tensor(v) for v in tensors.values())
