"""`zspace export` on real tiny trained runs: ONNX Runtime draws the digits `GANSampler.images`
draws and encodes real MNIST test digits as the autoencoder does (1,000 inputs, max abs error
<= 1e-4); a damaged copy of a real run refuses in one line."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from web_stand_ins import stop_server, wait_until_healthy

import zspace
from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.models.images import to_float_images, to_uint8_images
from zspace.sampling.latent import decode_codes, encode_images

ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
pytest.importorskip("onnxscript", reason="the export extra is not installed")

ROWS = 1000
TOLERANCE = 1e-4


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _max_error(got: np.ndarray, expected: torch.Tensor) -> float:
    assert got.shape == tuple(expected.shape)
    return float(np.abs(got - expected.numpy()).max())


def test_the_cgan_sampler_exported_draws_what_the_sampler_draws(web_cgan_run, tmp_path, capsys):
    out = tmp_path / "cgan"
    assert main(["export", str(web_cgan_run), "--out", str(out)]) == 0
    assert "conditional latent-gan run" in capsys.readouterr().out
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["graphs"]["sampler"]["exporter"] == "dynamo"

    sampler = zspace.load(web_cgan_run)
    noise = torch.cat([sampler.noise(ROWS // 10, seed=3, digit=d) for d in range(10)])
    labels = torch.arange(10).repeat_interleave(ROWS // 10)
    (images,) = _session(out / "sampler.onnx").run(
        None, {"noise": noise.numpy(), "label": labels.numpy()}
    )
    assert _max_error(images, sampler.images(noise, labels)) <= TOLERANCE
    # The same seeds give the same digits as `sampler.sample`, once the caller draws the noise.
    assert _max_error(images[300:400], sampler.sample(digit=3, n=100, seed=3)) <= TOLERANCE

    damaged = tmp_path / "damaged"
    shutil.copytree(web_cgan_run, damaged)
    weights = damaged / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    assert main(["export", str(damaged), "--out", str(tmp_path / "never")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "is not a readable safetensors file" in error[0]
    assert not (tmp_path / "never").exists()


def test_the_autoencoder_exported_encodes_mnist_digits_as_pytorch_does(
    small_ae_run, mnist_dir, tmp_path
):
    out = tmp_path / "ae"
    assert main(["export", str(small_ae_run), "--out", str(out)]) == 0
    autoencoder = zspace.load(small_ae_run)
    images = to_float_images(load_dataset("mnist", data_dir=mnist_dir).test_images[:ROWS])
    (codes,) = _session(out / "encoder.onnx").run(None, {"images": images.numpy()})
    assert _max_error(codes, encode_images(autoencoder, images)) <= TOLERANCE
    codes = torch.from_numpy(codes)
    (decoded,) = _session(out / "decoder.onnx").run(None, {"codes": codes.numpy()})
    assert _max_error(decoded, decode_codes(autoencoder, codes)) <= TOLERANCE


def _png_pixels(data_url: str) -> np.ndarray:
    encoded = data_url.removeprefix("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))


def test_serve_with_the_onnxruntime_engine_answers_like_pytorch(web_cgan_run):
    httpx = pytest.importorskip("httpx", reason="the web extra is not installed")
    pytest.importorskip("uvicorn", reason="the web extra is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "zspace", "serve", str(web_cgan_run), "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--engine", "onnxruntime"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(server, base, httpx)
        assert "through ONNX Runtime" in httpx.get(base + "/api/info").json()["model"]
        query = "/api/generate?digit=3&n=16&seed=5&scale=1&format=json"
        served = np.stack([_png_pixels(url) for url in httpx.get(base + query).json()["images"]])
        drawn = to_uint8_images(zspace.load(web_cgan_run).sample(digit=3, n=16, seed=5))
        # The same digits: at most a rounding step apart (float error near a .5 boundary).
        assert np.abs(served.astype(int) - drawn.numpy().astype(int)).max() <= 1
    finally:
        stop_server(server)
    assert server.returncode == 0
