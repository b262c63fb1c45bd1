"""The run contract: the run-kinds table, zspace.load through it, the Sampler protocol, and the
resume rules that the library enforces."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

import zspace
from zspace.errors import RunError, ZspaceError
from zspace.evaluation.gmm import ClassConditionalGMM, GMMBaseline
from zspace.loading import load_sampler
from zspace.models.autoencoder import Autoencoder
from zspace.models.gan import CodeScaler, Generator, config_for_preset
from zspace.models.presets import ae_config_for_preset
from zspace.runs import AUTOENCODER, RUN_KINDS, SAMPLER_KINDS, RunDir, run_kind
from zspace.sampling.gan import GANSampler
from zspace.sampling.sampler import Sampler, check_sample_request, refuse_without_noise
from zspace.training.loop import check_resume_settings


def test_every_kind_names_a_loader_that_exists():
    for kind in RUN_KINDS.values():
        if kind.loader is None:
            continue
        module, function = kind.loader.split(":")
        assert callable(getattr(importlib.import_module(module), function)), kind.name
    assert set(SAMPLER_KINDS) == {"latent-gan", "pixel-gan", "gmm-baseline", "latent-flow"}


@pytest.mark.parametrize("bad", ["vae", 7, None, ["latent-gan"]])
def test_an_unknown_or_malformed_kind_is_one_line(bad):
    with pytest.raises(RunError, match="unknown run kind"):
        run_kind(bad)


def _write_run(folder, kind):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"kind": kind}))
    return folder


def test_load_refuses_a_study_and_load_sampler_a_non_sampler(tmp_path):
    with pytest.raises(RunError, match="has no model"):
        zspace.load(_write_run(tmp_path / "study", "study"))
    with pytest.raises(RunError, match="kind autoencoder, which cannot sample"):
        load_sampler(_write_run(tmp_path / "ae", "autoencoder"))
    with pytest.raises(RunError, match="unknown run kind"):
        zspace.load(_write_run(tmp_path / "odd", "diffusion"))


def _tiny_gan_sampler(conditional=True) -> GANSampler:
    torch.manual_seed(0)
    config = config_for_preset("wide", data_dim=8, conditional=conditional)
    config.noise_dim = 8
    return GANSampler(config, Generator(config).eval(), CodeScaler(8), None, "pixel-gan")


def _tiny_gmm() -> GMMBaseline:
    autoencoder = Autoencoder(ae_config_for_preset("mlp", latent_dim=4)).eval()
    codes, labels = torch.randn(200, 4), torch.arange(200) % 10
    gmm = ClassConditionalGMM.fit(codes, labels, components=1, seed=0)
    return GMMBaseline(gmm, autoencoder)


def test_gan_and_gmm_samplers_keep_one_protocol():
    for sampler in (_tiny_gan_sampler(), _tiny_gmm()):
        assert isinstance(sampler, Sampler)
        codes, labels = sampler.sample_codes(digit=None, n=3, seed=5)
        assert len(codes) == 30 and labels.tolist() == [d for d in range(10) for _ in range(3)]
        # Row d of a whole-alphabet draw is the draw of digit d alone, for every kind.
        alone, _ = sampler.sample_codes(digit=7, n=3, seed=5)
        assert torch.allclose(codes[21:24], alone, atol=1e-6)  # batch size changes rounding


def test_noise_space_operations_say_so_for_a_sampler_without_noise():
    refuse_without_noise(_tiny_gan_sampler(), "restyle")
    with pytest.raises(ZspaceError, match="gmm-baseline run has no noise space; it cannot restyle"):
        refuse_without_noise(_tiny_gmm(), "restyle")


@pytest.mark.parametrize(
    "digit, n, conditional, message",
    [
        (None, 0, True, "n must"),
        (None, 1025, True, "n must"),
        (3, 4, False, "unconditional"),
        (10, 4, True, "digit must"),
        (True, 4, True, "digit must"),
    ],
)
def test_sample_requests_are_checked_once_for_every_kind(digit, n, conditional, message):
    with pytest.raises(ZspaceError, match=message):
        check_sample_request(digit, n, conditional)


def test_resume_checks_name_the_flag_and_allow_what_was_saved(tmp_path):
    saved = {"model": {"preset": "conv", "extra": {}}, "training": {"seed": 0, "lr": 1e-3}}
    flags = {"training.seed": "--seed", "model.extra.positional": "--positional"}
    check_resume_settings(tmp_path, saved, {"model": None, "training": saved["training"]}, flags)
    with pytest.raises(ZspaceError, match=r"was trained with --seed 0; drop --seed to resume it"):
        check_resume_settings(tmp_path, saved, {"training": {"seed": 1, "lr": 1e-3}}, flags)
    with pytest.raises(ZspaceError, match="--positional None"):
        requested = {"model": {"preset": "conv", "extra": {"positional": "none"}}}
        check_resume_settings(tmp_path, saved, requested, flags)
    with pytest.raises(ZspaceError, match="training.lr"):  # no flag: the setting's own name
        check_resume_settings(tmp_path, saved, {"training": {"seed": 0, "lr": 2e-3}}, flags)


def test_run_dir_reads_its_kind(tmp_path):
    run = RunDir(tmp_path / "r")
    run.write_config("autoencoder", {"model": {}})
    assert run.read_config("autoencoder")["zspace_version"] == zspace.__version__
    with pytest.raises(RunError, match="expected latent-gan"):
        run.read_config("latent-gan")


def test_a_hostile_kind_stays_one_line(tmp_path):
    # Found by tests/unit/test_fuzz_parsers.py: a config whose kind holds a line break.
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"kind": "\\n"}')
    with pytest.raises(RunError) as raised:
        RunDir(run).read_config(AUTOENCODER)
    assert "\n" not in str(raised.value) and "'\\n'" in str(raised.value)
