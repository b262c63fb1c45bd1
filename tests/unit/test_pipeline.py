"""`zspace run`: config validation, a tiny end-to-end study, interruption and stage caching."""

from __future__ import annotations

import pytest

from zspace.cli.main import main
from zspace.errors import ZspaceError
from zspace.pipeline.config import config_to_toml, load_study_config
from zspace.pipeline.runner import study_stages

# Smaller than --quick: the point here is that every stage runs and the report is whole.


def test_defaults_reproduce_the_reference_study():
    config = load_study_config()
    assert config.fewshot.labels == 50 and config.fewshot.draws == 20
    assert config.fewshot.heads[0] == "(softmax,10)" and len(config.fewshot.heads) == 5
    assert "reference" in config.gan.presets and "default" in config.gan.presets


def test_stages_come_in_order_after_what_they_read():
    stages = study_stages(load_study_config())
    assert [stage.name for stage in stages] == [
        "autoencoder",
        "eval-classifier",
        "latent-map",
        "ae-presets",
        "fewshot",
        "gan-reference",
        "cgan-reference",
        "gan-default",
        "cgan-default",
        "gmm-baseline",
        "pixel-cgan",
        "interpolation",
        "evaluation",
    ]
    for index, stage in enumerate(stages):
        assert set(stage.depends_on) <= {earlier.name for earlier in stages[:index]}
    no_comparison = load_study_config()
    no_comparison.presets.names = []
    assert "ae-presets" not in [stage.name for stage in study_stages(no_comparison)]


def test_print_config_round_trips(tmp_path, capsys):
    assert main(["run", "--quick", "--print-config"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "c.toml").write_text(text)
    assert load_study_config(tmp_path / "c.toml") == load_study_config(quick=True)
    assert config_to_toml(load_study_config(tmp_path / "c.toml")).strip() == text.strip()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[gan]\nepochz = 3\n", "unknown setting 'gan.epochz'"),
        ("[gan]\nepochs = 'three'\n", "gan.epochs must be int"),
        ("seed = -1\n", "seed must be >= 0"),
        ("[fewshot]\nheads = 5\n", "fewshot.heads must be a list"),
        ("[autoencoder]\nlearning_rate = true\n", "autoencoder.learning_rate must be float"),
        ("[data\n", "not valid TOML"),
        ("[nonsense]\nx = 1\n", "unknown setting 'nonsense'"),
        ("[presets]\nnames = ['resnet']\n", "unknown autoencoder preset 'resnet'"),
    ],
)
def test_config_mistakes_are_one_clear_line(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ZspaceError, match=message.replace("(", r"\(")):
        load_study_config(path)
    assert main(["run", "--config", str(path), "--print-config"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.split("'")[0] in err[0]
