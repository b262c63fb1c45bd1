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
    CodeScaler,
    Discriminator,
    Generator,
    config_for_preset,
)
from zspace.models.presets import GAN_PRESETS
from zspace.sampling.gan import load_gan
from zspace.sampling.sampler import MAX_SAMPLES
from zspace.training.gan import GANTrainingConfig, train_gan


def _layer_summary(sequential: nn.Sequential) -> list:
    return [
        ("Linear", m.in_features, m.out_features) if isinstance(m, nn.Linear) else type(m).__name__
        for m in sequential
    ]


def test_reference_generator_is_exactly_the_issue_design():
    generator = Generator(config_for_preset("reference"))
    assert _layer_summary(generator.layers) == [
        ("Linear", 64, 256),
        "ReLU",
        ("Linear", 256, 512),
        "ReLU",
        ("Linear", 512, 512),
        "Tanh",
        ("Linear", 512, 256),
        "Sigmoid",
        ("Linear", 256, 64),
    ]


def test_reference_discriminator_is_exactly_the_issue_design():
    discriminator = Discriminator(config_for_preset("reference"))
    assert _layer_summary(discriminator.layers) == [
        ("Linear", 64, 64),
        "ReLU",
        ("Linear", 64, 128),
        "ReLU",
        ("Linear", 128, 256),
        "ReLU",
        ("Linear", 256, 1),
        "Sigmoid",
    ]
    codes = torch.randn(5, 64)
    probabilities = discriminator(codes)
    assert probabilities.shape == (5,) and (0 < probabilities).all() and (probabilities < 1).all()
    # The losses use logits; they must be the same network before its sigmoid.
    assert torch.allclose(torch.sigmoid(discriminator.logits(codes)), probabilities)
    assert not config_for_preset("reference").spectral_norm
    training = GANTrainingConfig.for_preset("reference")
    assert training.loss == "bce" and not training.standardize


def test_conditional_networks_see_the_label():
    config = config_for_preset("reference", conditional=True)
    generator, discriminator = Generator(config), Discriminator(config)
    assert generator.layers[0].in_features == 64 + 10
    assert discriminator.layers[0].in_features == 64 + 10
    noise = torch.randn(4, 64)
    a = generator(noise, torch.tensor([0, 0, 0, 0]))
    b = generator(noise, torch.tensor([7, 7, 7, 7]))
    assert not torch.allclose(a, b)
    with pytest.raises(ZspaceError, match="conditional"):
        generator(noise)
    with pytest.raises(ZspaceError, match="unconditional"):
        Generator(config_for_preset("reference"))(noise, torch.zeros(4, dtype=torch.long))


def test_projection_discriminator_uses_the_label():
    config = config_for_preset("wide", conditional=True)
    discriminator = Discriminator(config)
    assert discriminator.layers[0].in_features == 64  # the label enters by projection
    codes = torch.randn(4, 64)
    first = discriminator.logits(codes, torch.tensor([0, 0, 0, 0]))
    second = discriminator.logits(codes, torch.tensor([5, 5, 5, 5]))
    assert not torch.allclose(first, second)
    soft = torch.nn.functional.one_hot(torch.tensor([5, 5, 5, 5]), 10).float()
    assert torch.allclose(discriminator.logits(codes, soft), second)
    with pytest.raises(ZspaceError, match="conditional"):
        discriminator.logits(codes)


@pytest.mark.parametrize("preset", sorted(GAN_PRESETS))
def test_every_preset_builds_and_runs(preset):
    config = config_for_preset(preset, conditional=True)
    noise, labels = torch.randn(3, 64), torch.tensor([1, 2, 3])
    fake = Generator(config)(noise, labels)
    assert fake.shape == (3, 64)
    assert Discriminator(config).logits(fake, labels).shape == (3,)


def test_overrides_win_over_a_presets_settings_and_leave_it_alone():
    training = GANTrainingConfig.for_preset("wide-r1", batch_size=256)
    assert training.batch_size == 256 and training.r1_weight > 0 and training.ema_decay > 0
    training.betas.append(1.0)
    config = config_for_preset("wide-r1", conditional=True, generator_output="tanh")
    assert config.generator_output == "tanh"
    config.generator_layers[0][0] = 3
    assert GANTrainingConfig.for_preset("wide-r1").betas == [0.0, 0.99]
    assert config_for_preset("wide-r1").generator_layers[0][0] == 256


def test_model_configs_hold_architecture_only():
    fields = set(config_for_preset("wide-r1").to_dict())
    assert not fields & {"learning_rate_g", "batch_size", "betas", "r1_weight", "ema_decay"}
    with pytest.raises(ZspaceError, match="unknown GAN config keys"):
        config_for_preset("wide", batch_size=64)


def test_unknown_preset_is_a_user_error():
    with pytest.raises(ZspaceError, match="unknown GAN preset"):
        config_for_preset("stylegan9")


def test_code_scaler_round_trip():
    data = torch.randn(100, 8) * 3 + 5
    scaler = CodeScaler(8).fit(data)
    standardized = scaler(data)
    assert torch.allclose(standardized.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(scaler.inverse(standardized), data, atol=1e-5)


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


@pytest.mark.parametrize(
    "preset, conditional", [("wide", True), ("reference", False), ("reference", True)]
)
def test_fast_generator_matches_the_generator(preset, conditional):
    from zspace.models.fast_decode import FastGenerator

    torch.manual_seed(0)
    config = config_for_preset(preset, conditional=conditional)
    generator = Generator(config).eval()
    scaler = CodeScaler(64).fit(torch.randn(200, 64) * 2 + 1)
    noise = torch.randn(9, 64)
    labels = torch.randint(0, 10, (9,)) if conditional else None
    with torch.no_grad():
        expected = scaler.inverse(generator(noise, labels))
    assert torch.allclose(FastGenerator(generator, scaler)(noise, labels), expected, atol=1e-5)


def test_fast_sampling_path_matches_the_plain_one(cgan_run):
    model = zspace.load(cgan_run)
    noise, labels = model.noise(20, seed=5), torch.arange(20) % 10
    plain = model.codes_to_images(model.generate_codes(noise, labels))
    assert torch.allclose(model.images(noise, labels), plain, atol=1e-5)
    with pytest.raises(ZspaceError, match="conditional"):
        model.images(noise)


def test_noise_streams_take_every_int64_seed():
    from zspace.sampling.sampler import MAX_SEED, noise_stream

    first = torch.randn(3, generator=noise_stream(MAX_SEED, 9))
    assert torch.equal(first, torch.randn(3, generator=noise_stream(MAX_SEED, 9)))
    assert not torch.equal(first, torch.randn(3, generator=noise_stream(MAX_SEED, 8)))
    for bad in (-1, MAX_SEED + 1, 1.5):
        with pytest.raises(ZspaceError, match="seed must be"):
            noise_stream(bad)


def test_gaussian_base_starts_from_one_gaussian_per_digit():
    config = config_for_preset("wide-gaussian", conditional=True)
    generator = Generator(config)
    labels = torch.arange(10).repeat_interleave(500)
    shift = torch.zeros(10, 64)
    shift[:, 0] = torch.arange(10) * 3.0  # each digit its own mean along dimension 0
    data = torch.randn(5000, 64) * 0.5 + shift[labels]
    generator.fit_base(data, labels)
    noise = torch.randn(5000, 64)
    with torch.no_grad():
        fake = generator(noise, labels)
        soft = generator(noise[:20], nn.functional.one_hot(labels[:20], 10).float())
    # G's last layer starts at zero, so the output is exactly mean_y + L_y noise.
    expected = generator.base_mean[labels] + torch.einsum(
        "bij,bj->bi", generator.base_factor[labels], noise
    )
    assert torch.allclose(fake, expected, atol=1e-5)
    assert torch.allclose(soft, fake[:20], atol=1e-5)
    for digit in (0, 9):
        rows = fake[labels == digit]
        assert abs(float(rows[:, 0].mean()) - 3.0 * digit) < 0.1
        assert abs(float(rows[:, 1].std()) - 0.5) < 0.05


def test_gaussian_base_needs_noise_as_wide_as_the_data():
    with pytest.raises(ZspaceError, match="noise_dim == data_dim"):
        config_for_preset("wide-gaussian", data_dim=32)


def test_gaussian_base_run_reloads_to_the_same_samples(small_ae_run, mnist_dir, tmp_path):
    sampler = _train(tmp_path / "gauss", small_ae_run, mnist_dir, "wide-gaussian", True)
    reloaded = load_gan(tmp_path / "gauss")
    assert torch.equal(reloaded.sample(digit=4, n=8, seed=1), sampler.sample(digit=4, n=8, seed=1))
    assert float(reloaded.generator.base_factor.abs().sum()) > 0


def test_lazy_r1_penalises_every_kth_step_at_k_times_the_weight():
    from zspace.training.gan_steps import discriminator_step

    config = GANTrainingConfig.for_preset("wide-r1", r1_interval=4)
    torch.manual_seed(0)
    discriminator = Discriminator(config_for_preset("wide-r1", conditional=True))
    optimizer = torch.optim.SGD(discriminator.parameters(), lr=0.0)  # only the loss matters
    real, fake, labels = torch.randn(8, 64), torch.randn(8, 64), torch.arange(8)
    penalised = []
    for step in range(8):
        loss, terms = discriminator_step(
            config, discriminator, optimizer, real, fake, labels, step=step
        )
        penalised.append("r1" in terms)
    assert penalised == [True, False, False, False] * 2
    # On a penalised step the loss carries r1_weight * r1_interval / 2 times the penalty.
    eager = GANTrainingConfig.for_preset("wide-r1", r1_interval=1)
    plain = discriminator_step(eager, discriminator, optimizer, real, fake, labels, step=1)[0]
    lazy, terms = discriminator_step(config, discriminator, optimizer, real, fake, labels, step=0)
    extra = 0.5 * config.r1_weight * (config.r1_interval - 1) * terms["r1"]
    assert torch.allclose(lazy - plain, extra, rtol=1e-4)
    with pytest.raises(ZspaceError, match="r1_interval"):
        GANTrainingConfig.for_preset("wide-r1", r1_interval=0).validate()


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
