"""`zspace export --format onnx`: every graph matches the library in ONNX Runtime (1,000 inputs,
max abs error <= 1e-4), export.json describes it, and every refusal is one line.

Run folders are written with the library's own functions from small random-weight models, so
no MNIST is needed. Each export takes a few seconds (the dynamo exporter); the refusals export
nothing.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import zspace
from zspace.checkpoint import save_tensors
from zspace.cli.main import main
from zspace.errors import RunError, ZspaceError
from zspace.evaluation.gmm import WEIGHTS_FILE as GMM_WEIGHTS
from zspace.evaluation.gmm import ClassConditionalGMM
from zspace.export import export_run
from zspace.export.folder import MANIFEST, ExportFolder
from zspace.export.graphs import autoencoder_graphs
from zspace.fewshot.classify import save_classifier
from zspace.fewshot.cnn import DigitCNN, DigitCNNConfig
from zspace.models.autoencoder import Autoencoder
from zspace.models.gan import CodeScaler, Generator, config_for_preset
from zspace.models.presets import ae_config_for_preset
from zspace.runs import AUTOENCODER, GMM_BASELINE, STUDY, RunDir
from zspace.sampling.latent import decode_codes, encode_images

ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
pytest.importorskip("onnxscript", reason="the export extra is not installed")

ROWS = 1000
TOLERANCE = 1e-4
LATENT = 8


def _autoencoder(preset: str = "conv") -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(ae_config_for_preset(preset, latent_dim=LATENT)).eval()


def _write_ae_run(folder, autoencoder: Autoencoder):
    run = RunDir(folder)
    run.write_config(AUTOENCODER, {"model": autoencoder.config.to_dict(), "training": {}})
    save_tensors(run.file("model.safetensors"), autoencoder.state_dict())
    return run.path


def _write_gan_run(folder, kind: str, preset: str, conditional: bool, autoencoder=None):
    """A GAN run as `zspace train-gan` leaves it, with random weights and a non-trivial scaler
    (and Gaussian base, for the gaussian presets)."""
    torch.manual_seed(1)
    data_dim = LATENT if autoencoder is not None else 784
    config = config_for_preset(preset, data_dim=data_dim, conditional=conditional, noise_dim=8)
    generator = Generator(config)
    scaler = CodeScaler(data_dim)
    with torch.no_grad():
        scaler.mean.normal_()
        scaler.scale.uniform_(0.05 if autoencoder is None else 0.5, 2.0)
        if config.base == "gaussian":
            generator.layers[-1].weight.normal_(0, 0.1)  # not the all-zero start
            generator.base_mean.normal_()
            covariance = torch.eye(data_dim) + 0.3 * torch.ones(data_dim, data_dim)
            generator.base_factor.copy_(
                torch.linalg.cholesky(covariance).expand_as(generator.base_factor)
            )
            generator.base_factor[1:] *= torch.linspace(0.5, 2, len(generator.base_factor) - 1)[
                :, None, None
            ]
    run = RunDir(folder).claim(kind)
    extra = {}
    if autoencoder is not None:
        extra["autoencoder"] = {"model": autoencoder.config.to_dict(), "source": "test"}
        save_tensors(run.file("autoencoder.safetensors"), autoencoder.state_dict())
    run.write_config(
        kind,
        {
            "model": config.to_dict(),
            "training": {"ema_decay": 0.0},
            "conditional": conditional,
            **extra,
        },
    )
    save_tensors(run.file("generator.safetensors"), generator.state_dict())
    save_tensors(run.file("scaler.safetensors"), scaler.state_dict())
    return run.path


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _max_error(got: np.ndarray, expected: torch.Tensor) -> float:
    assert got.shape == tuple(expected.shape) and got.dtype == np.float32
    return float(np.abs(got - expected.numpy()).max())


def _interface(manifest: dict, graph: str) -> dict:
    entry = manifest["graphs"][graph]
    return {
        "inputs": [(s["name"], s["shape"], s["dtype"], s["range"]) for s in entry["inputs"]],
        "outputs": [(s["name"], s["shape"], s["dtype"], s["range"]) for s in entry["outputs"]],
    }


def test_autoencoder_exports_encoder_and_decoder_that_match(tmp_path):
    autoencoder = _autoencoder()
    manifest = export_run(_write_ae_run(tmp_path / "ae", autoencoder), tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["decoder.onnx", "encoder.onnx", MANIFEST]
    assert json.loads((out / MANIFEST).read_text()) == manifest
    assert manifest["zspace_version"] == zspace.__version__
    assert manifest["run"]["kind"] == "autoencoder" and manifest["complete"] is True
    image = ["batch", 1, 28, 28]
    assert _interface(manifest, "encoder") == {
        "inputs": [("images", image, "float32", [0.0, 1.0])],
        "outputs": [("codes", ["batch", LATENT], "float32", None)],
    }
    assert _interface(manifest, "decoder") == {
        "inputs": [("codes", ["batch", LATENT], "float32", None)],
        "outputs": [("images", image, "float32", [0.0, 1.0])],
    }
    for graph in manifest["graphs"].values():
        assert graph["exporter"] == "dynamo" and "fallback_reason" not in graph
        assert graph["check"]["max_abs_error"] <= TOLERANCE

    generator = torch.Generator().manual_seed(5)
    images = torch.rand(ROWS, 1, 28, 28, generator=generator)
    codes = torch.randn(ROWS, LATENT, generator=generator) * 3
    for batch in (slice(None), slice(0, 1)):  # the batch size is dynamic, one included
        (got,) = _session(out / "encoder.onnx").run(None, {"images": images[batch].numpy()})
        assert _max_error(got, encode_images(autoencoder, images[batch])) <= TOLERANCE
        (got,) = _session(out / "decoder.onnx").run(None, {"codes": codes[batch].numpy()})
        assert _max_error(got, decode_codes(autoencoder, codes[batch])) <= TOLERANCE


@pytest.mark.parametrize(
    "kind, preset, conditional",
    [
        ("latent-gan", "reference", True),
        # A few seconds each, like every export: behind the slow marker for a quick loop.
        pytest.param("latent-gan", "wide-gaussian", True, marks=pytest.mark.slow),
        pytest.param("pixel-gan", "wide", False, marks=pytest.mark.slow),
    ],
)
def test_sampler_graph_computes_gan_sampler_images(tmp_path, capsys, kind, preset, conditional):
    autoencoder = _autoencoder() if kind == "latent-gan" else None
    run = _write_gan_run(tmp_path / "gan", kind, preset, conditional, autoencoder)
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "sampler.onnx (dynamo exporter" in printed[0]
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text())
    noise_spec = ("noise", ["batch", 8], "float32", None)
    label_spec = ("label", ["batch"], "int64", [0.0, 9.0])
    assert _interface(manifest, "sampler")["inputs"] == (
        [noise_spec, label_spec] if conditional else [noise_spec]
    )
    assert ("label" in manifest["graphs"]["sampler"]) is not conditional  # the note

    sampler = zspace.load(run)
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(ROWS, 8, generator=generator)
    labels = torch.randint(0, 10, (ROWS,), generator=generator) if conditional else None
    session = _session(tmp_path / "out" / "sampler.onnx")
    assert [i.name for i in session.get_inputs()] == (
        ["noise", "label"] if conditional else ["noise"]
    )
    for batch in (slice(None), slice(0, 1)):
        feeds = {"noise": noise[batch].numpy()}
        if conditional:
            feeds["label"] = labels[batch].numpy()
        (got,) = session.run(None, feeds)
        part = None if labels is None else labels[batch]
        assert _max_error(got, sampler.images(noise[batch], part)) <= TOLERANCE
        assert got.min() >= 0 and got.max() <= 1


def test_classifier_graph_gives_logits_and_probabilities(tmp_path):
    torch.manual_seed(2)
    model = DigitCNN(DigitCNNConfig(channels=[4, 8], hidden=16)).eval()
    run = save_classifier(tmp_path / "clf", model, training={}).path
    manifest = export_run(run, tmp_path / "out")
    assert [s["name"] for s in manifest["graphs"]["classifier"]["outputs"]] == [
        "logits",
        "probabilities",
    ]
    classifier = zspace.load(run)
    images = torch.rand(ROWS, 1, 28, 28, generator=torch.Generator().manual_seed(3)) ** 4
    logits, probabilities = _session(tmp_path / "out" / "classifier.onnx").run(
        None, {"images": images.numpy()}
    )
    labels, expected = classifier.classify(images)
    assert _max_error(probabilities, expected) <= TOLERANCE
    assert np.array_equal(probabilities.argmax(1), labels.numpy())
    assert _max_error(probabilities, torch.softmax(torch.from_numpy(logits), 1)) <= 1e-6


@pytest.mark.slow
def test_a_batch_size_that_non_strict_tracing_would_freeze_stays_dynamic(tmp_path):
    # The CLS token is expanded to len(tokens): non-strict tracing reads that as the example's
    # batch size, and torch.onnx.export, given the module, would quietly keep it fixed.
    from zspace.export.onnx_export import export_graph
    from zspace.models.presets import transformer_config

    torch.manual_seed(0)
    config = transformer_config(latent_dim=LATENT, pool="cls", width=16, heads=2, depth=1)
    encoder = autoencoder_graphs(Autoencoder(config).eval())[0]
    record = export_graph(encoder, tmp_path / "encoder.onnx", check_rows=ROWS)
    assert record["exporter"] == "dynamo" and record["tracing"] == "strict"
    assert record["check"]["max_abs_error"] <= TOLERANCE  # on 1,000 rows and on 1


def test_the_torchscript_exporter_takes_over_when_dynamo_fails(tmp_path, monkeypatch):
    import zspace.export.onnx_export as onnx_export

    def broken(*args):
        raise RuntimeError("cannot trace this\nsecond line")

    monkeypatch.setattr(onnx_export, "_export_dynamo", broken)
    decoder = autoencoder_graphs(_autoencoder("mlp"))[1]
    record = onnx_export.export_graph(decoder, tmp_path / "decoder.onnx", check_rows=ROWS)
    assert record["exporter"] == "torchscript"
    assert record["fallback_reason"] == "dynamo exporter failed: RuntimeError: cannot trace this"
    assert record["check"]["max_abs_error"] <= TOLERANCE and record["check"]["rows"] == ROWS


# Refusals: one line each, and nothing written.


def _cli_error(capsys, *argv) -> str:
    assert main(["export", *map(str, argv)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zspace export: error: "), captured.err
    return lines[0]


def test_unknown_format_missing_extra_and_unexportable_kinds_are_one_line(
    tmp_path, capsys, monkeypatch
):
    ae_run = _write_ae_run(tmp_path / "ae", _autoencoder("mlp"))
    out = tmp_path / "out"
    assert "unknown export format 'tflite'" in _cli_error(
        capsys, ae_run, "--format", "tflite", "--out", out
    )
    study = tmp_path / "study"
    RunDir(study).write_config(STUDY, {"study": {}})
    assert "is a study run" in _cli_error(capsys, study, "--out", out)
    assert "does not exist" in _cli_error(capsys, tmp_path / "nowhere", "--out", out)

    gmm_run = RunDir(tmp_path / "gmm")
    autoencoder = _autoencoder("mlp")
    codes, labels = torch.randn(200, LATENT), torch.arange(200) % 10
    gmm_run.claim(GMM_BASELINE)
    ClassConditionalGMM.fit(codes, labels, components=1, seed=0).save(gmm_run.file(GMM_WEIGHTS))
    save_tensors(gmm_run.file("autoencoder.safetensors"), autoencoder.state_dict())
    gmm_run.write_config(
        GMM_BASELINE, {"autoencoder": {"model": autoencoder.config.to_dict()}, "conditional": True}
    )
    assert "gmm-baseline run has no noise space" in _cli_error(capsys, gmm_run.path, "--out", out)

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    assert "pip install 'zspace[export]'" in _cli_error(capsys, ae_run, "--out", out)
    assert not out.exists()


def test_a_damaged_run_refuses_to_export_in_one_line(tmp_path, capsys):
    autoencoder = _autoencoder("mlp")
    cut = _write_ae_run(tmp_path / "cut", autoencoder)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert "not a readable safetensors file" in _cli_error(capsys, cut, "--out", tmp_path / "o")
    missing = _write_ae_run(tmp_path / "missing", autoencoder)
    (missing / "model.safetensors").unlink()
    assert "has no weights file" in _cli_error(capsys, missing, "--out", tmp_path / "o")
    no_model = tmp_path / "no-model"
    RunDir(no_model).write_config(AUTOENCODER, {"training": {}})
    assert "'model' section is missing" in _cli_error(capsys, no_model, "--out", tmp_path / "o")
    garbled = _write_ae_run(tmp_path / "garbled", autoencoder)
    (garbled / "config.json").write_text("{not json")
    assert "is not valid JSON" in _cli_error(capsys, garbled, "--out", tmp_path / "o")
    with pytest.raises(RunError):
        export_run(cut, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_out_must_be_new_empty_or_an_earlier_export(tmp_path, capsys):
    ae_run = _write_ae_run(tmp_path / "ae", _autoencoder("mlp"))
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    assert "not written by zspace export" in _cli_error(capsys, ae_run, "--out", users)
    (users / MANIFEST).write_text(json.dumps({"files": ["notes.txt"]}))  # not ours either
    assert "not written by zspace export" in _cli_error(capsys, ae_run, "--out", users)
    assert (users / "notes.txt").read_text() == "mine"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "is a file" in _cli_error(capsys, ae_run, "--out", a_file)


def _stage(tmp_path, files: dict) -> tuple:
    stage = tmp_path / "stage"
    stage.mkdir(exist_ok=True)
    for name, text in files.items():
        (stage / name).write_text(text)
    manifest = {"written_by": "zspace export", "complete": True, "files": sorted(files)}
    return stage, manifest


def test_a_new_export_replaces_only_what_an_earlier_one_wrote(tmp_path):
    out = tmp_path / "out"
    folder = ExportFolder(out)
    stage, manifest = _stage(tmp_path, {"encoder.onnx": "e1", "decoder.onnx": "d1"})
    folder.commit(stage, manifest["files"], manifest)
    assert not stage.exists() and (out / "encoder.onnx").read_text() == "e1"
    (out / "README.txt").write_text("the user's own")

    folder = ExportFolder(out)  # ours: accepted
    folder.check_names(["sampler.onnx"])
    stage, manifest = _stage(tmp_path, {"sampler.onnx": "s2"})
    folder.commit(stage, manifest["files"], manifest)
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", MANIFEST, "sampler.onnx"]
    assert json.loads((out / MANIFEST).read_text())["files"] == ["sampler.onnx"]

    (out / "classifier.onnx").write_text("the user's, not ours")
    with pytest.raises(ZspaceError, match="already holds classifier.onnx"):
        ExportFolder(out).check_names(["classifier.onnx"])
    empty = tmp_path / "empty"
    empty.mkdir()
    stage, manifest = _stage(tmp_path, {"decoder.onnx": "d3"})
    ExportFolder(empty).commit(stage, manifest["files"], manifest)
    assert sorted(p.name for p in empty.iterdir()) == ["decoder.onnx", MANIFEST]
