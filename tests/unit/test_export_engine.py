"""`zspace serve --engine onnxruntime`: a GAN sampler whose digits ONNX Runtime draws, the same
digits as PyTorch's for the same seeds, behind the same web API."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from zspace.errors import ZspaceError
from zspace.export.runtime import OnnxRuntimeSampler, with_engine
from zspace.models.autoencoder import Autoencoder
from zspace.models.gan import CodeScaler, Generator, config_for_preset
from zspace.models.presets import ae_config_for_preset
from zspace.sampling.gan import GANSampler
from zspace.sampling.sampler import Sampler

pytest.importorskip("onnxruntime", reason="the export extra is not installed")
pytest.importorskip("onnxscript", reason="the export extra is not installed")

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def samplers() -> tuple[GANSampler, OnnxRuntimeSampler]:
    torch.manual_seed(0)
    autoencoder = Autoencoder(ae_config_for_preset("conv", latent_dim=8)).eval()
    config = config_for_preset("wide", data_dim=8, conditional=True, noise_dim=8)
    scaler = CodeScaler(8)
    with torch.no_grad():
        scaler.mean.normal_()
        scaler.scale.uniform_(0.5, 2.0)
    sampler = GANSampler(config, Generator(config).eval(), scaler, autoencoder).freeze()
    return sampler, with_engine(sampler, "onnxruntime")


def test_onnxruntime_draws_the_digits_pytorch_draws(samplers):
    sampler, fast = samplers
    assert isinstance(fast, Sampler) and fast.conditional and fast.has_noise
    assert with_engine(sampler, "pytorch") is sampler
    for digit, n in ((None, 3), (7, 1), (2, 16)):
        images, labels = fast.sample_with_labels(digit=digit, n=n, seed=4)
        expected, expected_labels = sampler.sample_with_labels(digit=digit, n=n, seed=4)
        assert torch.equal(labels, expected_labels)
        assert float((images - expected).abs().max()) <= TOLERANCE
    soft = torch.full((2, 10), 0.1)  # a morph's soft labels: drawn by PyTorch
    noise = sampler.noise(2, seed=1)
    assert torch.equal(fast.images(noise, soft), sampler.images(noise, soft))
    assert fast.images(noise[:0], torch.zeros(0, dtype=torch.int64)).shape == (0, 1, 28, 28)
    with pytest.raises(ZspaceError, match="one label from 0 to 9"):
        fast.images(noise, torch.tensor([3, 10]))
    with pytest.raises(ZspaceError, match="give a label"):
        fast.images(noise)


def test_the_web_api_answers_the_same_through_onnxruntime(samplers):
    pytest.importorskip("fastapi", reason="the web extra is not installed")
    from fastapi.testclient import TestClient

    from zspace.web.app import create_app

    _, fast = samplers  # already built: create_app keeps it (no second export)
    app = create_app(generator=fast, engine="onnxruntime", restyle_processes=False)
    assert app.state.service.generator is fast
    with TestClient(app) as client:
        assert "through ONNX Runtime" in client.get("/api/info").json()["model"]
        answer = client.get("/api/generate", params={"digit": 3, "n": 4, "scale": 1})
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(answer.content)).format == "PNG"
        path = client.get("/api/interpolate", params={"from_digit": 1, "to_digit": 7})
        assert path.status_code == 200  # soft labels: PyTorch's part of the sampler


def test_engines_refuse_in_one_line(samplers):
    sampler, _ = samplers
    with pytest.raises(ZspaceError, match="unknown engine 'tensorrt'"):
        with_engine(sampler, "tensorrt")

    class GMMLike:
        kind, conditional, has_noise = "gmm-baseline", True, False

    with pytest.raises(ZspaceError, match="a gmm-baseline run has none"):
        with_engine(GMMLike(), "onnxruntime")
