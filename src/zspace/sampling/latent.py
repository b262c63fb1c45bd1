"""The latent space's gateway: load an autoencoder run, and move between images and codes in
batches, without gradients."""

from __future__ import annotations

from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.device import resolve_device
from zspace.errors import RunError
from zspace.models.autoencoder import Autoencoder
from zspace.models.encoders import AutoencoderConfig
from zspace.models.fast_decode import inference_decoder
from zspace.models.images import to_float_images
from zspace.runs import AUTOENCODER, RunDir, load_weights_into


def load_autoencoder_config(run_dir: str | Path) -> AutoencoderConfig:
    """An autoencoder run's architecture, from its config.json alone (no weights loaded)."""
    run = RunDir(run_dir)
    config = run.read_config(AUTOENCODER)
    with check.reading(run.config_path):
        return AutoencoderConfig.from_dict(check.section(config, "model"))


def load_autoencoder(run_dir: str | Path, device: str | torch.device = "cpu") -> Autoencoder:
    """Rebuild an autoencoder from its run folder (config.json + model.safetensors)."""
    run = RunDir(run_dir)
    model_config = load_autoencoder_config(run_dir)
    torch_device = resolve_device(device) if isinstance(device, str) else device
    model = Autoencoder(model_config).to(torch_device)
    load_weights_into(model, run, "model.safetensors", torch_device)
    model.eval()
    return model


@torch.no_grad()
def encode_images(model: Autoencoder, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """uint8 (N, 28, 28) or float (N, 1, 28, 28) images -> float (N, latent_dim) codes on CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = [
        model.encode(to_float_images(images[i : i + batch_size].to(device))).cpu()
        for i in range(0, len(images), batch_size)
    ]
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, model.latent_dim)


@torch.no_grad()
def decode_codes(model: Autoencoder, codes: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """float (N, latent_dim) codes -> float (N, 1, 28, 28) images in [0, 1] on CPU."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # On CPU an equivalent decoder without transposed convolutions is about twice as fast.
    decoder = inference_decoder(model) if device.type == "cpu" else model.decoder
    chunks = [
        decoder(codes[i : i + batch_size].to(device)).cpu()
        for i in range(0, len(codes), batch_size)
    ]
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, 1, 28, 28)


def load_carried_autoencoder(run: RunDir, saved: dict, device: torch.device) -> Autoencoder:
    """The autoencoder a generator run carries (config "autoencoder.model" and
    autoencoder.safetensors), so the run keeps working if the AE folder moves."""
    if "autoencoder" not in saved:
        raise RunError(f"{run.config_path} does not describe its autoencoder")
    with check.reading(run.config_path):
        ae_model = check.section(check.section(saved, "autoencoder"), "model")
        autoencoder = Autoencoder(AutoencoderConfig.from_dict(ae_model)).to(device)
    load_weights_into(autoencoder, run, "autoencoder.safetensors", device)
    return autoencoder.eval()


class LatentDecoder:
    """An autoencoder's decoder for bulk decoding, built on first use: on CPU the faster
    equivalent of `zspace.models.fast_decode` (samplers decode every call through it)."""

    def __init__(self, autoencoder: Autoencoder):
        self.autoencoder = autoencoder
        self._module = None

    def module(self):
        if self._module is None:
            self.autoencoder.eval()
            on_cpu = next(self.autoencoder.parameters()).device.type == "cpu"
            self._module = (
                inference_decoder(self.autoencoder) if on_cpu else self.autoencoder.decoder
            )
        return self._module

    @torch.no_grad()
    def __call__(self, codes: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """float (N, latent_dim) codes -> float (N, 1, 28, 28) images in [0, 1] on CPU."""
        decoder = self.module()
        device = next(self.autoencoder.parameters()).device
        chunks = [
            decoder(codes[start : start + batch_size].to(device)).cpu()
            for start in range(0, len(codes), batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.empty(0, 1, 28, 28)


def principal_components(codes: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Project (N, D) codes onto their top-k principal axes -> (N, k) (for 2-D maps)."""
    centred = codes.float() - codes.float().mean(dim=0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:k].T
