"""Model cards (zspace.training.cards): README.md in every run folder, on runs that the
library's own writers make from small random data (no MNIST here)."""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import yaml
from card_helpers import figures, split_card
from safetensors.torch import load_file

from zspace.cli.main import main
from zspace.data.registry import DATASETS
from zspace.errors import ZspaceError
from zspace.evaluation.gmm import fit_gmm_baseline
from zspace.fewshot.selftrain import SelfTrainingConfig, train_and_save_classifier
from zspace.models.presets import ae_config_for_preset, transformer_config
from zspace.pipeline.config import StudyConfig
from zspace.pipeline.report import write_report
from zspace.pipeline.stages.evaluation import TEST_RECONSTRUCTIONS, TRAIN_RECONSTRUCTIONS
from zspace.runs import STUDY, RunDir
from zspace.training import autoencoder as autoencoder_module
from zspace.training import gan as gan_module
from zspace.training.autoencoder import AETrainingConfig, train_autoencoder
from zspace.training.cards import (
    CARD_FILE,
    EVALUATION_FILE,
    card_text,
    is_zspace_card,
    run_environment,
    to_yaml,
    write_card,
)
from zspace.training.gan import train_gan


def front_matter(path) -> dict:
    text = path.read_text()
    assert text.startswith("---\n")
    return split_card(text)[0]


def command_argv(metadata: dict, out) -> list[str]:
    """The card's command as argv for `zspace.cli.main.main`, writing into `out`."""
    argv = shlex.split(metadata["zspace"]["command"])[1:]
    argv[argv.index("--out") + 1] = str(out)
    return argv + ["--no-progress"] if argv[0].startswith("train-") else argv


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny dataset and an autoencoder, a conditional latent GAN and a GMM made from it."""
    root = tmp_path_factory.mktemp("cards")
    rng = np.random.default_rng(0)
    data = root / "digits.npz"
    np.savez(
        data,
        images=(rng.random((240, 28, 28)) * 255).astype(np.uint8),
        labels=np.arange(240) % 10,
    )
    ae, gan, gmm = root / "ae", root / "gan", root / "gmm"
    train_autoencoder(
        ae,
        ae_config_for_preset("mlp", latent_dim=8),
        AETrainingConfig(dataset=str(data), epochs=2, batch_size=32, seed=1),
        device="cpu",
        progress=False,
    )
    model, training = gan_module.configs_for_preset(
        "reference", "latent", 8, True, dataset=str(data), epochs=2, seed=2
    )
    training.monitor_samples, training.inverter_steps, training.batch_size = 0, 0, 32
    train_gan(gan, model, training, ae_run=ae, device="cpu", progress=False)
    fit_gmm_baseline(ae, gmm, components=2, seed=3, device="cpu")
    return {"data": data, "ae": ae, "gan": gan, "gmm": gmm}


def test_yaml_writer_round_trips_through_a_yaml_parser():
    data = {
        "plain": "zspace",
        "quoted": ["yes", "No", "null", "0.2.0", "a: b", "#x", "-x", "", " lead", "μ", "x\ny"],
        "numbers": [0, -3, 1e-05, 2.5e20, 0.1, -0.0, 3.0, math.inf, -math.inf],
        "flags": [True, False, None],
        "nested": [{"a": [1, [2, 3]], "b": {}}, [], {"c": {"d": "KL(p || q)"}}],
        "key with space": 1,
    }
    loaded = yaml.safe_load(to_yaml(data))
    assert loaded == data
    assert math.isnan(yaml.safe_load(to_yaml({"x": math.nan}))["x"])


@pytest.mark.parametrize("kind", ["ae", "gan", "gmm"])
def test_card_front_matter_parses_and_its_figures_are_the_runs(runs, kind):
    run = RunDir(runs[kind])
    metadata = front_matter(run.file(CARD_FILE))
    assert metadata["library_name"] == "zspace"
    assert metadata["datasets"] == ["digits.npz"]
    config = run.read_config()
    assert metadata["zspace"]["card"] == 1 and metadata["zspace"]["kind"] == config["kind"]
    last = run.read_metrics()[-1]
    names = {
        "ae": {"test_mse": "test reconstruction MSE per pixel"},
        "gan": {},  # the monitor was off: the GAN's records hold losses only
        "gmm": {"mean_log_likelihood": "mean log-likelihood per training code (mean over digits)"},
    }[kind]
    expected = {name: last[key] for key, name in names.items()}
    assert figures(metadata) == expected
    seconds = sum(r["seconds"] for r in run.read_metrics())
    assert metadata["zspace"]["training_seconds"] == pytest.approx(seconds, abs=1e-3)
    assert metadata["zspace"]["exact_command"] is True
    # Hardware is recorded into config.json when the run is written, and the card shows it.
    assert config["environment"]["device"] == "cpu"
    text = run.file(CARD_FILE).read_text()
    assert config["environment"]["torch"] in text and config["environment"]["cpu"] in text
    # The data's checksum: the .npz file hashed.
    assert hashlib.sha256(runs["data"].read_bytes()).hexdigest() in text
    assert "light strokes on a dark background" in text and "28x28" in text


def test_card_commands_make_the_same_models(runs, tmp_path):
    for kind, weights in (("ae", "model.safetensors"), ("gmm", "gmm.safetensors")):
        metadata = front_matter(runs[kind] / CARD_FILE)
        out = tmp_path / kind
        assert main(command_argv(metadata, out)) == 0
        first, second = load_file(str(runs[kind] / weights)), load_file(str(out / weights))
        assert first.keys() == second.keys()
        assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first), kind
    command = front_matter(runs["gan"] / CARD_FILE)["zspace"]["command"]
    assert "--conditional --preset reference" in command and "--seed 2" in command
    assert f"--ae {runs['ae'].resolve()}" in command and "--device cpu" in command
    out = tmp_path / "gan"
    assert main(command_argv(front_matter(runs["gan"] / CARD_FILE), out)) == 0
    first = load_file(str(runs["gan"] / "generator.safetensors"))
    second = load_file(str(out / "generator.safetensors"))
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)


def test_settings_no_flag_sets_are_named(runs):
    run = RunDir(runs["gan"])
    config = run.read_config()
    changed = {**config, "training": {**config["training"], "r1_weight": 0.5}}
    command = gan_module.command_for_run(run, changed)
    assert command.differences == {"training.r1_weight": (0.5, 0.0)}
    ae_config = RunDir(runs["ae"]).read_config()
    learned = transformer_config("transformer", 8, positional="learned").to_dict()
    command = autoencoder_module.command_for_run(
        RunDir(runs["ae"]), {**ae_config, "model": learned}
    )
    assert "--positional learned" in command.text() and not command.differences
    # The study's pixel GAN: a time budget, the epochs only a cap.
    model, training = gan_module.configs_for_preset(
        "wide-r1", "pixels", 0, True, epochs=10_000, time_budget=12.5, inverter_steps=0
    )
    pixels = {"kind": "pixel-gan", "model": model.to_dict(), "training": asdict(training)}
    command = gan_module.command_for_run(RunDir("runs/pixel"), pixels)
    assert not command.differences
    assert command.text() == (
        "zspace train-gan --space pixels --conditional --preset wide-r1 --epochs 10000 --seed 0 "
        "--time-budget 12.5 --batch-size 512 --inverter-steps 0 --out runs/pixel"
    )


def test_users_readme_is_never_overwritten(runs, tmp_path, capsys):
    # Training into a folder that holds the user's README.md is refused; it stays as it was.
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / CARD_FILE).write_text("# my notes\n")
    with pytest.raises(ZspaceError, match="holds files zspace did not write"):
        train_autoencoder(
            folder,
            ae_config_for_preset("mlp", latent_dim=4),
            AETrainingConfig(dataset=str(runs["data"]), epochs=1, batch_size=64),
            device="cpu",
            progress=False,
        )
    assert sorted(p.name for p in folder.iterdir()) == [CARD_FILE]
    assert (folder / CARD_FILE).read_text() == "# my notes\n"
    # A README.md put into a run folder later is the user's too: the card leaves it alone.
    run = tmp_path / "later"
    shutil.copytree(runs["ae"], run)
    (run / CARD_FILE).write_text("# my notes\n")
    assert write_card(run) is None
    assert (run / CARD_FILE).read_text() == "# my notes\n"
    assert "was not written by zspace; left it alone" in capsys.readouterr().err
    # Front matter without zspace's block is the user's too; with it, zspace rewrites the card.
    copy = tmp_path / "copy"
    shutil.copytree(runs["ae"], copy)
    theirs = "---\nlibrary_name: zspace\nzspace_like: 1\n---\n# theirs\n"
    (copy / CARD_FILE).write_text(theirs)
    assert write_card(copy, log=lambda line: None) is None
    assert (copy / CARD_FILE).read_text() == theirs
    shutil.copy(runs["ae"] / CARD_FILE, copy / CARD_FILE)
    assert is_zspace_card(copy / CARD_FILE)
    assert write_card(copy) == copy / CARD_FILE


def test_old_runs_say_what_was_not_recorded(runs, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(runs["ae"], copy)
    config = json.loads((copy / "config.json").read_text())
    del config["environment"]
    (copy / "config.json").write_text(json.dumps(config))
    (copy / "metrics.jsonl").unlink()
    text = card_text(copy)
    assert "Hardware: not recorded" in text and "Training time: not recorded" in text
    assert "model-index" not in text


def test_registered_datasets_cite_the_registry_checksums(runs, tmp_path):
    copy = tmp_path / "mnist"
    shutil.copytree(runs["ae"], copy)
    config = json.loads((copy / "config.json").read_text())
    config["training"].update(dataset="mnist", limit=1000)
    (copy / "config.json").write_text(json.dumps(config))
    text = card_text(copy)
    for spec in DATASETS["mnist"].files.values():
        assert spec.sha256_raw in text and spec.md5 in text
    assert "the first 1,000 training images" in text
    assert front_matter_of(text)["datasets"] == ["mnist"]
    assert "--limit 1000" in front_matter_of(text)["zspace"]["command"]


def front_matter_of(text: str) -> dict:
    return split_card(text)[0]


def _study_with_runs(runs, root):
    """A study folder (zspace run's layout) holding an autoencoder and a GMM stage."""
    study = root / "study"
    RunDir(study).write_config(STUDY, {"study": StudyConfig().to_dict()})
    (study / "stages").mkdir()
    for stage in ("autoencoder", "gmm-baseline"):  # what zspace run writes as a stage starts
        (study / "stages" / f"{stage}.started").write_text("{}")
    shutil.copytree(runs["ae"], study / "autoencoder")
    fit_gmm_baseline(study / "autoencoder", study / "gmm-baseline", components=2, device="cpu")
    return study


def test_zspace_run_cards_name_the_stage_and_the_report_links_them(runs, tmp_path):
    study = _study_with_runs(runs, tmp_path)
    row = {
        "count": 100,
        "requested_accuracy": 0.75,
        "frechet_distance": 12.5,
        "precision": 0.5,
        "recall": 0.25,
        "kl_from_uniform": 0.01,
        "diversity": 0.9,
    }
    ceiling = {**row, "frechet_distance": 1.5}
    metrics = RunDir(study / "autoencoder").read_metrics()
    records = {
        "autoencoder": {
            "seconds": 1.0,
            "summary": {
                "preset": "mlp",
                "epochs": metrics[-1]["epoch"],
                "test_mse": metrics[-1]["test_mse"],
                "training_seconds": 1.0,
                "figures": {
                    "reconstructions": "autoencoder/reconstructions.png",
                    "loss_curve": "autoencoder/loss_curve.png",
                },
            },
        },
        "gmm-baseline": {"seconds": 1.0, "summary": {"components": 2}},
        "evaluation": {
            "seconds": 1.0,
            "summary": {
                "samples_per_digit": 10,
                "classifier_test_accuracy": 0.98,
                "rows": {
                    TEST_RECONSTRUCTIONS: ceiling,
                    TRAIN_RECONSTRUCTIONS: row,
                    "gmm-baseline": row,
                },
            },
        },
    }
    write_report(study, records, StudyConfig(), "seed = 0\n")

    gmm = front_matter(study / "gmm-baseline" / CARD_FILE)
    assert gmm["zspace"]["stage"] == "gmm-baseline" and gmm["zspace"]["study"] == str(study)
    got = figures(gmm)
    for key, name in (("frechet_distance", "Frechet distance"), ("recall", "recall")):
        assert got[f"{name} (evaluation.json)"] == row[key]
    text = (study / "gmm-baseline" / CARD_FILE).read_text()
    assert "stage `gmm-baseline` of the study" in text and "--force gmm-baseline" in text
    evaluation = json.loads((study / "gmm-baseline" / EVALUATION_FILE).read_text())
    assert evaluation["samples"] == row and evaluation["ceiling"] == ceiling
    # A run the user put into the study folder was not made by a stage.
    shutil.copytree(runs["gmm"], study / "mine")
    assert "stage" not in front_matter_of(card_text(study / "mine"))["zspace"]
    ae = front_matter(study / "autoencoder" / CARD_FILE)
    assert figures(ae)["Frechet distance (evaluation.json)"] == ceiling["frechet_distance"]

    study_card = front_matter(study / CARD_FILE)
    assert study_card["zspace"]["kind"] == STUDY
    assert "[gmm-baseline/README.md](gmm-baseline/README.md)" in (study / CARD_FILE).read_text()
    report = (study / "report.md").read_text()
    assert "## Model cards" in report
    for link in ("autoencoder/README.md", "gmm-baseline/README.md", "README.md"):
        assert f"[{link}]({link})" in report
    html = (study / "report.html").read_text()
    assert "<a href='autoencoder/README.md'>autoencoder/README.md</a>" in html
    assert "<a href='README.md'>README.md</a>" in html


def test_classifier_card_has_its_accuracy_and_command(runs, tmp_path):
    out = tmp_path / "classifier"
    train_and_save_classifier(
        out, per_class=2, seed=0, config=SelfTrainingConfig(epochs=1), dataset=str(runs["data"])
    )
    metadata = front_matter(out / CARD_FILE)
    last = RunDir(out).read_metrics()[-1]
    assert figures(metadata) == {"test accuracy": last["test_accuracy"]}
    assert metadata["pipeline_tag"] == "image-classification"
    assert metadata["zspace"]["exact_command"] is True
    assert "train-classifier --per-class 2 --seed 0 --epochs 1" in metadata["zspace"]["command"]
    # A classifier saved before classifiers wrote metrics.jsonl: its config keeps the accuracy.
    (out / "metrics.jsonl").unlink()
    assert figures(front_matter_of(card_text(out))) == {"test accuracy": last["test_accuracy"]}


def test_a_gpu_run_records_the_gpu(monkeypatch):
    monkeypatch.setattr("torch.cuda.get_device_name", lambda device=None: "NVIDIA H200")
    environment = run_environment("cuda:0", processes=4)
    assert environment["device"] == "cuda" and environment["device_name"] == "NVIDIA H200"
    assert environment["processes"] == 4 and environment["torch"]
