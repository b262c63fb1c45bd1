"""Autoencoder presets side by side: one budget, one measurement for every preset."""

from __future__ import annotations

from zspace.pipeline.presets_comparison import ComparisonSettings, compare_presets, markdown_table


def test_every_preset_gets_every_column(mnist_dir, tmp_path):
    settings = ComparisonSettings(
        presets=["mlp", "transformer-nopos"], epochs=1, limit=600, batch_size=64, draws=2
    )
    lines = []
    rows = compare_presets(settings, tmp_path, mnist_dir, progress=False, log=lines.append)
    assert [row["preset"] for row in rows] == ["mlp", "transformer-nopos"]
    for row in rows:
        assert 0 < row["test_mse"] < 0.25
        assert row["seconds_per_epoch"] > 0 and row["encode_decode_images_per_s"] > 0
        assert 0 < row["encoder_parameters"] < row["parameters"]
        assert row["fewshot"]["draws"] == 2 and 0.05 < row["fewshot"]["mean"] <= 1
        assert (tmp_path / row["preset"] / "model.safetensors").is_file()
    assert len(lines) == 4
    table = markdown_table(rows)
    assert table.count("\n") == 4 and "| transformer-nopos |" in table
    # A second call finds the finished runs and measures them again without retraining.
    again = compare_presets(settings, tmp_path, mnist_dir, progress=False, log=lines.append)
    assert [r["test_mse"] for r in again] == [r["test_mse"] for r in rows]
