"""Saved digit classifiers and MNIST-style preparation of users' images.

A classifier run folder holds config.json (kind "classifier": the network config and how it
was trained) and model.safetensors.

    from zspace.fewshot.classify import load_classifier, prepare_image
    image, inverted = prepare_image("my_digit.png")        # uint8 (28, 28), light on dark
    labels, probs = load_classifier("runs/clf").classify(image[None])
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from zspace import config_checks as check
from zspace.checkpoint import save_tensors
from zspace.data.npz import LABELS, ArraySpec, read_npz
from zspace.device import resolve_device
from zspace.errors import ZspaceError
from zspace.fewshot.cnn import DigitCNN, DigitCNNConfig
from zspace.fewshot.deskew import deskew
from zspace.models.images import to_float_images
from zspace.runs import CLASSIFIER, RunDir, load_weights_into

WEIGHTS_FILE = "model.safetensors"
BOX = 20  # MNIST fits each digit into a 20x20 box ...
SIZE = 28  # ... and centres it by its centre of mass in a 28x28 field.
INK_THRESHOLD = 0.15  # after contrast stretching, fainter pixels are paper, not ink
# A 200 kB PNG of a flat colour can claim to be gigapixels and decode to gigabytes; no photo of
# a digit needs more than this. The web server's uploads share the limit.
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
_PIXEL_LIMIT = f"{MAX_IMAGE_PIXELS} pixels ({MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE})"
# What Pillow raises, besides UnidentifiedImageError, on damaged or hostile files.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)
_USE_AN_IMAGE = "use a PNG or JPEG"
_WHAT_TO_CLASSIFY = "pass an image file (PNG or JPEG) or an .npz of 28x28 images"
_NPZ_IMAGES = ArraySpec(item_shape=(SIZE, SIZE), single_ok=True)


class SavedClassifier:
    """A trained DigitCNN plus the preprocessing it expects."""

    def __init__(self, model: DigitCNN, config: dict):
        self.model = model.eval()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def classify(self, images) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, 28, 28) / (28, 28) or float (N, 1, 28, 28) in [0, 1], light digit on dark
        -> (labels int64 (N,), probabilities float (N, 10)) on CPU."""
        images = torch.as_tensor(images)
        if images.dim() == 2:
            images = images.unsqueeze(0)
        images = to_float_images(images.to(self.device))
        if self.model.config.deskew:
            images = deskew(images)
        probs = torch.softmax(self.model(images), dim=1).cpu()
        return probs.argmax(1), probs


def save_classifier(
    out: str | Path, model: DigitCNN, training: dict, environment: dict | None = None
) -> RunDir:
    """Write a classifier run folder (config.json + model.safetensors); `environment` is
    where it was trained (`zspace.training.cards.run_environment`)."""
    run = RunDir(out)
    config = {"model": model.config.to_dict(), "training": training}
    if environment is not None:
        config["environment"] = environment
    run.write_config(CLASSIFIER, config)
    save_tensors(run.file(WEIGHTS_FILE), model.state_dict())
    return run


def load_classifier(run_dir: str | Path, device: str | torch.device = "cpu") -> SavedClassifier:
    """Rebuild a saved classifier from its run folder."""
    run = RunDir(run_dir)
    config = run.read_config(CLASSIFIER)
    with check.reading(run.config_path):
        model_config = DigitCNNConfig.from_dict(check.section(config, "model"))
    torch_device = resolve_device(device) if isinstance(device, str) else device
    model = DigitCNN(model_config).to(torch_device)
    load_weights_into(model, run, WEIGHTS_FILE, torch_device)
    return SavedClassifier(model, config)


def prepare_image(source, name: str | None = None) -> tuple[np.ndarray, bool]:
    """A PNG/JPEG path (or PIL image) of any size -> (uint8 (28, 28) MNIST-style, inverted).

    Grayscale; if the border is mostly light (dark ink on white paper) the image is inverted
    and `inverted` is True; contrast is stretched so the paper is 0 and the ink peaks at 255;
    the ink's bounding box is scaled to fit 20x20 and placed so its centre of mass is at the
    centre of a 28x28 field, as in MNIST. `name` is what error messages call the image.
    """
    name = name or _name(source)
    picture = _open(source)
    try:
        gray = _to_gray(picture)
    except _DECODE_ERRORS as error:  # decoded, but not convertible (damaged EXIF, say)
        raise ZspaceError(f"{name} cannot be used as a digit ({_first_line(error)})") from None
    values = np.asarray(gray, dtype=np.float32) / 255.0
    border = np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])
    inverted = bool(np.median(border) > 0.5)
    if inverted:
        values = 1.0 - values
    paper = float(np.median(border if not inverted else 1.0 - border))
    peak = float(values.max())
    if peak - paper < 0.1:
        raise ZspaceError(f"{name} looks blank (no digit stands out from the background)")
    values = np.clip((values - paper) / (peak - paper), 0.0, 1.0)
    values[values < INK_THRESHOLD] = 0.0
    rows, cols = np.nonzero(values)
    crop = values[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    boxed = Image.fromarray((crop * 255).astype(np.uint8), mode="L").resize(new_size, Image.LANCZOS)
    small = np.asarray(boxed, dtype=np.float32) / 255.0
    field = np.zeros((SIZE, SIZE), dtype=np.float32)
    mass = small.sum()
    ys, xs = np.indices(small.shape)
    centre_y, centre_x = (ys * small).sum() / mass, (xs * small).sum() / mass
    top = int(round((SIZE - 1) / 2 - centre_y))
    left = int(round((SIZE - 1) / 2 - centre_x))
    top = min(max(top, 0), SIZE - small.shape[0])
    left = min(max(left, 0), SIZE - small.shape[1])
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    return (np.clip(field, 0, 1) * 255).round().astype(np.uint8), inverted


def _name(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "image"


def _open(source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    path = Path(source)
    if path.is_dir():
        raise ZspaceError(f"{path} is a folder; {_WHAT_TO_CLASSIFY}")
    if not path.is_file():
        raise ZspaceError(f"{path} does not exist")
    return open_image(path, str(path))


def open_image(source: Path | bytes, name: str) -> Image.Image:
    """Decode an image file (its path, or its bytes) with Pillow; ZspaceError in one line,
    naming it `name`, for anything Pillow cannot decode and for an image over
    MAX_IMAGE_PIXELS, which is refused from its header, before any pixel is decoded."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # Pillow warns of damaged files it decodes anyway (and of sizes far over our limit);
        # a damaged file that fails raises below, so its warnings would only add noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            picture = Image.open(stream)
            try:
                _check_pixels(picture.size, name)
                picture.load()
            except BaseException:
                picture.close()
                raise
    except Image.DecompressionBombError:
        raise ZspaceError(f"{name} has too many pixels; the limit is {_PIXEL_LIMIT}") from None
    except UnidentifiedImageError:
        raise ZspaceError(f"{name} is not an image Pillow can read; {_USE_AN_IMAGE}") from None
    except _DECODE_ERRORS as error:
        raise ZspaceError(
            f"{name} is not an image Pillow can read ({_first_line(error)}); {_USE_AN_IMAGE}"
        ) from None
    return picture


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _check_pixels(size: tuple[int, int], name: str) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ZspaceError(f"{name} is {width}x{height} pixels; the limit is {_PIXEL_LIMIT}")


def _to_gray(picture: Image.Image) -> Image.Image:
    """Grayscale; transparent pixels count as white paper (dark ink on a transparent canvas),
    unless the visible ink is itself light, in which case they count as black."""
    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("RGBA", "LA", "PA") or (
        picture.mode == "P" and "transparency" in picture.info
    ):
        rgba = picture.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
        if alpha.min() < 0.99:
            ink = gray[alpha > 0.5]
            paper = 1.0 if ink.size == 0 or ink.mean() < 0.5 else 0.0
            gray = gray * alpha + paper * (1.0 - alpha)
            return Image.fromarray((gray * 255).round().astype(np.uint8), mode="L")
    return picture.convert("L")


def load_images_for_classification(path: str | Path) -> tuple[np.ndarray, list[bool]]:
    """An image file -> ((1, 28, 28), [inverted]); an .npz with `images` (N, 28, 28) uint8
    (light on dark, already MNIST-style) -> ((N, 28, 28), [False] * N)."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and not path.is_dir():
        arrays = read_npz(path, {"images": _NPZ_IMAGES}, ignore_others=True)
        if "images" not in arrays:
            raise ZspaceError(f"{path} has no 'images' array")
        images = arrays["images"]
        images = images[None] if images.ndim == 2 else images
        return images, [False] * len(images)
    image, inverted = prepare_image(path)
    return image[None], [inverted]


@dataclass
class BatchResult:
    """A whole .npz classified: predicted digits (N,), probabilities (N, 10), and, when the
    file has labels, those labels and the accuracy against them."""

    predictions: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray | None = None

    @property
    def accuracy(self) -> float | None:
        if self.labels is None:
            return None
        return float((self.predictions == self.labels).mean())

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"predictions": self.predictions, "probabilities": self.probabilities}
        if self.labels is not None:
            arrays["labels"] = self.labels
        return arrays


def read_labelled_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An .npz of `images` (N, 28, 28) uint8, light on dark, and optional `labels` (N,) in 0-9."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() != ".npz":
        raise ZspaceError(f"{path} is not an .npz file; {_WHAT_TO_CLASSIFY}")
    arrays = read_npz(path, {"images": _NPZ_IMAGES, "labels": LABELS}, ignore_others=True)
    if "images" not in arrays:
        raise ZspaceError(f"{path} has no 'images' array")
    images = arrays["images"]
    images = images[None] if images.ndim == 2 else images
    labels = arrays.get("labels")
    if labels is not None:
        labels = labels.reshape(-1).astype(np.int64)
        if len(labels) != len(images):
            raise ZspaceError(f"{path}: {len(labels)} labels for {len(images)} images")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ZspaceError(f"{path}: labels must be digits 0-9")
    if len(images) == 0:
        raise ZspaceError(f"{path} holds no images")
    return images, labels


def classify_batch(
    classifier: SavedClassifier, images: np.ndarray, labels=None, batch_size: int = 2048
) -> BatchResult:
    """Classify many MNIST-style images in batches (memory stays that of one batch)."""
    predictions, probabilities = [], []
    for start in range(0, len(images), batch_size):
        batch_labels, batch_probs = classifier.classify(images[start : start + batch_size])
        predictions.append(np.asarray(batch_labels, dtype=np.int64))
        probabilities.append(np.asarray(batch_probs, dtype=np.float32))
    return BatchResult(np.concatenate(predictions), np.concatenate(probabilities), labels)
