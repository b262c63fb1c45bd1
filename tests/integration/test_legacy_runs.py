"""Run folders written by zspace 0.1.0 still load, sample and resume.

zspace 0.1.0 kept a GAN's optimisation settings (learning rates, batch size, R1, EMA, loss) in
config.json's "model" next to the architecture; 0.2 keeps the architecture alone there. The
tests build a 0.1.0 folder from a 0.2 run by rewriting its config into the old layout.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import zspace
from zspace.cli.main import main
from zspace.models.gan import config_for_preset
from zspace.training.gan import GANTrainingConfig, read_saved_configs, train_gan

# The training settings 0.1.0 knew (everything else it kept in the model config).
OLD_TRAINING_KEYS = (
    "space",
    "dataset",
    "limit",
    "epochs",
    "seed",
    "time_budget",
    "monitor_samples",
    "inverter_steps",
)


def write_as_version_010(run) -> dict:
    """Rewrite a 0.2 GAN run's config.json in the 0.1.0 layout; returns the old config."""
    config = json.loads((run / "config.json").read_text())
    model, training = config["model"], config["training"]
    model.pop("auxiliary_classifier")
    for key in list(training):
        if key not in OLD_TRAINING_KEYS:
            model[key] = training.pop(key)
    config["zspace_version"] = "0.1.0"
    (run / "config.json").write_text(json.dumps(config, indent=2))
    return config


def _train(out, ae_run, data_dir, epochs: int):
    settings = dict(limit=600, epochs=epochs, seed=0, monitor_samples=0, inverter_steps=0)
    return train_gan(
        out,
        config_for_preset("wide-r1", conditional=True),
        GANTrainingConfig.for_preset("wide-r1", batch_size=128, **settings),
        ae_run=ae_run,
        data_dir=data_dir,
        device="cpu",
        progress=False,
    )


@pytest.fixture(scope="module")
def legacy_gan(small_ae_run, mnist_dir, tmp_path_factory):
    """(a one-epoch wide-r1 cGAN in the 0.1.0 layout, its images before the rewrite)."""
    run = tmp_path_factory.mktemp("legacy") / "cgan"
    sampler = _train(run, small_ae_run, mnist_dir, epochs=1)
    before = sampler.sample(digit=3, n=6, seed=1)
    old = write_as_version_010(run)
    assert "learning_rate_g" in old["model"] and "batch_size" not in old["training"]
    return run, before


def test_a_010_gan_run_loads_and_samples_the_same_digits(legacy_gan):
    run, before = legacy_gan
    sampler = zspace.load(run)
    # generator_ema.safetensors is what 0.1.0 sampled from when ema_decay > 0: the same here.
    assert torch.equal(sampler.sample(digit=3, n=6, seed=1), before)
    kind, model, training = read_saved_configs(run)
    assert kind == "latent-gan" and model.preset == "wide-r1" and not model.auxiliary_classifier
    assert training.ema_decay == 0.999 and training.batch_size == 128 and training.r1_weight == 0.1


def test_a_010_gan_run_samples_from_the_cli(legacy_gan, tmp_path, capsys):
    run, _ = legacy_gan
    assert (
        main(["sample", str(run), "--digit", "5", "-n", "4", "--out", str(tmp_path / "s.npz")]) == 0
    )
    assert json.loads(capsys.readouterr().out)["images"] == 4


def test_a_010_gan_run_resumes_exactly(legacy_gan, small_ae_run, mnist_dir, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(legacy_gan[0], run)
    args = ["train-gan", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]
    assert main([*args, "--data-dir", str(mnist_dir)]) == 0
    _train(tmp_path / "straight", small_ae_run, mnist_dir, epochs=2)
    for name in ("generator", "generator_ema", "discriminator"):
        resumed = load_file(str(run / f"{name}.safetensors"))
        straight = load_file(str(tmp_path / "straight" / f"{name}.safetensors"))
        assert all(torch.equal(straight[k], resumed[k]) for k in straight), name
    # The resume rewrote the config in the 0.2 layout.
    config = json.loads((run / "config.json").read_text())
    assert "learning_rate_g" not in config["model"] and config["training"]["epochs"] == 2
