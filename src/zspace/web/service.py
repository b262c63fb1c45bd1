"""What the web API computes, as plain synchronous functions over the loaded models.

The FastAPI layer (app.py) validates requests and runs these methods on a worker thread; they
take and return tensors and plain values, so they can be tested and reused without HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zspace.errors import ZspaceError
from zspace.models.images import to_float_images
from zspace.sampling.interpolation import slerp
from zspace.sampling.inversion import invert
from zspace.sampling.latent import decode_codes, encode_images

NUM_DIGITS = 10
# For a run without a fitted inverter: Adam steps and random starts when fitting noise to an
# upload (about 50 ms on one core; with an inverter, about 5 ms and a closer match).
RESTYLE_STEPS = 100
RESTYLE_RESTARTS = 8


class ServiceUnavailable(ZspaceError):
    """The request is valid but the server was started without the model it needs."""


def _one_hot(digit: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(digit), NUM_DIGITS).float()


@dataclass
class Classification:
    digit: int
    probabilities: list[float]


class DigitService:
    """A generator (conditional or not) and an optional classifier, ready to answer requests."""

    def __init__(self, generator, classifier=None):
        self.generator = generator
        self.classifier = classifier

    @property
    def conditional(self) -> bool:
        return bool(self.generator.conditional)

    def generate(
        self, digit: int | None, n: int, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images float (M, 1, 28, 28), labels (M,) or None); see the sampler's contract."""
        return self.generator.sample_with_labels(digit=digit, n=n, seed=seed)

    def _check_digits(self, *digits: int | None) -> None:
        given = [d for d in digits if d is not None]
        if given and not self.conditional:
            raise ZspaceError("this run is an unconditional GAN; it cannot be asked for a digit")

    def interpolate(
        self,
        from_digit: int | None,
        to_digit: int | None,
        seed: int,
        to_seed: int,
        steps: int,
        space: str,
    ) -> torch.Tensor:
        """Images along a path between two (digit, seed) points -> float (steps, 1, 28, 28).

        The noise for a seed does not depend on the digit, so a path between two digits at one
        seed keeps one handwriting style. "gan" walks the generator's inputs (noise along a
        great circle, the one-hot label linearly, the way the conditional GAN was fed);
        "ae" generates both ends and walks the straight line between their autoencoder codes.
        """
        self._check_digits(from_digit, to_digit)
        if self.conditional and from_digit is None:
            raise ZspaceError("from_digit is required: this run is a conditional GAN")
        if space == "ae" and self.generator.autoencoder is None:
            raise ZspaceError("space=ae needs a latent GAN run (this one has no autoencoder)")
        to_digit = from_digit if to_digit is None else to_digit
        noise_ends = self.generator.noise(1, seed)[0], self.generator.noise(1, to_seed)[0]
        fractions = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
        if space == "gan":
            noise = slerp(noise_ends[0], noise_ends[1], steps)
            labels = None
            if self.conditional:
                labels = (1 - fractions) * _one_hot(from_digit) + fractions * _one_hot(to_digit)
            return self._images_from_codes(self.generator.generate_codes(noise, labels))
        noise = torch.stack(noise_ends)
        labels = torch.tensor([from_digit, to_digit]) if self.conditional else None
        start, end = self.generator.generate_codes(noise, labels)
        return self._images_from_codes((1 - fractions) * start + fractions * end)

    def _images_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if self.generator.autoencoder is None:  # a pixel-space GAN outputs the pixels
            return codes.clamp(0, 1).reshape(-1, 1, 28, 28)
        if hasattr(self.generator, "codes_to_images"):
            # The sampler builds its fast inference decoder once; decode_codes would rebuild
            # it on every request (a few ms, more than the decoding itself).
            return self.generator.codes_to_images(codes)
        return decode_codes(self.generator.autoencoder, codes)

    def _require_classifier(self) -> None:
        if self.classifier is None:
            raise ServiceUnavailable(
                "no classifier is loaded; start the server with --classifier RUN"
            )

    def classify(self, image: torch.Tensor) -> Classification:
        """uint8 (28, 28) -> the classifier's digit and its ten probabilities."""
        self._require_classifier()
        labels, probabilities = self.classifier.classify(image.reshape(1, 28, 28))
        probabilities = torch.as_tensor(probabilities, dtype=torch.float32).reshape(-1)
        return Classification(int(torch.as_tensor(labels).reshape(-1)[0]), probabilities.tolist())

    def restyle_source(
        self, image: torch.Tensor, source_digit: int | None = None
    ) -> tuple[int, Classification | None]:
        """The digit an upload to restyle shows: (`source_digit`, None) if given, else the
        classifier's (digit, classification). Raises if this run cannot restyle at all."""
        if not self.conditional:
            raise ZspaceError("restyling needs a conditional GAN run; this one is unconditional")
        if source_digit is not None:
            return source_digit, None
        if self.classifier is None:
            raise ServiceUnavailable(
                "no classifier is loaded to read the uploaded digit; start the server "
                "with --classifier RUN or pass source_digit"
            )
        classification = self.classify(image)
        return classification.digit, classification

    def restyle(
        self,
        image: torch.Tensor,
        digits: list[int],
        source_digit: int | None = None,
        seed: int = 0,
    ) -> dict:
        """uint8 (28, 28) image of one digit -> the same style drawn as each of `digits`.

        The image's digit comes from `source_digit` if given, else from the classifier.
        Returns images (float (len(digits), 1, 28, 28)), the model's own rendering of the
        source digit in that style, the source digit and where it came from.
        """
        source_digit, classification = self.restyle_source(image, source_digit)
        # The style of a conditional GAN's sample lives in its noise: find the noise whose
        # generation of the source digit lands nearest the upload's code, then give that
        # noise the other labels.
        image = to_float_images(image.reshape(1, 28, 28))
        if self.generator.autoencoder is not None:
            target = encode_images(self.generator.autoencoder, image)
        else:
            target = image.reshape(1, -1)
        noise, error = invert(
            self.generator,
            target,
            torch.tensor([source_digit]),
            steps=RESTYLE_STEPS,
            restarts=RESTYLE_RESTARTS,
            seed=seed,
        )
        wanted = [*digits, source_digit]
        codes = self.generator.generate_codes(
            noise.repeat(len(wanted), 1), torch.tensor(wanted, dtype=torch.int64)
        )
        rendered = self._images_from_codes(codes)
        return {
            "images": rendered[:-1],
            "reconstruction": rendered[-1:],
            "source_digit": source_digit,
            "source": "request" if classification is None else "classifier",
            "classification": classification,
            "code_error": float(error[0]),
        }
