"""Data-parallel training under torchrun on CPU (gloo): same weights as one process, and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import zspace

TRAIN_ARGS = ["--preset", "mlp", "--limit", "512", "--batch-size", "64", "--no-progress"]


def _zspace(args, data_dir, processes: int = 1, timeout: int = 240):
    env = {**os.environ, "ZSPACE_DATA": str(data_dir), "OMP_NUM_THREADS": "1"}
    if processes == 1:
        command = [sys.executable, "-m", "zspace", *args]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            "-m",
            "zspace",
            *args,
        ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _max_weight_difference(run_a, run_b) -> float:
    a = load_file(str(run_a / "model.safetensors"))
    b = load_file(str(run_b / "model.safetensors"))
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_processes_match_one_process_and_resume(mnist_dir, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    _zspace(["train-ae", *TRAIN_ARGS, "--epochs", "1", "--out", str(single)], mnist_dir)
    result = _zspace(
        ["train-ae", *TRAIN_ARGS, "--epochs", "1", "--out", str(double)], mnist_dir, processes=2
    )
    # Rank 0 alone reports and writes.
    assert result.stdout.count("trained mlp autoencoder") == 1
    assert _max_weight_difference(single, double) < 1e-4

    # Resume under torchrun continues from the checkpoint exactly as a single process does.
    _zspace(
        ["train-ae", "--resume", "--epochs", "2", "--out", str(single), "--no-progress"], mnist_dir
    )
    _zspace(
        ["train-ae", "--resume", "--epochs", "2", "--out", str(double), "--no-progress"],
        mnist_dir,
        processes=2,
    )
    epochs = [json.loads(x)["epoch"] for x in (double / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    assert _max_weight_difference(single, double) < 1e-4


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_gan_two_processes_match_one_process(small_ae_run, mnist_dir, tmp_path):
    # Preset "wide": the default preset's Adam (beta1 = 0, learning rate 1e-3) turns the
    # all-reduce's last-bit rounding differences into sign flips of whole steps for weights
    # whose gradient is near zero (measured: up to 3e-3 apart after 8 steps). With "wide" the
    # weights still drift apart by up to one Adam step (2e-4, in about a tenth of G's weights on
    # this CPU), so the check is on what the generators do: the same codes for the same noise,
    # to a small fraction of the codes' spread. A wrong split of the batch or of the noise
    # trains a different generator and fails it.
    gan_args = [
        "train-gan",
        "--ae",
        str(small_ae_run),
        "--conditional",
        "--preset",
        "wide",
        "--limit",
        "1024",
        "--batch-size",
        "128",
        "--epochs",
        "1",
        "--monitor-samples",
        "0",
        "--inverter-steps",
        "0",
        "--no-progress",
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    _zspace([*gan_args, "--out", str(single)], mnist_dir)
    result = _zspace([*gan_args, "--out", str(double)], mnist_dir, processes=2)
    assert result.stdout.count("trained conditional latent GAN") == 1
    for name in ("generator", "discriminator"):
        a = load_file(str(single / f"{name}.safetensors"))
        b = load_file(str(double / f"{name}.safetensors"))
        assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3, name  # a few steps
    codes_single, _ = zspace.load(single).sample_codes(n=100, seed=1)
    codes_double, _ = zspace.load(double).sample_codes(n=100, seed=1)
    gap = (codes_single - codes_double).abs().max() / codes_single.std()
    print(f"largest code gap: {gap:.2e} of the codes' spread")
    assert gap < 0.01


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_flow_two_processes_match_one_process(small_ae_run, mnist_dir, tmp_path):
    # Every rank draws the whole global batch's noise, times and dropped labels, then keeps its
    # share, so two processes take the steps one process takes (up to all-reduce rounding).
    flow_args = [
        "train-flow",
        "--ae",
        str(small_ae_run),
        "--conditional",
        "--limit",
        "1024",
        "--batch-size",
        "128",
        "--epochs",
        "1",
        "--no-progress",
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    _zspace([*flow_args, "--out", str(single)], mnist_dir)
    result = _zspace([*flow_args, "--out", str(double)], mnist_dir, processes=2)
    assert result.stdout.count("trained conditional latent flow") == 1
    a = load_file(str(single / "velocity.safetensors"))
    b = load_file(str(double / "velocity.safetensors"))
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-3
    codes_single, _ = zspace.load(single).sample_codes(n=100, seed=1)
    codes_double, _ = zspace.load(double).sample_codes(n=100, seed=1)
    assert (codes_single - codes_double).abs().max() / codes_single.std() < 0.01
