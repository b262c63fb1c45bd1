"""Config values of the wrong type, sign or size are refused in one line, wherever they come
from: a run folder's config.json, a config dict, or a command-line flag (issue 17, item 7)."""

from __future__ import annotations

import json
import math

import pytest

from zspace import config_checks as check
from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.evaluation.classifier import EvalClassifierConfig
from zspace.fewshot.classify import load_classifier
from zspace.fewshot.cnn import DigitCNNConfig
from zspace.models.encoders import AutoencoderConfig
from zspace.models.gan import GANConfig
from zspace.models.inverter import InverterConfig
from zspace.models.transformer import TransformerOptions
from zspace.training.autoencoder import AETrainingConfig
from zspace.training.autoencoder import read_saved_configs as read_ae_configs
from zspace.training.gan import GANTrainingConfig
from zspace.training.gan import read_saved_configs as read_gan_configs


def _one_line(error: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-5, 0, "64", 64.5, 10**12, True, None, [64]])
def test_whole_number_refuses_what_is_not_one_in_range(value):
    with pytest.raises(ZspaceError) as error:
        check.whole_number("latent_dim", value, 1, 4096)
    _one_line(error, "latent_dim must be a whole number from 1 to 4096", repr(value)[:20])


@pytest.mark.parametrize(
    "value", [math.inf, -math.inf, math.nan, 0, -1e-3, 11, "0.1", True, 10**400]
)
def test_learning_rate_must_be_finite_and_positive(value):
    with pytest.raises(ZspaceError) as error:
        check.learning_rate("learning_rate", value)
    _one_line(error, "learning_rate must be a finite number above 0")


def test_a_long_value_is_cut_short_in_the_message():
    with pytest.raises(ZspaceError) as error:
        check.choice("loss", "x" * 10_000, ("bce", "mse"))
    assert len(_one_line(error, "loss must be one of bce, mse")) < 200


def test_reading_names_the_file():
    with pytest.raises(RunError) as error, check.reading("runs/a/config.json"):
        check.section({"kind": "autoencoder"}, "model")
    _one_line(error, "runs/a/config.json: the 'model' section is missing")


# --- every config refuses bad values ----------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "data", "fragment"),
    [
        (AutoencoderConfig.from_dict, {"latent_dim": -5}, "latent_dim"),
        (AutoencoderConfig.from_dict, {"latent_dim": "64"}, "latent_dim"),
        (AutoencoderConfig.from_dict, {"latent_dim": 64.5}, "latent_dim"),
        (AutoencoderConfig.from_dict, {"latent_dim": 10**12}, "latent_dim"),
        (AutoencoderConfig.from_dict, {"channels": [-1, 48]}, "channels"),
        (AutoencoderConfig.from_dict, {"channels": [24, 48, 96]}, "channels"),
        (AutoencoderConfig.from_dict, {"hidden_dims": "512"}, "hidden_dims"),
        (AutoencoderConfig.from_dict, {"extra": []}, "extra"),
        (AutoencoderConfig.from_dict, {"colour": 1}, "unknown autoencoder config keys"),
        (AutoencoderConfig.from_dict, [1, 2], "must be a JSON object"),
        (GANConfig.from_dict, {"noise_dim": 0}, "noise_dim"),
        (GANConfig.from_dict, {"generator_layers": [[10**9, "relu"]]}, "generator_layers"),
        (GANConfig.from_dict, {"generator_layers": [[64, "swish"]]}, "activation"),
        (GANConfig.from_dict, {"conditional": "yes"}, "conditional"),
        (GANTrainingConfig.from_dict, {"auxiliary_weight": "x"}, "auxiliary_weight"),
        (GANConfig.from_dict, None, "must be a JSON object"),
        (InverterConfig.from_dict, {"data_dim": 64, "noise_dim": 64}, "missing"),
        (
            InverterConfig.from_dict,
            {"data_dim": 64, "noise_dim": 64, "num_classes": 0, "hidden_dims": [-1]},
            "hidden_dims",
        ),
        (DigitCNNConfig.from_dict, {"channels": [16]}, "channels"),
        (DigitCNNConfig.from_dict, {"deskew": 1}, "deskew"),
        (EvalClassifierConfig.from_dict, {"dropout": 1.5}, "dropout"),
        (EvalClassifierConfig.from_dict, {"feature_dim": 0}, "feature_dim"),
        (AETrainingConfig.from_dict, {"learning_rate": math.inf}, "learning_rate (--lr)"),
        (AETrainingConfig.from_dict, {"epochs": "5"}, "epochs (--epochs)"),
        (AETrainingConfig.from_dict, {"seed": -1}, "seed"),
        (AETrainingConfig.from_dict, {"loss": "l1"}, "loss"),
        (AETrainingConfig.from_dict, "training", "must be a JSON object"),
        (GANTrainingConfig.from_dict, {"learning_rate_g": math.nan}, "learning_rate_g"),
        (GANTrainingConfig.from_dict, {"betas": [0.5]}, "betas"),
        (GANTrainingConfig.from_dict, {"betas": [0.5, 2.0]}, "betas"),
        (GANTrainingConfig.from_dict, {"time_budget": math.inf}, "time_budget"),
        (GANTrainingConfig.from_dict, {"ema_decay": 1.0}, "ema_decay"),
        (GANTrainingConfig.from_dict, {"batch_size": 0}, "batch_size"),
        (TransformerOptions.from_extra, {"depth": 10**6}, "transformer depth"),
        (TransformerOptions.from_extra, {"patch": 4.0}, "transformer patch"),
        (TransformerOptions.from_extra, {"width": True}, "transformer width"),
        (TransformerOptions.from_extra, [[1, 2, 3]], "must be a JSON object"),  # found by fuzzing
    ],
)
def test_configs_refuse_bad_values_in_one_line(build, data, fragment):
    with pytest.raises(ZspaceError) as error:
        build(data)
    _one_line(error, fragment)


def test_good_configs_round_trip():
    for config in (
        AutoencoderConfig(),
        GANConfig(),
        DigitCNNConfig(),
        EvalClassifierConfig(),
        AETrainingConfig(),
        GANTrainingConfig(),
    ):
        assert type(config).from_dict(json.loads(json.dumps(config.__dict__))) == config
    inverter = InverterConfig()
    assert InverterConfig.from_dict(inverter.to_dict()) == inverter


def test_configs_are_checked_when_built_directly_too():
    # so a flag or a pipeline setting is refused before any network or folder exists
    with pytest.raises(ZspaceError, match="latent_dim"):
        AutoencoderConfig(latent_dim=100_000_000)
    with pytest.raises(ZspaceError, match="learning_rate"):
        AETrainingConfig(learning_rate=math.inf)


# --- run folders ---------------------------------------------------------------------------------


def _ae_run(tmp_path, **model_changes):
    config = {
        "kind": "autoencoder",
        "model": {**AutoencoderConfig().to_dict(), **model_changes},
        "training": AETrainingConfig().__dict__,
    }
    run = tmp_path / "ae"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config))
    return run, config


@pytest.mark.parametrize(
    "changes",
    [
        {"latent_dim": -5},
        {"latent_dim": "64"},
        {"latent_dim": 64.5},
        {"latent_dim": 10**12},
        {"channels": [-1, 48]},
    ],
)
def test_a_tampered_autoencoder_config_names_the_file_and_field(tmp_path, changes):
    run, _ = _ae_run(tmp_path, **changes)
    with pytest.raises(RunError) as error:
        read_ae_configs(run)
    _one_line(error, str(run / "config.json"), next(iter(changes)))


def test_a_missing_model_section_is_one_line(tmp_path, capsys):
    run, config = _ae_run(tmp_path)
    del config["model"]
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError) as error:
        read_ae_configs(run)
    _one_line(error, "'model' section is missing")
    assert main(["train-ae", "--resume", "--out", str(run), "--epochs", "9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'model' section is missing" in err


def test_a_tampered_gan_config_is_one_line(tmp_path):
    run = tmp_path / "gan"
    run.mkdir()
    training = {"learning_rate_g": 1e999, "betas": [0.5, 0.999]}
    model = {**GANConfig().to_dict(), "noise_dim": -1}
    for bad, fragment in ((model, "noise_dim"), ({"training": training}, "learning_rate_g")):
        sections = {"model": GANConfig().to_dict(), "training": {}}
        sections.update({"model": bad} if bad is model else bad)
        (run / "config.json").write_text(json.dumps({"kind": "latent-gan", **sections}))
        with pytest.raises(RunError) as error:
            read_gan_configs(run)
        _one_line(error, str(run / "config.json"), fragment)


def test_a_tampered_classifier_config_names_the_file(tmp_path):
    run = tmp_path / "clf"
    run.mkdir()
    config = {"kind": "classifier", "model": {"channels": [-1, 32]}, "training": {}}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError) as error:
        load_classifier(run)
    _one_line(error, str(run / "config.json"), "channels")


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--lr", "inf"], "argument --lr: expected a finite number"),
        (["--lr", "nan"], "argument --lr: expected a finite number"),
        (["--lr", "1e300"], "argument --lr: expected a learning rate of at most 10"),
        (["--latent-dim", "100000000"], "argument --latent-dim: expected a whole number from 1"),
    ],
)
def test_bad_training_flags_are_one_line_and_write_nothing(tmp_path, capsys, flags, fragment):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train-ae", "--out", str(out), "--epochs", "1", *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    # nothing written, so a corrected rerun is not blocked by a folder holding a config
    assert not out.exists()
