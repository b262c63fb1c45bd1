"""Latent and pixel GANs: architectures, training, resume, sampling, zspace.load and the CLI."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zspace.errors import ZspaceError
from zspace.models.gan import (
    CodeScaler,
    Discriminator,
    Generator,
    config_for_preset,
)
from zspace.models.presets import GAN_PRESETS
from zspace.training.gan import GANTrainingConfig


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


# Every schedule, the moving average and the R1 penalty must resume exactly too.


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
