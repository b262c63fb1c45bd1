"""Model cards of small real MNIST runs, and `zspace evaluate` adding its figures to a card."""

from __future__ import annotations

import json
import shutil

from card_helpers import figures, split_card

from zspace.cli.main import main
from zspace.data.registry import DATASETS
from zspace.runs import RunDir
from zspace.training.cards import CARD_FILE, EVALUATION_FILE


def card(run) -> tuple[dict, str]:
    return split_card((run / CARD_FILE).read_text())


def test_autoencoder_card(small_ae_run):
    metadata, body = card(small_ae_run)
    last = RunDir(small_ae_run).read_metrics()[-1]
    assert metadata["datasets"] == ["mnist"]
    assert figures(metadata) == {"test reconstruction MSE per pixel": last["test_mse"]}
    assert metadata["zspace"]["command"] == (
        "zspace train-ae --preset conv --latent-dim 64 --limit 10000 --epochs 3 "
        f"--batch-size 64 --lr 0.003 --loss bce --seed 0 --out {small_ae_run} --device cpu"
    )
    assert metadata["zspace"]["exact_command"] is True
    for spec in DATASETS["mnist"].files.values():
        assert spec.sha256_raw in body
    assert "the first 10,000 training images" in body
    assert f'zspace.load("{small_ae_run}")' in body


def test_conditional_gan_card_and_evaluate_adds_its_figures(
    web_cgan_run, small_ae_run, mnist_dir, tmp_path, monkeypatch
):
    metadata, body = card(web_cgan_run)
    assert "class-conditional" in metadata["tags"] and metadata["zspace"]["exact_command"]
    assert (
        f"zspace train-gan --ae {small_ae_run.resolve()} --conditional --preset reference "
        "--limit 3000 --epochs 2 --seed 0 --batch-size 128 --monitor-samples 0 "
        "--inverter-steps 100"
    ) in metadata["zspace"]["command"]
    assert "| noise inverter | yes |" in body and "--digit 7" in body
    assert "No evaluation has been written into this folder" in body

    run = tmp_path / "cgan"
    shutil.copytree(web_cgan_run, run)
    monkeypatch.setenv("ZSPACE_CACHE", str(tmp_path / "cache"))
    argv = ["evaluate", str(run), "-n", "20", "--no-ceiling", "--data-dir", str(mnist_dir)]
    argv += ["--json", str(run / EVALUATION_FILE), "--no-progress"]
    argv += ["--classifier-limit", "2000", "--classifier-epochs", "1"]
    assert main(argv) == 0
    samples = json.loads((run / EVALUATION_FILE).read_text())["samples"]
    metadata, body = card(run)
    got = figures(metadata)
    assert got["Frechet distance (evaluation.json)"] == samples["frechet_distance"]
    assert got["precision (evaluation.json)"] == samples["precision"]
    assert got["recall (evaluation.json)"] == samples["recall"]
    assert got["requested digit judged correct (evaluation.json)"] == samples["requested_accuracy"]
    assert "From `evaluation.json`" in body
