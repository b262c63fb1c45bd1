"""MNIST-style image preparation, saved classifiers and `zspace classify`."""

from __future__ import annotations

import pytest
from PIL import Image

from zspace.cli.main import main
from zspace.errors import ZspaceError
from zspace.fewshot.classify import prepare_image


def test_blank_or_unreadable_images_are_user_errors(tmp_path):
    Image.new("L", (40, 40), 255).save(tmp_path / "blank.png")
    with pytest.raises(ZspaceError, match="blank"):
        prepare_image(tmp_path / "blank.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ZspaceError, match="not an image"):
        prepare_image(tmp_path / "junk.png")


def test_classify_with_a_missing_model_is_one_line_error(tmp_path, capsys):
    Image.new("L", (28, 28), 0).save(tmp_path / "x.png")
    assert main(["classify", str(tmp_path / "x.png"), "--model", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
