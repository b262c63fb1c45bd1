"""`zspace run`: config validation, a tiny end-to-end study, interruption and stage caching."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from zspace.cli.main import main

# Smaller than --quick: the point here is that every stage runs and the report is whole.
TINY = """
[data]
limit = 3000
[autoencoder]
epochs = 2
batch_size = 64
[presets]
names = ["mlp", "transformer-nopos"]
draws = 2
[fewshot]
draws = 2
label_sweep = [20, 50]
sweep_draws = 2
test_limit = 1000
[gan]
epochs = 2
inverter_steps = 20
[flow]
time_budget = 0  # no wall-clock budget: the flow's epochs are the same in every run
epochs = 2
distill_pairs = 500
distill_epochs = 1
[interpolation]
pairs = 2
steps = 4
[translation]
enabled = true  # a stage of --full
pairs_per_end = 1
all_pairs_methods = ["cycle"]
epochs = 1
all_pairs_epochs = 1
steps_per_epoch = 10
test_per_class = 40
[evaluation]
samples_per_digit = 20
classifier_epochs = 1
pixel_gan = true  # one stage of --full; the reference GANs stay out (the default run's way)
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def study_env(mnist_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("ZSPACE_DATA", str(mnist_dir))
    patch.setenv("ZSPACE_CACHE", str(cache))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def tiny_run(study_env, tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "run"
    assert main(["run", "--config", str(tiny_config), "--out", str(out), "--no-progress"]) == 0
    return out


def _summaries(run_dir):
    """Stage summaries without timings (which differ from run to run)."""
    result = {}
    for path in sorted((run_dir / "stages").glob("*.json")):
        summary = json.loads(path.read_text())["summary"]
        result[path.stem] = json.loads(json.dumps(summary), object_hook=_without_timings)
    return result


def _without_timings(value: dict) -> dict:
    """A JSON object without its timing keys, and a table without its timing columns."""
    kept = {
        k: v
        for k, v in value.items()
        if "seconds" not in k and "per_s" not in k and k != "time_budget"
    }
    headers = kept.get("headers")
    if isinstance(headers, list) and "rows" in kept:
        columns = [i for i, header in enumerate(headers) if not header.startswith("time")]
        kept["headers"] = [headers[i] for i in columns]
        kept["rows"] = [[row[i] for i in columns] for row in kept["rows"]]
    return kept


def test_tiny_study_writes_every_section(tiny_run):
    report = (tiny_run / "report.md").read_text()
    for heading in (
        "## Few-shot transfer",
        "## Autoencoder",
        "## Autoencoder presets, with and without position encodings",
        "## Latent GAN samples",
        "## Interpolation",
        "## Class-to-class translation",
        "### The study's hypotheses",
        "## Digit on demand",
        "## Evaluation",
        "## Which model to serve",
        "## Training curves",
        "## Time per stage",
        "## Versions, seed and hardware",
    ):
        assert heading in report
    figures = [
        line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")
    ]
    assert len(figures) >= 10
    for figure in figures:
        with Image.open(tiny_run / figure) as picture:
            picture.verify()
            assert picture.format == "PNG"
    summaries = _summaries(tiny_run)
    assert summaries["cgan-default"]["epochs"] == 2 and "cgan-reference" not in summaries
    # only the cGAN to serve gets a noise inverter, and the report says how to serve it
    assert summaries["cgan-default"]["inverter"] and not summaries["gan-default"]["inverter"]
    assert (tiny_run / "cgan-default" / "inverter.safetensors").is_file()
    assert "`zspace serve cgan-default`" in report
    assert summaries["flow"]["epochs"] == 2 and summaries["flow-distilled"]["pairs"] == 500
    assert summaries["flow-distilled"]["sampling"]["steps"] == 1
    evaluation = json.loads((tiny_run / "stages" / "evaluation.json").read_text())["summary"]
    rows = evaluation["rows"]
    generators = [
        "cgan-default",
        "gan-default",
        "flow",
        "flow-distilled",
        "gmm-baseline",
        "pixel-cgan",
    ]
    assert set(rows) == {
        "reconstructions (ceiling)",
        "training reconstructions (perfect code sampler)",
        *generators,
    }
    assert all(row["fd_train"] > 0 for row in rows.values())
    assert all(rows[name]["train_seconds"] > 0 for name in generators)
    assert all(rows[name]["images_per_second"] > 0 for name in generators)
    # the distilled generator's training time includes its teacher's
    assert rows["flow-distilled"]["train_seconds"] > rows["flow"]["train_seconds"]
    assert "It chooses **`" in report or "No generator reaches 99%" in report
    assert "FD and recall against training seconds" in report
    assert [row["preset"] for row in summaries["ae-presets"]["rows"]] == [
        "mlp",
        "transformer-nopos",
    ]
    assert "training reconstructions (perfect code sampler)" in summaries["evaluation"]["rows"]
    translation = summaries["translation"]
    assert len(translation["pairs"]) == 2 and len(translation["similarity"]) == 45
    assert {(r["method"], r["scope"]) for r in translation["rows"]} == {
        *((method, "pair") for method in ("regular", "cycle", "paired", "restyle", "shift")),
        ("cycle", "all"),
    }
    assert {h["hypothesis"] for h in translation["hypotheses"]} == {"regular", "cycle", "paired"}
    html = (tiny_run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)
    assert "http://" not in html and "https://" not in html  # opens offline


def test_rerun_skips_finished_stages_and_force_redoes_one(tiny_run, tiny_config, capsys):
    capsys.readouterr()
    assert (
        main(
            [
                "run",
                "--config",
                str(tiny_config),
                "--out",
                str(tiny_run),
                "--no-progress",
                "--force",
                "latent-map",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "[autoencoder] up to date, skipped" in out
    assert "[latent-map] running" in out
    assert (
        main(["run", "--config", str(tiny_config), "--out", str(tiny_run), "--force", "nope"]) == 1
    )


def test_interrupted_run_finishes_like_an_uninterrupted_one(
    tiny_run, tiny_config, tmp_path, kill_after_checkpoint
):
    out = tmp_path / "run"
    # Ctrl-C in the middle of a GAN's training; the CLI answers "interrupted" and exit code 130.
    with kill_after_checkpoint(epoch=1, match="gan-default"):
        assert (
            main(["run", "--config", str(tiny_config), "--out", str(out), "--no-progress"]) == 130
        )
    assert (out / "stages" / "gan-default.started").is_file()
    assert not (out / "stages" / "gan-default.json").exists()
    assert main(["run", "--config", str(tiny_config), "--out", str(out), "--no-progress"]) == 0
    resumed, uninterrupted = _summaries(out), _summaries(tiny_run)
    # The pixel-space baseline trains for a wall-clock budget, so how far it gets differs from
    # run to run by design; everything else must match exactly.
    for summaries in (resumed, uninterrupted):
        summaries.pop("pixel-cgan")
        summaries["evaluation"]["rows"].pop("pixel-cgan")
    assert resumed == uninterrupted


def test_changed_setting_invalidates_dependent_stages(tiny_run, tiny_config, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    changed = tmp_path / "changed.toml"
    changed.write_text(TINY.replace("pairs = 2", "pairs = 3"))
    capsys.readouterr()
    assert main(["run", "--config", str(changed), "--out", str(copy), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "[interpolation] running" in out
    assert "[gan-default] up to date, skipped" in out
    assert len(_summaries(copy)["interpolation"]["pairs"]) == 3


def test_runs_lists_run_folders(tiny_run, capsys):
    assert main(["runs", str(tiny_run.parent)]) == 0
    out = capsys.readouterr().out
    assert "study" in out and str(tiny_run) in out
