"""Autoencoder presets side by side: one budget, one measurement for every preset."""

from __future__ import annotations

import pytest

from zspace.errors import ZspaceError
from zspace.pipeline.presets_comparison import ComparisonSettings, compare_presets


@pytest.mark.parametrize(
    "settings, message",
    [
        (ComparisonSettings(presets=["resnet"]), "unknown autoencoder preset 'resnet'"),
        (ComparisonSettings(presets=[]), "at least one"),
        (ComparisonSettings(epochs=0), "at least 1"),
    ],
)
def test_bad_settings_are_one_clear_error(settings, message, tmp_path):
    with pytest.raises(ZspaceError, match=message):
        compare_presets(settings, tmp_path)
