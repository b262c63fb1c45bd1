"""`zspace run`: config validation, a tiny end-to-end study, interruption and stage caching."""

from __future__ import annotations

import pytest

from zspace.cli.main import main
from zspace.errors import ZspaceError
from zspace.pipeline.cache import stage_key
from zspace.pipeline.config import config_to_toml, load_study_config
from zspace.pipeline.document import Document
from zspace.pipeline.report import _serve_section, serve_choice
from zspace.pipeline.runner import study_stages
from zspace.pipeline.stages.evaluation import TEST_RECONSTRUCTIONS, TRAIN_RECONSTRUCTIONS

# Smaller than --quick: the point here is that every stage runs and the report is whole.


DEFAULT_STAGES = [
    "autoencoder",
    "eval-classifier",
    "latent-map",
    "ae-presets",
    "fewshot",
    "gan-default",
    "cgan-default",
    "flow",
    "flow-distilled",
    "gmm-baseline",
    "interpolation",
    "evaluation",
]
# `--full` adds the reference GAN presets (before the default ones) and the pixel-space cGAN.
FULL_STAGES = [
    *DEFAULT_STAGES[:5],
    "gan-reference",
    "cgan-reference",
    *DEFAULT_STAGES[5:10],
    "pixel-cgan",
    "interpolation",
    "translation",
    "evaluation",
]


def test_defaults_keep_the_reference_heads_and_full_adds_the_reference_gans():
    config = load_study_config()
    assert config.fewshot.labels == 50 and config.fewshot.draws == 20
    assert config.fewshot.heads[0] == "(softmax,10)" and len(config.fewshot.heads) == 5
    assert config.gan.presets == ["default"] and not config.evaluation.pixel_gan
    assert config.flow.enabled and config.flow.distill and config.flow.time_budget == 0.0
    full = load_study_config(full=True)
    assert full.gan.presets == ["reference", "default"] and full.evaluation.pixel_gan
    assert full.flow == config.flow and full.fewshot == config.fewshot


def test_quick_and_full_combine():
    """--quick --full: the full stage list on the quick subsets and epochs."""
    quick, both = load_study_config(quick=True), load_study_config(quick=True, full=True)
    assert both.gan.presets == ["reference", "default"] and both.evaluation.pixel_gan
    assert both.gan.epochs == quick.gan.epochs == 6 and both.gan.reference_epochs == 3
    assert both.data == quick.data and both.flow == quick.flow
    assert (quick.flow.epochs, quick.flow.distill_pairs, quick.flow.distill_epochs) == (5, 4000, 2)
    assert [stage.name for stage in study_stages(quick)] == DEFAULT_STAGES
    assert [stage.name for stage in study_stages(both)] == FULL_STAGES


def test_full_reuses_the_default_runs_stages():
    """Settings that only choose stages (gan.presets, evaluation.pixel_gan) leave the keys of
    the stages both runs have alone: `zspace run --full` after `zspace run` in one folder only
    adds stages (and redoes the evaluation, which has more rows)."""
    default, full = load_study_config(), load_study_config(full=True)

    def keys(config):
        found = {}
        for stage in study_stages(config):
            dependencies = [found[name] for name in stage.depends_on]
            found[stage.name] = stage_key(stage, config, dependencies)
        return found

    default_keys, full_keys = keys(default), keys(full)
    shared = [name for name in default_keys if name != "evaluation"]
    assert all(default_keys[name] == full_keys[name] for name in shared)
    assert default_keys["evaluation"] != full_keys["evaluation"]
    # a distillation setting redoes the distilled flow, not the flow it distils
    changed = load_study_config()
    changed.flow.distill_pairs = 1000
    changed_keys = keys(changed)
    assert changed_keys["flow"] == default_keys["flow"]
    assert changed_keys["flow-distilled"] != default_keys["flow-distilled"]


def test_stages_come_in_order_after_what_they_read():
    stages = study_stages(load_study_config())
    assert [stage.name for stage in stages] == DEFAULT_STAGES
    for config in (load_study_config(), load_study_config(full=True)):
        stages = study_stages(config)
        for index, stage in enumerate(stages):
            assert set(stage.depends_on) <= {earlier.name for earlier in stages[:index]}
    no_comparison = load_study_config()
    no_comparison.presets.names = []
    assert "ae-presets" not in [stage.name for stage in study_stages(no_comparison)]
    no_distill = load_study_config()
    no_distill.flow.distill = False
    names = [stage.name for stage in study_stages(no_distill)]
    assert "flow" in names and "flow-distilled" not in names
    no_flow = load_study_config()
    no_flow.flow.enabled = False
    assert not {"flow", "flow-distilled"} & {stage.name for stage in study_stages(no_flow)}


def _row(accuracy, fd_train, fd_test=1.0):
    return {"requested_accuracy": accuracy, "fd_train": fd_train, "frechet_distance": fd_test}


def test_serve_choice_takes_the_lowest_training_fd_among_the_accurate():
    rows = {
        TEST_RECONSTRUCTIONS: _row(0.999, 0.01),  # ceilings are never chosen
        TRAIN_RECONSTRUCTIONS: _row(0.999, 0.02),
        "gan-default": _row(None, 0.1),  # unconditional: cannot draw a requested digit
        "cgan-default": _row(0.995, 1.2),
        "flow": _row(0.992, 0.5, fd_test=0.9),
        "flow-distilled": _row(0.985, 0.3),  # lower FD, but below 99%
        "gmm-baseline": _row(0.95, 3.0),
    }
    choice = serve_choice(rows)
    assert choice["name"] == "flow" and choice["rule_met"]
    # the test-set FD plays no part: a lower one elsewhere does not change the choice
    rows["cgan-default"]["frechet_distance"] = 0.01
    assert serve_choice(rows)["name"] == "flow"
    # nobody reaches 99%: the most accurate one, and the report says so
    for row in rows.values():
        if row["requested_accuracy"] is not None:
            row["requested_accuracy"] = min(row["requested_accuracy"], 0.98)
    rows["flow"]["requested_accuracy"] = 0.97
    choice = serve_choice(rows)
    assert choice["name"] == "flow-distilled" and not choice["rule_met"]
    doc = Document("t")
    _serve_section(doc, rows)
    text = doc.to_markdown()
    assert "No generator reaches 99%" in text and "`zspace serve flow-distilled`" in text
    assert serve_choice({"gan-default": _row(None, 0.1)}) is None


@pytest.mark.parametrize("flags", [["--quick"], ["--full"], ["--quick", "--full"]])
def test_print_config_round_trips(tmp_path, capsys, flags):
    assert main(["run", *flags, "--print-config"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "c.toml").write_text(text)
    expected = load_study_config(quick="--quick" in flags, full="--full" in flags)
    assert load_study_config(tmp_path / "c.toml") == expected
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
        ("[flow]\npreset = 'huge'\n", "unknown flow preset 'huge'"),
        ("[flow]\ntime_budget = -1\n", "flow.time_budget must be >= 0"),
        ("[flow]\ndistill_pairs = 0\n", "flow.distill_pairs must be at least 1"),
        ("[flow]\nepochs = 0\n", "flow.epochs must be at least 1"),
        ("[evaluation]\npixel_gan = 1\n", "evaluation.pixel_gan must be bool"),
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
