"""Latent flows on MNIST subsets: training, exact resume, sampling, distillation, inversion,
likelihood and the CLI (train-flow, distill-flow, likelihood, and the flow flags of sample and
interpolate), including the mistakes a user makes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import zspace
from zspace.cli.main import main
from zspace.errors import ZspaceError
from zspace.models.flow import FlowConfig
from zspace.sampling.flow import FlowSampling
from zspace.training.flow import FlowTrainingConfig, train_flow

# A field far smaller than the presets: resume and determinism do not depend on its size.
TINY = {"hidden_dim": 32, "depth": 1, "time_features": 4, "preset": "tiny"}


def _train(out, ae_run, mnist_dir, conditional=True, **training):
    settings = {"limit": 600, "epochs": 2, "seed": 0, "batch_size": 128, **training}
    return train_flow(
        out,
        FlowConfig(data_dim=64, conditional=conditional, **TINY),
        FlowTrainingConfig(**settings),
        ae_run=ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )


def _metrics(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def _weights(run, name="velocity_ema") -> dict:
    return load_file(str(run / f"{name}.safetensors"))


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _snapshot(folder) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def flow_run(small_ae_run, mnist_dir, tmp_path_factory):
    """A conditional latent flow (the default preset) trained by the CLI for one epoch on
    1,000 codes, in batches of 32 (32 steps: at the default 512 its zero-initialised output
    layer barely moves in two steps, and every sampler setting would draw the same pixels);
    read-only."""
    out = tmp_path_factory.mktemp("flow") / "run"
    argv = ["train-flow", "--ae", str(small_ae_run), "--conditional", "--limit", "1000"]
    argv += ["--epochs", "1", "--batch-size", "32", "--data-dir", str(mnist_dir)]
    argv += ["--device", "cpu"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def distilled_run(flow_run, tmp_path_factory):
    """`flow_run` distilled by the CLI on 1,000 teacher pairs for one epoch; read-only."""
    out = tmp_path_factory.mktemp("distilled") / "run"
    argv = ["distill-flow", str(flow_run), "--pairs", "1000", "--epochs", "1"]
    assert main([*argv, "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def unconditional_run(small_ae_run, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("uflow") / "run"
    _train(out, small_ae_run, mnist_dir, conditional=False, limit=300, epochs=1)
    return out


@pytest.fixture(scope="module")
def gan_run(small_ae_run, mnist_dir, tmp_path_factory):
    from zspace.models.gan import config_for_preset
    from zspace.training.gan import GANTrainingConfig, train_gan

    out = tmp_path_factory.mktemp("gan") / "run"
    train_gan(
        out,
        config_for_preset("reference", conditional=True),
        GANTrainingConfig.for_preset(
            "reference", limit=300, epochs=1, seed=0, monitor_samples=0, inverter_steps=0
        ),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out


def test_resume_after_interruption_matches_uninterrupted_run(
    small_ae_run, mnist_dir, tmp_path, kill_after_checkpoint
):
    _train(tmp_path / "full", small_ae_run, mnist_dir)
    with kill_after_checkpoint(epoch=1), pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut", small_ae_run, mnist_dir)
    assert [m["epoch"] for m in _metrics(tmp_path / "cut")] == [1]
    with pytest.raises(ZspaceError, match="already holds a run"):
        _train(tmp_path / "cut", small_ae_run, mnist_dir)
    # A resume needs no configs: the run folder's own are used (its autoencoder too).
    train_flow(tmp_path / "cut", data_dir=mnist_dir, device="cpu", resume=True, progress=False)
    for name in ("velocity", "velocity_ema", "scaler"):
        assert _same_weights(_weights(tmp_path / "full", name), _weights(tmp_path / "cut", name))
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "full")
    assert [m["epoch"] for m in _metrics(tmp_path / "full")] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "cut" / "samples").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
    ]

    # The same seed again: the same average weights, bit for bit; another seed: others.
    _train(tmp_path / "again", small_ae_run, mnist_dir)
    assert _same_weights(_weights(tmp_path / "full"), _weights(tmp_path / "again"))
    _train(tmp_path / "other", small_ae_run, mnist_dir, seed=1)
    assert not _same_weights(_weights(tmp_path / "full"), _weights(tmp_path / "other"))


def test_train_flow_cli_writes_a_complete_run(flow_run):
    names = {p.name for p in flow_run.iterdir()}
    for expected in (
        "config.json",
        "velocity.safetensors",
        "velocity_ema.safetensors",
        "scaler.safetensors",
        "autoencoder.safetensors",
        "checkpoint.safetensors",
        "metrics.jsonl",
    ):
        assert expected in names
    assert [p.name for p in (flow_run / "samples").iterdir()] == ["epoch_001.png"]
    config = json.loads((flow_run / "config.json").read_text())
    assert config["kind"] == "latent-flow" and config["conditional"] is True
    assert config["model"]["preset"] == "small" and config["training"]["limit"] == 1000
    assert config["sampling"] == FlowSampling().to_dict()  # the defaults it was trained with
    assert "distilled" not in config
    [record] = _metrics(flow_run)
    assert record["epoch"] == 1 and np.isfinite(record["loss"])


def test_cli_sample_round_trip(flow_run, tmp_path, capsys):
    model = zspace.load(flow_run)
    assert model.kind == "latent-flow" and model.conditional and not model.one_step
    first = model.sample(digit=3, n=6, seed=2)
    assert first.shape == (6, 1, 28, 28) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, zspace.load(flow_run).sample(digit=3, n=6, seed=2))
    assert not torch.equal(first, model.sample(digit=3, n=6, seed=3))

    base = ["sample", str(flow_run), "--digit", "3", "-n", "6", "--seed", "2"]
    assert main([*base, "--out", str(tmp_path / "three.npz")]) == 0
    assert json.loads(capsys.readouterr().out) == {"images": 6, "out": str(tmp_path / "three.npz")}
    with np.load(tmp_path / "three.npz") as arrays:
        images, labels = arrays["images"], arrays["labels"]
    expected = first.mul(255).round().to(torch.uint8).squeeze(1).numpy()
    assert np.array_equal(images, expected) and (labels == 3).all()
    assert main([*base, "--out", str(tmp_path / "three.png")]) == 0
    assert (tmp_path / "three.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The sampling flags: what with_sampling gives, and not the run's default.
    flags = ["--steps", "6", "--solver", "heun2", "--guidance", "2.5"]
    assert main([*base, *flags, "--out", str(tmp_path / "tuned.npz")]) == 0
    tuned = model.with_sampling(steps=6, solver="heun2", guidance=2.5).sample(digit=3, n=6, seed=2)
    with np.load(tmp_path / "tuned.npz") as arrays:
        assert np.array_equal(
            arrays["images"], tuned.mul(255).round().to(torch.uint8).squeeze(1).numpy()
        )
        assert not np.array_equal(arrays["images"], images)
    assert main([*base, "--solver-steps", "6", "--out", str(tmp_path / "six.npz")]) == 0
    # Without a digit: n of each digit, in digit order.
    assert main(["sample", str(flow_run), "-n", "2", "--out", str(tmp_path / "all.npz")]) == 0
    with np.load(tmp_path / "all.npz") as arrays:
        assert arrays["images"].shape == (20, 28, 28)
        assert arrays["labels"].tolist() == [d for d in range(10) for _ in range(2)]


def test_distilled_run_samples_in_one_step(distilled_run, flow_run, tmp_path):
    config = json.loads((distilled_run / "config.json").read_text())
    assert config["kind"] == "latent-flow"
    assert config["sampling"] == {"solver": "euler", "steps": 1, "guidance": 1.0}
    assert config["distilled"]["teacher"] == str(flow_run.resolve())
    assert config["distilled"]["settings"]["pairs"] == 1000
    assert config["distilled"]["teacher_sampling"] == FlowSampling().to_dict()
    student = zspace.load(distilled_run)
    assert student.one_step and "distilled" in repr(student)
    assert (
        main(
            [
                "sample",
                str(distilled_run),
                "--digit",
                "5",
                "-n",
                "4",
                "--out",
                str(tmp_path / "d.npz"),
            ]
        )
        == 0
    )
    with np.load(tmp_path / "d.npz") as arrays:
        expected = student.sample(digit=5, n=4, seed=0)
        assert np.array_equal(
            arrays["images"], expected.mul(255).round().to(torch.uint8).squeeze(1).numpy()
        )
    assert (
        main(["sample", str(distilled_run), "--steps", "1", "--out", str(tmp_path / "d.png")]) == 0
    )
    # one network call from noise to code
    noise, labels = student.noise(4, seed=1, digit=5), torch.full((4,), 5)
    with torch.no_grad():
        by_hand = student.scaler.inverse(noise + student.field(noise, torch.tensor(0.0), labels))
    assert torch.allclose(student.generate_codes(noise, labels), by_hand, atol=1e-5)


def test_invert_codes_of_real_digits(flow_run, mnist_dir):
    from zspace.data import load_dataset
    from zspace.sampling.latent import encode_images

    flow = zspace.load(flow_run).with_sampling(steps=32)
    data = load_dataset("mnist", data_dir=mnist_dir, limit=1000)
    codes = encode_images(flow.autoencoder, data.test_images[:40])
    labels = data.test_labels[:40]
    noise, error = flow.invert_codes(codes, labels)
    assert noise.shape == (40, 64) and error.shape == (40,)
    assert float(error.max()) < 1e-3, error.max()
    again = flow.generate_codes(noise, labels)
    scale = codes.std(0).mean()
    assert float((again - codes).abs().max()) < 0.05 * float(scale)
    # the noise is not the code: even one epoch of training moved the points
    assert float((flow.scaler(codes) - noise).abs().mean()) > 0.02


def test_likelihood_cli(flow_run, mnist_dir, capsys):
    argv = ["likelihood", str(flow_run), "-n", "50", "--steps", "4", "--data-dir", str(mnist_dir)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    for split in ("train", "test"):
        assert report[split]["count"] == 50 and np.isfinite(report[split]["mean"])
        low, high = report[split]["ci95"]
        assert low <= report[split]["mean"] <= high
    assert report["gap"] == pytest.approx(
        report["train"]["mean"] - report["test"]["mean"], abs=2e-3
    )
    assert report["steps"] == 4 and report["divergence"] == "hutchinson"
    # the same seed gives the same numbers
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["train"] == report["train"] and again["test"] == report["test"]


def test_interpolate_cli_on_a_flow(flow_run, mnist_dir, tmp_path, capsys):
    out = tmp_path / "paths.npz"
    argv = ["interpolate", str(flow_run), "--pairs", "1", "--no-classifier"]
    argv += ["--steps", "5", "--data-dir", str(mnist_dir), "--out", str(out)]
    assert main([*argv, "--solver-steps", "8", "--guidance", "1"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["paths"] >= 1
    assert out.is_file()


@pytest.mark.parametrize(
    "argv, message, written",
    [
        (["sample", "FLOW", "--guidance", "-1", "--out", "x.npz"], "--guidance", "x.npz"),
        (["sample", "FLOW", "--steps", "0", "--out", "x.npz"], "steps", "x.npz"),
        (["sample", "FLOW", "--steps", "1001", "--out", "x.npz"], "steps", "x.npz"),
        (["sample", "FLOW", "--solver", "rk4", "--out", "x.npz"], "--solver", "x.npz"),
        (["sample", "UNCOND", "--digit", "3", "--out", "x.npz"], "unconditional", "x.npz"),
        (["sample", "UNCOND", "--guidance", "2", "--out", "x.npz"], "unconditional", "x.npz"),
        (["sample", "DISTILLED", "--steps", "2", "--out", "x.npz"], "one Euler step", "x.npz"),
        (["sample", "GAN", "--guidance", "2", "--out", "x.npz"], "--guidance", "x.npz"),
        (["sample", "GAN", "--solver", "euler", "--out", "x.npz"], "latent-flow", "x.npz"),
        (["distill-flow", "AE", "--out", "d"], "latent-flow run", "d"),
        (["distill-flow", "DISTILLED", "--out", "d"], "already a one-step", "d"),
        (["train-flow", "--ae", "missing", "--out", "f", "--limit", "100"], "missing", "f"),
        (["train-flow", "--out", "f", "--limit", "100"], "--ae", "f"),
        (["likelihood", "DISTILLED", "-n", "5"], "no density", None),
        (["likelihood", "GAN", "-n", "5"], "only a latent flow", None),
    ],
)
def test_cli_user_mistakes_are_one_line(
    argv,
    message,
    written,
    flow_run,
    unconditional_run,
    distilled_run,
    gan_run,
    small_ae_run,
    mnist_dir,
    capsys,
    tmp_path,
    monkeypatch,
):
    monkeypatch.chdir(tmp_path)
    runs = {
        "FLOW": flow_run,
        "UNCOND": unconditional_run,
        "DISTILLED": distilled_run,
        "GAN": gan_run,
        "AE": small_ae_run,
    }
    argv = [str(runs.get(a, a)) for a in argv]
    if argv[0] in ("train-flow", "likelihood"):
        argv += ["--data-dir", str(mnist_dir)]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code != 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in captured.err, err
    assert written is None or not (tmp_path / written).exists()


def test_resume_with_another_seed_is_refused(flow_run, small_ae_run, mnist_dir, capsys):
    before = _snapshot(flow_run)
    argv = ["train-flow", "--ae", str(small_ae_run), "--conditional", "--out", str(flow_run)]
    argv += ["--data-dir", str(mnist_dir), "--no-progress", "--resume"]
    assert main([*argv, "--seed", "5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --seed" in err[0]
    assert main([*argv, "--preset", "base"]) == 1
    assert "drop --preset" in capsys.readouterr().err
    assert _snapshot(flow_run) == before
