"""A translator run, loaded: turn codes (or images) of one digit into codes of another.

Five methods share one interface, `Translator.translate_codes(codes, target, source)`:
  - regular, cycle, paired: a learned residual map over standardised codes (models/translator);
  - shift: add the difference of the two classes' mean codes (the baseline);
  - restyle: find the noise a conditional generator draws the code from, then draw that noise
    with the target label (what the web page's restyle did before translators existed).
A translator run carries its autoencoder, so `translate_images` works from the run alone.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.checkpoint import load_tensors
from zspace.device import resolve_device
from zspace.errors import RunError, ZspaceError
from zspace.loading import load_sampler
from zspace.models.gan import CodeScaler
from zspace.models.images import to_float_images
from zspace.models.translator import CodeTranslator, TranslatorConfig
from zspace.runs import TRANSLATOR, RunDir, load_weights_into
from zspace.sampling.inversion import invert
from zspace.sampling.latent import LatentDecoder, encode_images, load_carried_autoencoder

TRANSLATOR_WEIGHTS = "translator_ema.safetensors"  # the average of G's weights
SHIFT_WEIGHTS = "class_means.safetensors"


class LearnedMap:
    """A trained CodeTranslator between raw codes (the scaler standardises on the way in)."""

    needs_source = False

    def __init__(self, network: CodeTranslator, scaler: CodeScaler):
        self.network, self.scaler = network, scaler

    @torch.no_grad()
    def __call__(self, codes, targets, sources=None) -> torch.Tensor:
        device = self.scaler.mean.device
        self.network.eval()
        standardised = self.scaler(codes.to(device))
        return self.scaler.inverse(self.network(standardised, targets.to(device))).cpu()


class ShiftMap:
    """code - mean[source] + mean[target]: moves a code by the difference of the class means."""

    needs_source = True

    def __init__(self, class_means: torch.Tensor):
        self.class_means = class_means.cpu()  # (num_classes, data_dim)

    def __call__(self, codes, targets, sources) -> torch.Tensor:
        return codes.cpu() - self.class_means[sources.cpu()] + self.class_means[targets.cpu()]


class RestyleMap:
    """Invert a conditional generator at the source label, redraw at the target label."""

    needs_source = True

    def __init__(self, sampler):
        self.sampler = sampler

    def __call__(self, codes, targets, sources) -> torch.Tensor:
        noise, _ = invert(self.sampler, codes.cpu(), sources.cpu())
        return self.sampler.generate_codes(noise, targets.cpu())


class Translator:
    """Codes or images of one digit -> the same writer's digit of another class."""

    def __init__(self, config: TranslatorConfig, mapping, autoencoder, path: Path | None = None):
        self.config = config
        self.mapping = mapping
        self.autoencoder = autoencoder
        self.path = path
        self._decoder = LatentDecoder(autoencoder)

    def __repr__(self) -> str:
        scope = "all pairs" if self.config.all_pairs else f"{self.source} -> {self.target}"
        return f"Translator({self.method}, {scope})"

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def source(self) -> int | None:
        return self.config.source

    @property
    def target(self) -> int | None:
        return self.config.target

    @property
    def targets(self) -> tuple[int, ...]:
        """The digits this translator can produce."""
        return self.config.target_classes

    @property
    def can_go_back(self) -> bool:
        """Whether B -> A exists for every A -> B it does (for the cycle error)."""
        return self.config.all_pairs or len(self.targets) == 2

    def default_source(self, target: int) -> int | None:
        """A per-pair run's input digit for `target` (the pair's other digit); None otherwise."""
        if self.config.all_pairs:
            return None
        return self.source if target == self.target else self.target

    def check_request(self, target: int, source: int | None) -> int | None:
        """The source digit to use for a request, or one ZspaceError line saying what is wrong."""
        check.whole_number("target digit (--to)", target, 0, self.config.num_classes - 1)
        if target not in self.targets:
            raise ZspaceError(
                f"this {self.method} translator makes {' or '.join(map(str, self.targets))}, "
                f"not {target}"
            )
        if source is None:
            source = self.default_source(target)
        else:
            check.whole_number("source digit (--from)", source, 0, self.config.num_classes - 1)
            expected = self.default_source(target)
            if expected is not None and source != expected:
                raise ZspaceError(f"this translator turns {expected} into {target}, not {source}")
        if source is None and self.mapping.needs_source:
            raise ZspaceError(f"a {self.method} translator needs the input's digit: give --from")
        if source is not None and source == target:
            raise ZspaceError(f"the input is already a {target}; choose another --to")
        return source

    def translate_codes(
        self, codes: torch.Tensor, target: int, source: int | None = None
    ) -> torch.Tensor:
        """(N, latent_dim) codes of digit `source` -> (N, latent_dim) codes of `target`, on CPU."""
        source = self.check_request(target, source)
        codes = torch.as_tensor(codes).float()
        if codes.ndim != 2 or codes.shape[1] != self.config.data_dim:
            raise ZspaceError(
                f"expected codes of shape (N, {self.config.data_dim}), got {tuple(codes.shape)}"
            )
        if len(codes) == 0:
            return codes.clone()
        targets = torch.full((len(codes),), target, dtype=torch.long)
        sources = None if source is None else torch.full_like(targets, source)
        return self.mapping(codes, targets, sources)

    def encode(self, images) -> torch.Tensor:
        return encode_images(self.autoencoder, torch.as_tensor(images))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> float (N, 1, 28, 28) images in [0, 1] on CPU."""
        return self._decoder(codes)

    def translate_images(self, images, target: int, source: int | None = None) -> torch.Tensor:
        """uint8 (N, 28, 28) or float (N, 1, 28, 28) images -> float (N, 1, 28, 28) images."""
        images = to_float_images(torch.as_tensor(images))
        return self.decode(self.translate_codes(self.encode(images), target, source))


def read_translator_config(run: RunDir) -> tuple[TranslatorConfig, dict]:
    saved = run.read_config(TRANSLATOR)
    with check.reading(run.config_path):
        return TranslatorConfig.from_dict(check.section(saved, "model")), saved


def load_translator(run_dir: str | Path, device: str | torch.device = "cpu") -> Translator:
    """Rebuild a translator run (`zspace.load` calls this for kind "translator")."""
    run = RunDir(run_dir)
    config, saved = read_translator_config(run)
    torch_device = resolve_device(device) if isinstance(device, str) else device
    autoencoder = load_carried_autoencoder(run, saved, torch_device)
    return Translator(
        config, _load_mapping(run, config, saved, torch_device), autoencoder, run.path
    )


def _load_mapping(run: RunDir, config: TranslatorConfig, saved: dict, device):
    if config.learned:
        network = CodeTranslator(config).to(device)
        scaler = CodeScaler(config.data_dim).to(device)
        load_weights_into(network, run, TRANSLATOR_WEIGHTS, device)
        load_weights_into(scaler, run, "scaler.safetensors", device)
        return LearnedMap(network.eval(), scaler)
    if config.method == "shift":
        path = run.file(SHIFT_WEIGHTS)
        if not path.is_file():
            raise RunError(f"{run.path} has no {SHIFT_WEIGHTS} (was training finished?)")
        means = load_tensors(path)[0].get("class_means")
        if means is None or means.shape != (config.num_classes, config.data_dim):
            raise RunError(f"{path} does not hold the class means this run's config describes")
        return ShiftMap(means)
    generator = saved.get("generator", {}).get("source") if isinstance(saved, dict) else None
    if not isinstance(generator, str):
        raise RunError(f"{run.config_path} does not name the generator its restyles use")
    return RestyleMap(load_sampler(generator, device, action="restyle"))
