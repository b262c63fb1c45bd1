"""Finding a GAN's noise for a target: the exact Jacobians, Levenberg-Marquardt refinement, the
fitted inverter (fit, save, load, refuse a mismatch) and the `zspace fit-inverter` command."""

from __future__ import annotations

import json

import pytest
import torch

from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.models.gan import Generator, config_for_preset
from zspace.sampling.gan import load_gan
from zspace.sampling.inversion import (
    INVERTER_FILE,
    _forward_mode_outputs_and_jacobians,
    _mlp_outputs_and_jacobians,
    invert,
    invert_generator,
    load_inverter,
    refine_noise,
)
from zspace.training.gan import training_data
from zspace.training.inverter import InverterTrainingConfig, fit_inverter, save_inverter


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
def cgan_with_inverter(web_cgan_run):
    return load_gan(web_cgan_run)


def test_run_trained_with_inverter_steps_loads_its_inverter(cgan_with_inverter, web_cgan_run):
    assert (web_cgan_run / INVERTER_FILE).is_file()
    assert cgan_with_inverter.inverter is not None
    assert cgan_with_inverter.inverter.conditional


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


def test_without_inverter_invert_falls_back_to_adam(cgan_with_inverter):
    inverter, cgan_with_inverter.inverter = cgan_with_inverter.inverter, None
    try:
        targets = cgan_with_inverter.generate_codes(torch.randn(2, 64), torch.tensor([1, 2]))
        first = invert(cgan_with_inverter, targets, torch.tensor([1, 2]), seed=3, steps=20)
        again = invert_generator(
            cgan_with_inverter, targets, torch.tensor([1, 2]), steps=20, restarts=8, seed=3
        )
    finally:
        cgan_with_inverter.inverter = inverter
    assert torch.equal(first[0], again[0])


def test_fitting_is_seeded_and_lowers_the_guess_error(cgan_with_inverter, web_cgan_run, mnist_dir):
    data, labels = training_data(cgan_with_inverter, web_cgan_run, mnist_dir)
    settings = InverterTrainingConfig(steps=30, batch_size=64, seed=5)
    first = fit_inverter(cgan_with_inverter, data, labels, settings, progress=False)
    second = fit_inverter(cgan_with_inverter, data, labels, settings, progress=False)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    longer = fit_inverter(
        cgan_with_inverter,
        data,
        labels,
        InverterTrainingConfig(steps=150, batch_size=64, seed=5),
        progress=False,
    )
    goal = cgan_with_inverter.scaler(data[-100:])

    def guess_error(inverter):
        with torch.no_grad():
            guess = inverter(goal, labels[-100:])
            return (cgan_with_inverter.generator(guess, labels[-100:]) - goal).pow(2).mean()

    untrained = fit_inverter(
        cgan_with_inverter, data, labels, InverterTrainingConfig(steps=1), progress=False
    )
    assert guess_error(longer) < guess_error(untrained)


def test_save_load_round_trip_and_mismatch(cgan_with_inverter, tmp_path):
    inverter = cgan_with_inverter.inverter
    save_inverter(tmp_path, inverter, InverterTrainingConfig(steps=7))
    loaded = load_inverter(tmp_path, cgan_with_inverter.config)
    for a, b in zip(inverter.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert load_inverter(tmp_path / "empty", cgan_with_inverter.config) is None
    other = config_for_preset("reference", conditional=False)
    with pytest.raises(RunError, match="different GAN"):
        load_inverter(tmp_path, other)
    (tmp_path / INVERTER_FILE).write_bytes(b"not safetensors")
    with pytest.raises(RunError):
        load_inverter(tmp_path, cgan_with_inverter.config)


def test_bad_training_settings_are_refused(cgan_with_inverter):
    with pytest.raises(ZspaceError, match="steps"):
        fit_inverter(cgan_with_inverter, config=InverterTrainingConfig(steps=0))
    with pytest.raises(ZspaceError, match="labels"):
        fit_inverter(cgan_with_inverter, torch.zeros(4, 64), None, progress=False)


def test_cli_fit_inverter_writes_one_and_reports(web_cgan_run, mnist_dir, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(web_cgan_run, run)
    (run / INVERTER_FILE).unlink()
    argv = ["fit-inverter", str(run), "--steps", "40", "--data-dir", str(mnist_dir)]
    assert main([*argv, "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["steps"] == 40 and report["inversion_error"] >= 0
    assert load_gan(run).inverter is not None


def test_cli_fit_inverter_on_a_wrong_folder_is_one_line(tmp_path, capsys):
    assert main(["fit-inverter", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
