"""Finding a GAN's noise for a target: the exact Jacobians, Levenberg-Marquardt refinement, the
fitted inverter (fit, save, load, refuse a mismatch) and the `zspace fit-inverter` command."""

from __future__ import annotations

import json

import pytest
import torch

from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.models.gan import config_for_preset
from zspace.sampling.gan import load_gan
from zspace.sampling.inversion import (
    INVERTER_FILE,
    invert,
    invert_generator,
    load_inverter,
)
from zspace.training.gan import training_data
from zspace.training.inverter import InverterTrainingConfig, fit_inverter, save_inverter


@pytest.fixture(scope="module")
def cgan_with_inverter(web_cgan_run):
    return load_gan(web_cgan_run)


def test_run_trained_with_inverter_steps_loads_its_inverter(cgan_with_inverter, web_cgan_run):
    assert (web_cgan_run / INVERTER_FILE).is_file()
    assert cgan_with_inverter.inverter is not None
    assert cgan_with_inverter.inverter.conditional


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
