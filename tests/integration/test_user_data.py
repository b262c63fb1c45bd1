"""The cases adversarial testing found (issue 17), end to end through the CLI: zspace never
deletes or overwrites a user's files, keeps every metric line through kills and a full disk,
and says in one line what went wrong."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from zspace.cli.main import main
from zspace.evaluation.classifier import load_eval_classifier

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import reliability_training  # noqa: E402  (the benchmark's trials, in short versions)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _one_line_error(capsys, argv) -> str:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_zspace_run_refuses_a_folder_of_user_files_and_deletes_nothing(tmp_path, capsys):
    # The reproduction: this deleted chapter1.txt within 20 seconds.
    users = tmp_path / "P"
    (users / "autoencoder").mkdir(parents=True)
    (users / "autoencoder" / "chapter1.txt").write_text("draft\n")
    before = _snapshot(users)
    err = _one_line_error(capsys, ["run", "--quick", "--out", str(users), "--no-progress"])
    assert "did not write" in err and str(users) in err
    assert _snapshot(users) == before


@pytest.mark.parametrize(
    "command",
    [
        ["train-ae", "--preset", "mlp", "--limit", "500", "--epochs", "1"],
        ["train-classifier", "--limit", "500"],
    ],
)
def test_training_refuses_an_out_that_holds_user_files(tmp_path, capsys, mnist_dir, command):
    users = tmp_path / "mine"
    (users / "samples").mkdir(parents=True)
    (users / "model.safetensors").write_bytes(b"my own model")
    (users / "metrics.jsonl").write_text("not json, my notes\n")
    (users / "samples" / "epoch_001.png").write_bytes(b"my picture")
    before = _snapshot(users)
    err = _one_line_error(capsys, [*command, "--out", str(users), "--data-dir", str(mnist_dir)])
    assert "holds files zspace did not write" in err
    assert _snapshot(users) == before


def test_train_gan_refuses_an_out_that_holds_user_files(tmp_path, capsys, small_ae_run):
    users = tmp_path / "mine"
    users.mkdir()
    (users / "generator.safetensors").write_bytes(b"mine")
    before = _snapshot(users)
    err = _one_line_error(
        capsys, ["train-gan", "--ae", str(small_ae_run), "--epochs", "1", "--out", str(users)]
    )
    assert "holds files zspace did not write" in err
    assert _snapshot(users) == before


def test_sample_and_encode_never_replace_a_file_zspace_did_not_write(
    tmp_path, capsys, web_cgan_run, small_ae_run
):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), "blue").save(photo)
    original = photo.read_bytes()
    err = _one_line_error(capsys, ["sample", str(web_cgan_run), "--out", str(photo)])
    assert "zspace did not write it" in err and photo.read_bytes() == original
    err = _one_line_error(capsys, ["sample", str(web_cgan_run), "--out", str(tmp_path)])
    assert "is a folder" in err
    theirs = tmp_path / "codes.npz"
    theirs.write_bytes(b"my data")
    err = _one_line_error(capsys, ["encode", str(small_ae_run), "--out", str(theirs)])
    assert "zspace did not write it" in err and theirs.read_bytes() == b"my data"
    # Its own output it replaces, atomically.
    grid = tmp_path / "grid.png"
    for _ in range(2):
        assert main(["sample", str(web_cgan_run), "--digit", "3", "--out", str(grid)]) == 0
    capsys.readouterr()


def test_resume_with_fewer_epochs_than_done_is_refused_and_changes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    done = reliability_training.train(run, 2)
    assert done.returncode == 0, done.stderr
    before = _snapshot(run)
    refused = reliability_training.train(run, 1, resume=True)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"zspace train-ae: error: {run} has already trained 2 epochs; --epochs 1 would not "
        "extend it (give more than 2, or drop --epochs)"
    )
    assert _snapshot(run) == before


def test_kill_9_at_random_moments_keeps_every_metric_line_and_the_weights(tmp_path):
    result = reliability_training.kill_loop(tmp_path, cycles=3, epochs=6, log=lambda line: None)
    assert result["kills"] >= 1
    assert result["metric_lines_kept"] and result["weights_identical"]
    assert result["stale_temporaries"] == []


def test_a_full_disk_during_resume_is_one_line_and_loses_nothing(tmp_path):
    result = reliability_training.full_disk(tmp_path)
    assert result["exit_code"] == 1 and result["one_line"], result["stderr"]
    assert "File too large" in result["stderr"]
    assert result["files_lost_or_changed"] == [] and result["metric_lines_kept"]
    assert result["later_resume_identical"]


def test_runs_lists_past_a_config_with_an_odd_kind(tmp_path, capsys, small_ae_run):
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"kind": ["latent-gan"]}))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"kind": 7}))
    assert main(["runs", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_first_use_of_the_evaluation_classifier_says_what_it_does(tmp_path, capsys, mnist_dir):
    load_eval_classifier(
        data_dir=mnist_dir, cache_dir=tmp_path, limit=300, epochs=1, device="cpu", progress=False
    )
    err = capsys.readouterr().err
    assert "training the evaluation classifier on the first 300 mnist training images" in err
    assert f"cached in {tmp_path}" in err and "evaluation classifier trained in" in err
    load_eval_classifier(
        data_dir=mnist_dir, cache_dir=tmp_path, limit=300, epochs=1, device="cpu", progress=False
    )
    assert capsys.readouterr().err == ""  # cached: nothing to say
