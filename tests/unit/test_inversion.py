"""Finding a GAN's noise for a target: the exact Jacobians, Levenberg-Marquardt refinement, the
fitted inverter (fit, save, load, refuse a mismatch) and the `zspace fit-inverter` command."""

from __future__ import annotations

import pytest
import torch

from zspace.cli.main import main
from zspace.models.gan import Generator, config_for_preset
from zspace.sampling.inversion import (
    _forward_mode_outputs_and_jacobians,
    _mlp_outputs_and_jacobians,
    invert,
    refine_noise,
)
from zspace.training.inverter import InverterTrainingConfig, fit_inverter


@pytest.mark.parametrize("preset", ["reference", "wide-r1"])
@pytest.mark.parametrize("conditional", [False, True])
def test_mlp_jacobians_match_forward_mode(preset, conditional):
    # The reference preset has ReLU, Tanh and Sigmoid layers; wide-r1 LeakyReLU.
    torch.manual_seed(0)
    generator = Generator(config_for_preset(preset, conditional=conditional)).eval()
    noise = torch.randn(3, 64)
    labels = torch.tensor([1, 5, 9]) if conditional else None
    with torch.no_grad():
        outputs, jacobians = _mlp_outputs_and_jacobians(generator, noise, labels)
        expected_outputs, expected = _forward_mode_outputs_and_jacobians(generator, noise, labels)
        assert torch.allclose(outputs, generator(noise, labels), atol=1e-5)
    assert jacobians.shape == (3, 64, 64)
    assert torch.allclose(outputs, expected_outputs, atol=1e-5)
    assert torch.allclose(jacobians, expected, atol=1e-5)
    # and the Jacobian is the real derivative: a small step moves the output as predicted
    step = 1e-3 * torch.randn(3, 64)
    with torch.no_grad():
        moved = generator(noise + step, labels)
    predicted = outputs + (jacobians @ step.unsqueeze(2)).squeeze(2)
    assert (moved - predicted).abs().max() < 1e-3 * (moved - outputs).abs().max() + 1e-5


def test_gaussian_base_takes_the_forward_mode_path():
    torch.manual_seed(0)
    generator = Generator(config_for_preset("wide-gaussian", conditional=True)).eval()
    torch.nn.init.normal_(generator.layers[-1].weight, std=0.05)  # not the zero start
    noise, labels = torch.randn(2, 64), torch.tensor([3, 4])
    with torch.no_grad():
        outputs, jacobians = _forward_mode_outputs_and_jacobians(generator, noise, labels)
        moved = generator(noise + 1e-3 * torch.eye(64)[0], labels)
    assert torch.allclose(outputs, generator(noise, labels), atol=1e-5)
    assert torch.allclose((moved - outputs) / 1e-3, jacobians[:, :, 0], atol=2e-2)


def test_refinement_finds_a_reachable_target():
    torch.manual_seed(0)
    generator = Generator(config_for_preset("wide-r1", conditional=True)).eval()
    labels = torch.tensor([0, 7])
    truth = torch.randn(2, 64)
    with torch.no_grad():
        goal = generator(truth, labels)
    start = truth + 0.5 * torch.randn(2, 64)
    with torch.no_grad():
        start_error = (generator(start, labels) - goal).pow(2).mean(1)
    found, error = refine_noise(generator, start, labels, goal, iterations=8)
    assert found.shape == (2, 64)
    assert (error < 0.05 * start_error).all()
    with torch.no_grad():  # the reported error is the real one
        assert torch.allclose(error, (generator(found, labels) - goal).pow(2).mean(1), atol=1e-5)


def test_refinement_never_makes_a_row_worse():
    # Every refused step keeps the row where it was: the objective cannot go up.
    torch.manual_seed(1)
    generator = Generator(config_for_preset("reference")).eval()
    goal = torch.randn(4, 64) * 3  # mostly out of reach
    start = torch.randn(4, 64)
    _, before = refine_noise(generator, start, None, goal, iterations=0)
    _, after = refine_noise(generator, start, None, goal, iterations=6)
    assert (after <= before + 1e-6).all()


@pytest.fixture(scope="module")
def untrained_cgan():
    """A freshly initialised conditional generator (its output depends on the noise, unlike a
    collapsed tiny GAN's) with an inverter fitted to its own samples."""
    from zspace.models.gan import CodeScaler
    from zspace.sampling.gan import GANSampler

    torch.manual_seed(0)
    config = config_for_preset("wide-r1", conditional=True)
    generator = Generator(config).eval()
    with torch.no_grad():  # outputs of about unit spread, like a trained GAN's standardised ones
        spread = generator(torch.randn(512, 64), torch.randint(0, 10, (512,))).std()
        generator.layers[-1].weight /= spread
        generator.layers[-1].bias /= spread
    sampler = GANSampler(config, generator, CodeScaler(64))
    settings = InverterTrainingConfig(steps=300, batch_size=128)
    sampler.inverter = fit_inverter(sampler, config=settings, progress=False)
    return sampler


def test_inverter_path_finds_generated_codes(untrained_cgan):
    torch.manual_seed(1)
    digits = torch.arange(10).repeat(2)
    targets = untrained_cgan.generate_codes(torch.randn(20, 64), digits)
    noise, error = invert(untrained_cgan, targets, digits)
    assert noise.shape == (20, 64) and error.shape == (20,)
    with torch.no_grad():
        guess = untrained_cgan.inverter(targets, digits)  # the scaler is the identity here
        guess_error = (untrained_cgan.generator(guess, digits) - targets).pow(2).mean(1)
        random_error = (untrained_cgan.generator(torch.randn(20, 64), digits) - targets).pow(2)
    assert guess_error.mean() < 0.5 * random_error.mean()  # the fitted guess is informed
    assert error.mean() < 0.4 * guess_error.mean()  # and the refinement closes most of the gap
    # the noise stays typical for Gaussian noise of 64 dimensions (norm near 8)
    assert (noise.norm(dim=1) - 8).abs().max() < 3


def test_cli_fit_inverter_on_a_wrong_folder_is_one_line(tmp_path, capsys):
    assert main(["fit-inverter", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
