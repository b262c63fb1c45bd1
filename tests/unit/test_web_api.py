"""The web server's parts that need no trained run: finding a classifier run, a bad run."""

from __future__ import annotations

import json

import pytest

fastapi = pytest.importorskip("fastapi", reason="the web extra is not installed")

from zspace.web.run_info import find_classifier_run  # noqa: E402


def test_classifier_found_from_the_run_folder(tmp_path):
    gan, classifier = tmp_path / "gan", tmp_path / "clf"
    for folder, config in (
        (gan, {"kind": "latent-gan", "classifier": "../clf"}),
        (classifier, {"kind": "classifier"}),
    ):
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
    assert find_classifier_run(gan) == gan / "../clf"
    (gan / "config.json").write_text(json.dumps({"kind": "latent-gan"}))
    assert find_classifier_run(gan) is None
    (gan / "classifier").mkdir()
    (gan / "classifier" / "config.json").write_text(json.dumps({"kind": "classifier"}))
    assert find_classifier_run(gan) == gan / "classifier"


def test_serve_command_reports_a_bad_run_in_one_line(tmp_path, capsys):
    from zspace.cli.main import main

    assert main(["serve", str(tmp_path / "missing")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "does not exist" in error
