"""zspace never touches what it did not write: the rule for `--out` folders and files, atomic
metric appends, stale temporary files, damaged weights, one-line OS errors."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from zspace.checkpoint import (
    load_module_weights,
    remove_stale_temporaries,
    save_tensors,
)
from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.files import output_file, save_json, save_npz, save_png, written_by_zspace
from zspace.pipeline.cache import Stage, StageContext, run_stages
from zspace.pipeline.config import StudyConfig
from zspace.runs import AUTOENCODER, LATENT_GAN, OWNER_FILE, RunDir, claim_folder, folder_owner
from zspace.training.loop import TrainingParts, run_epochs


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_folder_is_claimed_only_when_new_empty_or_of_the_same_kind(tmp_path):
    new = claim_folder(tmp_path / "new" / "run", AUTOENCODER)
    assert folder_owner(new) == AUTOENCODER and (new / OWNER_FILE).is_file()
    claim_folder(new, AUTOENCODER)  # the same kind again: fine
    with pytest.raises(ZspaceError, match="holds a autoencoder run, not a latent-gan"):
        claim_folder(new, LATENT_GAN)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim_folder(empty, LATENT_GAN) == empty

    users = tmp_path / "users"
    (users / "autoencoder").mkdir(parents=True)
    (users / "autoencoder" / "chapter1.txt").write_text("draft\n")
    before = _files(users)
    with pytest.raises(ZspaceError, match="holds files zspace did not write") as error:
        claim_folder(users, AUTOENCODER)
    assert "\n" not in str(error.value) and "autoencoder" in str(error.value)
    assert _files(users) == before and not (users / OWNER_FILE).exists()

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(ZspaceError, match="is not a folder"):
        claim_folder(a_file, AUTOENCODER)
    assert a_file.read_text() == "mine"


def test_a_config_of_the_same_kind_or_a_damaged_config_decides_the_owner(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(AUTOENCODER, {"model": {}})
    assert folder_owner(run.path) == AUTOENCODER
    (run.path / OWNER_FILE).unlink()
    claim_folder(run.path, AUTOENCODER)  # config.json alone proves it (runs of zspace 0.2)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"kind": 5}))  # somebody else's config.json
    with pytest.raises(ZspaceError, match="did not write"):
        claim_folder(odd, AUTOENCODER)


def test_stale_temporaries_of_killed_writes_go_at_the_next_claim_and_nothing_else(tmp_path):
    run = claim_folder(tmp_path / "run", AUTOENCODER)
    (run / "samples").mkdir()
    stale = [run / ".metrics.jsonl.a1b2c3d4.tmp", run / "samples" / ".epoch_001.png.0f0f0f0f.tmp"]
    for path in stale:
        path.write_bytes(b"half a write")
    kept = [run / "notes.tmp", run / ".hidden.tmp", run / "samples" / "x.png"]
    for path in kept:
        path.write_bytes(b"keep")
    claim_folder(run, AUTOENCODER)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in kept)
    assert remove_stale_temporaries(run) == []


def test_metric_lines_survive_a_failed_append_and_a_torn_line_is_repaired(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    run.write_config(AUTOENCODER, {})
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch, "loss": 1.0 / epoch})

    # A write that dies half-way (a full disk, a kill) leaves the old file whole.
    def fail(*args, **kwargs):
        raise OSError(27, "File too large")

    monkeypatch.setattr("zspace.checkpoint._replace", fail)
    with pytest.raises(OSError):
        run.append_metrics({"epoch": 4})
    monkeypatch.undo()
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    assert not list(run.path.glob(".*.tmp"))

    # An older zspace could leave a torn last line: reading stops there, a resume repairs it.
    with run.metrics_path.open("a") as handle:
        handle.write('{"epoch": 4, "lo')
    run.keep_metrics_through(3)
    assert run.metrics_path.read_text().endswith("}\n")
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2, 3]
    run.keep_metrics_through(2)
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]


def test_keep_metrics_through_never_empties_the_file_when_killed(tmp_path):
    # The old code truncated metrics.jsonl before writing it again: a kill in between lost
    # every line. Kill a child process at random points of the rewrite, many times.
    run = RunDir(tmp_path / "run")
    run.write_config(AUTOENCODER, {})
    for epoch in range(1, 201):
        run.append_metrics({"epoch": epoch, "padding": "x" * 200})
    script = (
        "import sys\nfrom zspace.runs import RunDir\nrun = RunDir(sys.argv[1])\n"
        "while True:\n    run.keep_metrics_through(200)\n"
    )
    for delay in (0.05, 0.1, 0.15, 0.2, 0.3):
        child = subprocess.Popen([sys.executable, "-c", script, str(run.path)])
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        assert len(run.read_metrics()) == 200


def test_weights_with_nan_are_refused_in_one_line(tmp_path):
    module = torch.nn.Linear(3, 2)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    state["weight"][0, 0] = float("nan")
    with pytest.raises(RunError, match="NaN or infinite values \\(weight\\)"):
        load_module_weights(module, state, "generator.safetensors")
    load_module_weights(module, dict(module.state_dict()), "fine.safetensors")


def test_output_files_replace_only_zspace_files(tmp_path):
    grid = save_png(Image.new("L", (4, 4)), tmp_path / "grid.png")
    arrays = save_npz(tmp_path / "codes.npz", {"codes": np.zeros((2, 3), np.float32)})
    report = save_json(tmp_path / "metrics.json", {"fd": 1.0})
    assert written_by_zspace(grid) and written_by_zspace(arrays) and written_by_zspace(report)
    assert output_file(report, (".json",)) == report
    (tmp_path / "mine.json").write_text('{"fd": 2}')
    with pytest.raises(ZspaceError, match="zspace did not write it"):
        output_file(tmp_path / "mine.json", (".json",))
    with np.load(arrays, allow_pickle=False) as npz:
        assert npz["codes"].shape == (2, 3)
    assert output_file(grid, (".png",)) == grid
    assert output_file(arrays, (".npz",)) == arrays

    theirs = tmp_path / "holiday.png"
    Image.new("RGB", (4, 4), "red").save(theirs)
    original = theirs.read_bytes()
    with pytest.raises(ZspaceError, match="zspace did not write it"):
        output_file(theirs, (".png",))
    (tmp_path / "theirs.npz").write_bytes(b"PK not really")
    with pytest.raises(ZspaceError, match="zspace did not write it"):
        output_file(tmp_path / "theirs.npz", (".npz",))
    assert theirs.read_bytes() == original

    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ZspaceError, match="is a folder; name a file"):
        output_file(tmp_path / "folder.png", (".png",))
    with pytest.raises(ZspaceError, match="must end in .png or .npz"):
        output_file(tmp_path / "x.jpg", (".png", ".npz"))
    with pytest.raises(ZspaceError, match="is a file, not a folder"):
        output_file(theirs / "inside.png", (".png",))


def test_a_study_stage_folder_zspace_did_not_make_is_kept(tmp_path):
    ran = []

    def stage_run(context):
        folder = context.stage_dir("maps")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "map.txt").write_text("ours")
        ran.append(1)
        return {}

    stage = Stage("maps", stage_run)
    context = StageContext(run_dir=tmp_path, config=StudyConfig(), log=lambda line: None)
    run_stages([stage], context)
    run_stages([stage], context, force=("maps",))  # its own folder: emptied and rerun
    assert len(ran) == 2

    users = tmp_path / "users"
    (users / "maps").mkdir(parents=True)
    (users / "maps" / "chapter1.txt").write_text("draft")
    context = StageContext(run_dir=users, config=StudyConfig(), log=lambda line: None)
    with pytest.raises(ZspaceError, match="was not written by this study"):
        run_stages([stage], context)
    assert (users / "maps" / "chapter1.txt").read_text() == "draft"


def test_operating_system_refusals_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code = main(["fewshot", "--ae", str(tmp_path / "no-ae"), "--out", str(a_file / "out")])
    assert code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert a_file.read_text() == "x"


def test_a_full_disk_during_a_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_tensors(path, {"w": torch.zeros(4)})
    before = path.read_bytes()
    script = (
        "import resource, sys, torch\n"
        "from zspace.checkpoint import save_tensors\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "save_tensors(sys.argv[1], {'w': torch.ones(100_000)})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True
    )
    assert result.returncode != 0 and "cannot write" in result.stderr
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 4096  # only the child was limited


def test_a_resume_before_the_first_checkpoint_does_not_log_an_epoch_twice(tmp_path):
    # Killed after epoch 1's metric line but before its checkpoint: epoch 1 runs again.
    run = RunDir(tmp_path / "run")
    run.write_config(AUTOENCODER, {})
    run.append_metrics({"epoch": 1, "loss": 9.0})
    parts = TrainingParts({"model": torch.nn.Linear(2, 2)})
    run_epochs(run, parts, 2, lambda epoch: {"loss": 1.0 / epoch}, "cpu", resume=True)
    assert [(r["epoch"], r["loss"]) for r in run.read_metrics()] == [(1, 1.0), (2, 0.5)]
