"""Latent and pixel GANs: architectures, training, resume, sampling, zspace.load and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import zspace
from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.evaluation.monitor import CollapseMonitor
from zspace.models.gan import (
    config_for_preset,
)
from zspace.sampling.gan import load_gan
from zspace.sampling.sampler import MAX_SAMPLES
from zspace.training.gan import GANTrainingConfig, train_gan


def _train(out, ae_run, mnist_dir, preset="reference", conditional=False, **training):
    settings = {
        "limit": 1000,
        "epochs": 2,
        "seed": 0,
        "monitor_samples": 0,
        "inverter_steps": 0,
        **training,
    }
    return train_gan(
        out,
        config_for_preset(preset, conditional=conditional),
        GANTrainingConfig.for_preset(preset, **settings),
        ae_run=ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )


def test_small_run_has_every_artifact(small_ae_run, mnist_dir, tmp_path):
    run = tmp_path / "gan"
    _train(run, small_ae_run, mnist_dir)
    names = {p.name for p in run.iterdir()}
    for expected in (
        "config.json",
        "generator.safetensors",
        "discriminator.safetensors",
        "scaler.safetensors",
        "autoencoder.safetensors",
        "checkpoint.safetensors",
        "metrics.jsonl",
    ):
        assert expected in names
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "latent-gan" and config["conditional"] is False
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert all(np.isfinite(m["d_loss"]) and np.isfinite(m["g_loss"]) for m in metrics)


# Every schedule, the moving average and the R1 penalty must resume exactly too.
EVERY_OPTION = {
    "ema_decay": 0.99,
    "r1_weight": 0.5,
    "d_steps": 2,
    "lr_schedule": "linear",
    "batch_size": 128,
}


@pytest.mark.parametrize(
    "preset, model", [("wide-sn", {}), ("wide", EVERY_OPTION)], ids=["wide-sn", "every-option"]
)
def test_resume_after_interruption_matches_uninterrupted_run(
    small_ae_run, mnist_dir, tmp_path, kill_after_checkpoint, preset, model
):
    kwargs = {"preset": preset, "conditional": True, "epochs": 3, "limit": 600, **model}
    _train(tmp_path / "full", small_ae_run, mnist_dir, **kwargs)

    with kill_after_checkpoint(epoch=1), pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut", small_ae_run, mnist_dir, **kwargs)
    with pytest.raises(ZspaceError, match="already holds a run"):
        _train(tmp_path / "cut", small_ae_run, mnist_dir, **kwargs)
    # A resume needs no configs: the run folder's own are used.
    train_gan(
        tmp_path / "cut",
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        resume=True,
        progress=False,
    )
    names = ["generator", "discriminator"] + (["generator_ema"] if model else [])
    for name in names:
        reference = load_file(str(tmp_path / "full" / f"{name}.safetensors"))
        resumed = load_file(str(tmp_path / "cut" / f"{name}.safetensors"))
        assert all(torch.equal(reference[k], resumed[k]) for k in reference), name
    epochs = [
        json.loads(line)["epoch"]
        for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3]


@pytest.fixture(scope="module")
def cgan_run(small_ae_run, mnist_dir, tmp_path_factory):
    """A conditional latent GAN (default preset) trained briefly on 10,000 codes."""
    out = tmp_path_factory.mktemp("cgan") / "run"
    train_gan(
        out,
        config_for_preset("wide", conditional=True),
        GANTrainingConfig.for_preset(
            "wide",
            batch_size=64,
            learning_rate_g=5e-4,
            learning_rate_d=5e-4,
            limit=10_000,
            epochs=4,
            seed=0,
            monitor_samples=0,
            inverter_steps=0,
        ),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def quick_classifier(mnist_dir, tmp_path_factory):
    from zspace.evaluation.classifier import load_eval_classifier

    return load_eval_classifier(
        data_dir=mnist_dir,
        cache_dir=tmp_path_factory.mktemp("clf"),
        progress=False,
        limit=4000,
        epochs=2,
    )


def test_conditioning_gives_the_requested_digit(cgan_run, mnist_dir):
    # The briefly trained AE decodes blurry digits that a quickly trained image classifier
    # misreads, so the judge here is a linear classifier on real codes of the same AE.
    from zspace.data import load_dataset
    from zspace.sampling.latent import encode_images

    model = zspace.load(cgan_run)
    assert model.conditional
    data = load_dataset("mnist", data_dir=mnist_dir, limit=10_000)
    codes = encode_images(model.autoencoder, data.train_images)
    mean, std = codes.mean(0), codes.std(0)
    torch.manual_seed(0)
    judge = nn.Linear(codes.shape[1], 10)
    optimizer = torch.optim.Adam(judge.parameters(), lr=0.05)
    for _ in range(150):
        loss = nn.functional.cross_entropy(judge((codes - mean) / std), data.train_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    labels = torch.arange(10).repeat_interleave(30)
    noise = torch.cat([model.noise(30, seed=1, digit=d) for d in range(10)])
    generated = model.generate_codes(noise, labels)
    with torch.no_grad():
        accuracy = (judge((generated - mean) / std).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.6, accuracy  # chance is 0.1
    images, sampled_labels = model.sample_with_labels(n=30, seed=1)
    assert images.shape == (300, 1, 28, 28) and torch.equal(sampled_labels, labels)


def test_same_seed_same_images(cgan_run):
    model = zspace.load(cgan_run)
    first = model.sample(digit=7, n=16, seed=3)
    assert first.shape == (16, 1, 28, 28) and first.dtype == torch.float32
    assert 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, zspace.load(cgan_run).sample(digit=7, n=16, seed=3))
    assert not torch.equal(first, model.sample(digit=7, n=16, seed=4))
    # Row d of the all-digits sample is the single-digit sample with the same seed.
    every_digit = model.sample(n=16, seed=3)
    assert torch.equal(every_digit[7 * 16 : 8 * 16], first)
    codes = model.generate_codes(model.noise(5, seed=0), torch.full((5,), 2))
    assert codes.shape == (5, 64)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"digit": 10, "n": 4}, "digit must be"),
        ({"digit": -1, "n": 4}, "digit must be"),
        ({"digit": 3, "n": 0}, "n must be"),
        ({"digit": 3, "n": MAX_SAMPLES + 1}, "n must be"),
    ],
)
def test_bad_sample_requests(cgan_run, kwargs, message):
    with pytest.raises(ZspaceError, match=message):
        zspace.load(cgan_run).sample(**kwargs)


def test_unconditional_run_refuses_a_digit(small_ae_run, mnist_dir, tmp_path, capsys):
    run = tmp_path / "gan"
    model = _train(run, small_ae_run, mnist_dir, epochs=1)
    assert not model.conditional
    images, labels = zspace.load(run).sample_with_labels(n=5, seed=0)
    assert images.shape == (5, 1, 28, 28) and labels is None
    with pytest.raises(ZspaceError, match="unconditional"):
        zspace.load(run).sample(digit=3, n=2)
    assert main(["sample", str(run), "--digit", "3", "--out", str(tmp_path / "s.npz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unconditional" in err[0]
    assert main(["sample", str(run), "-n", "6", "--out", str(tmp_path / "u.npz")]) == 0
    with np.load(tmp_path / "u.npz") as arrays:
        assert arrays["images"].shape == (6, 28, 28) and "labels" not in arrays


def test_load_dispatches_on_kind(small_ae_run, tmp_path):
    from zspace.models.autoencoder import Autoencoder

    assert isinstance(zspace.load(small_ae_run), Autoencoder)
    with pytest.raises(RunError, match="not a zspace run"):
        zspace.load(tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        zspace.load(tmp_path / "missing")
    with pytest.raises(RunError, match="expected latent-gan"):
        load_gan(small_ae_run)


def test_cli_sample_formats(cgan_run, tmp_path, capsys):
    out = tmp_path / "seven.npz"
    assert (
        main(
            ["sample", str(cgan_run), "--digit", "7", "-n", "16", "--seed", "3", "--out", str(out)]
        )
        == 0
    )
    with np.load(out) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    assert images.shape == (16, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (16,) and (labels == 7).all()
    expected = zspace.load(cgan_run).sample(digit=7, n=16, seed=3)
    expected = expected.mul(255).round().to(torch.uint8).squeeze(1).numpy()
    assert np.array_equal(images, expected)
    # Light digit on dark: the border is dark, as in MNIST.
    assert images[:, 0, :].mean() < 40

    assert main(["sample", str(cgan_run), "-n", "3", "--out", str(tmp_path / "all.npz")]) == 0
    with np.load(tmp_path / "all.npz") as arrays:
        assert arrays["images"].shape == (30, 28, 28)
        assert arrays["labels"].tolist() == [d for d in range(10) for _ in range(3)]
    grid = tmp_path / "grid.png"
    assert main(["sample", str(cgan_run), "-n", "4", "--out", str(grid)]) == 0
    from PIL import Image

    with Image.open(grid) as picture:
        assert picture.format == "PNG" and picture.height > picture.width  # 10 rows of 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "RUN", "--digit", "11", "--out", "x.npz"], "digit must be"),
        (["sample", "RUN", "-n", "0", "--out", "x.npz"], "n must be"),
        (["sample", "RUN", "-n", "5000", "--out", "x.npz"], "n must be"),
        (["sample", "RUN", "--out", "x.jpg"], "must end in .png or .npz"),
        (["sample", "/no/such/run", "--out", "x.npz"], "does not exist"),
        (["train-gan", "--out", "g", "--epochs", "1"], "needs --ae"),
        (["train-gan", "--out", "g", "--ae", "AE", "--preset", "nope"], "unknown GAN preset"),
        (["train-gan", "--out", "g", "--space", "pixels", "--ae", "AE"], "drop it"),
    ],
)
def test_cli_user_mistakes_are_one_line(
    argv, message, cgan_run, small_ae_run, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    argv = [str(cgan_run) if a == "RUN" else str(small_ae_run) if a == "AE" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_cli_train_gan_smoke_and_resume(small_ae_run, mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data-dir", str(mnist_dir), "--limit", "500", "--no-progress"]
    common += ["--monitor-samples", "0", "--inverter-steps", "20"]
    argv = ["train-gan", "--ae", str(small_ae_run), "--conditional", "--out", str(run), *common]
    assert main([*argv, "--epochs", "1"]) == 0
    assert (run / "inverter.safetensors").is_file()
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    assert [
        m["epoch"] for m in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    ] == [1, 2]
    # resuming a finished run trains nothing and keeps its inverter instead of refitting it
    fitted = (run / "inverter.safetensors").stat().st_mtime_ns
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    assert (run / "inverter.safetensors").stat().st_mtime_ns == fitted
    assert main([*argv, "--preset", "reference", "--resume"]) == 1
    assert "drop --preset" in capsys.readouterr().err


def test_pixel_gan_with_time_budget(mnist_dir, tmp_path):
    run = tmp_path / "pixels"
    assert (
        main(
            [
                "train-gan",
                "--space",
                "pixels",
                "--conditional",
                "--preset",
                "reference",
                "--time-budget",
                "0.01",
                "--inverter-steps",
                "0",
                "--limit",
                "300",
                "--monitor-samples",
                "0",
                "--data-dir",
                str(mnist_dir),
                "--out",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "pixel-gan" and config["model"]["data_dim"] == 784
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # the budget stops it
    images = zspace.load(run).sample(digit=4, n=3, seed=0)
    assert images.shape == (3, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_mode_collapse_check_is_logged(small_ae_run, mnist_dir, tmp_path, quick_classifier):
    run = tmp_path / "gan"
    train_gan(
        run,
        config_for_preset("reference", conditional=True),
        GANTrainingConfig(limit=500, epochs=1, monitor_samples=200, inverter_steps=0),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
        monitor=CollapseMonitor(quick_classifier, samples=200),
    )
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert len(record["class_histogram"]) == 10
    assert abs(sum(record["class_histogram"]) - 1) < 1e-3
    assert record["kl_from_uniform"] >= 0 and 0 <= record["requested_accuracy"] <= 1


def test_fast_decoder_matches_the_autoencoder(small_ae_run):
    from zspace.models.fast_decode import inference_decoder
    from zspace.sampling.latent import load_autoencoder

    autoencoder = load_autoencoder(small_ae_run)
    codes = torch.randn(7, autoencoder.latent_dim) * 3
    with torch.no_grad():
        expected = autoencoder.decode(codes)
    fast = inference_decoder(autoencoder)(codes)
    assert fast.shape == expected.shape
    assert torch.allclose(fast, expected, atol=1e-5)


def test_fast_sampling_path_matches_the_plain_one(cgan_run):
    model = zspace.load(cgan_run)
    noise, labels = model.noise(20, seed=5), torch.arange(20) % 10
    plain = model.codes_to_images(model.generate_codes(noise, labels))
    assert torch.allclose(model.images(noise, labels), plain, atol=1e-5)
    with pytest.raises(ZspaceError, match="conditional"):
        model.images(noise)


def test_gaussian_base_run_reloads_to_the_same_samples(small_ae_run, mnist_dir, tmp_path):
    sampler = _train(tmp_path / "gauss", small_ae_run, mnist_dir, "wide-gaussian", True)
    reloaded = load_gan(tmp_path / "gauss")
    assert torch.equal(reloaded.sample(digit=4, n=8, seed=1), sampler.sample(digit=4, n=8, seed=1))
    assert float(reloaded.generator.base_factor.abs().sum()) > 0


def test_loaded_samplers_build_their_fast_path_once(cgan_run):
    from zspace.sampling.gan import GANSampler

    loaded = load_gan(cgan_run)
    assert loaded._frozen_generator is not None
    unfrozen = GANSampler(loaded.config, loaded.generator, loaded.scaler, loaded.autoencoder)
    assert torch.equal(loaded.sample(digit=3, n=5, seed=2), unfrozen.sample(digit=3, n=5, seed=2))
    # Soft labels never take the fast path, frozen or not.
    soft = nn.functional.one_hot(torch.tensor([3, 4]), 10).float()
    noise = loaded.noise(2, seed=1)
    assert torch.allclose(loaded.images(noise, soft), unfrozen.images(noise, soft))
