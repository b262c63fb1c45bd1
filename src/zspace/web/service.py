"""What the web API computes, as plain synchronous functions over the loaded models.

The FastAPI layer (app.py) validates requests and runs these methods in a lane (lanes.py); they
take and return tensors and plain values, so they can be tested and reused without HTTP. The
generator is any Sampler (zspace.sampling.sampler); noise-space operations (noise paths,
restyles) need one with noise, and answer one line for one without (a gmm-baseline run).
Translations (restyles by a translator run, translators.py) need only the translators.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zspace.errors import ZspaceError
from zspace.models.images import to_float_images
from zspace.sampling.interpolation import slerp
from zspace.sampling.inversion import invert
from zspace.sampling.latent import decode_codes, encode_images
from zspace.sampling.sampler import NUM_DIGITS, refuse_without_noise
from zspace.web.translators import RESTYLE_METHOD, TranslatorSet

# For a run without a fitted inverter: Adam steps and random starts when fitting noise to an
# upload (about 50 ms on one core; with an inverter, about 5 ms and a closer match).
RESTYLE_STEPS = 100
RESTYLE_RESTARTS = 8
RESTYLE_ACTION = "restyle an upload"


class ServiceUnavailable(ZspaceError):
    """The request is valid but the server was started without the model it needs."""


def one_torch_thread() -> None:
    """Run in each inference thread or worker: its torch ops use one core. Requests run side by
    side instead; splitting a forward pass this small across cores costs more than it saves."""
    torch.set_num_threads(1)


def _one_hot(digit: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(digit), NUM_DIGITS).float()


@dataclass
class Classification:
    digit: int
    probabilities: list[float]


class DigitService:
    """A sampler (conditional or not), an optional classifier and the translator runs served
    beside them, ready to answer requests."""

    def __init__(self, generator, classifier=None, translators: TranslatorSet | None = None):
        self.generator = generator
        self.classifier = classifier
        self.translators = translators or TranslatorSet()

    @property
    def conditional(self) -> bool:
        return bool(self.generator.conditional)

    @property
    def can_restyle(self) -> bool:
        """Whether restyles apply: a conditional sampler with noise."""
        return self.conditional and bool(self.generator.has_noise)

    @property
    def restyle_methods(self) -> list[str]:
        """The ways /api/restyle can redraw an upload: "restyle" (the generator's noise) when
        the run can, then the translator methods served beside it."""
        own = [RESTYLE_METHOD] if self.can_restyle else []
        return own + self.translators.methods

    def check_restyle_method(self, method: str | None) -> str:
        """The restyle method a request asks for (None: "restyle"), or one ZspaceError line when
        this server has no such method; checked before the upload is read."""
        if method is None or method == RESTYLE_METHOD:
            self.require_noise(RESTYLE_ACTION)
            return RESTYLE_METHOD
        if method not in self.translators.methods:
            offered = ", ".join(self.restyle_methods) or "none"
            raise ZspaceError(
                f"no restyle method {method[:40]!r} here; this server offers: {offered}"
            )
        return method

    @property
    def interpolation_spaces(self) -> list[str]:
        """The morph spaces this run has, the default first: "gan" (noise), "ae" (codes)."""
        spaces = ["gan"] if self.generator.has_noise else []
        return spaces + (["ae"] if self.generator.autoencoder is not None else [])

    def require_noise(self, action: str) -> None:
        """One line (ZspaceError) when the sampler has no noise space to `action` in."""
        refuse_without_noise(self.generator, action)

    def generate(
        self, digit: int | None, n: int, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images float (M, 1, 28, 28), labels (M,) or None); see the sampler's contract."""
        return self.generator.sample_with_labels(digit=digit, n=n, seed=seed)

    def _check_digits(self, *digits: int | None) -> None:
        given = [d for d in digits if d is not None]
        if given and not self.conditional:
            raise ZspaceError("this run is unconditional; it cannot be asked for a digit")

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
        "ae" takes both ends' codes and walks the straight line between them.
        """
        self._check_interpolation(from_digit, to_digit, space)
        digits = (from_digit, from_digit if to_digit is None else to_digit)
        if space == "gan":
            return self._noise_path(digits, (seed, to_seed), steps)
        start, end = self._end_codes(digits, (seed, to_seed))
        fractions = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
        return self._images_from_codes((1 - fractions) * start + fractions * end)

    def _check_interpolation(self, from_digit: int | None, to_digit: int | None, space: str):
        self._check_digits(from_digit, to_digit)
        if self.conditional and from_digit is None:
            raise ZspaceError("from_digit is required: this run is conditional")
        if space == "gan":
            self.require_noise("interpolate with space=gan; use space=ae")
        if space == "ae" and self.generator.autoencoder is None:
            raise ZspaceError("space=ae needs a latent-space run (this one has no autoencoder)")

    def _noise_path(self, digits: tuple, seeds: tuple, steps: int) -> torch.Tensor:
        """Noise along the great circle between the seeds' noise, labels along a line."""
        start, end = (self.generator.noise(1, seed)[0] for seed in seeds)
        labels = None
        if self.conditional:
            fractions = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
            labels = (1 - fractions) * _one_hot(digits[0]) + fractions * _one_hot(digits[1])
        codes = self.generator.generate_codes(slerp(start, end, steps), labels)
        return self._images_from_codes(codes)

    def _end_codes(self, digits: tuple, seeds: tuple) -> torch.Tensor:
        """The two ends' codes (2, data_dim): a seed's noise given each end's label, or (for a
        sampler without noise) the sampler's draw for (digit, seed)."""
        if not self.generator.has_noise:
            pairs = zip(digits, seeds)
            return torch.cat([self.generator.sample_codes(d, 1, s)[0] for d, s in pairs])
        noise = torch.cat([self.generator.noise(1, seed) for seed in seeds])
        labels = torch.tensor(digits) if self.conditional else None
        return self.generator.generate_codes(noise, labels)

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
        self.require_noise(RESTYLE_ACTION)
        if not self.conditional:
            raise ZspaceError("restyling needs a conditional run; this one is unconditional")
        return self.upload_digit(image, source_digit)

    def upload_digit(
        self, image: torch.Tensor, source_digit: int | None = None
    ) -> tuple[int, Classification | None]:
        """(`source_digit`, None) if given, else the classifier's (digit, classification)."""
        if source_digit is not None:
            return source_digit, None
        if self.classifier is None:
            # The request's to fix (the schema requires source_digit here), so a 400, not 503.
            raise ZspaceError(
                "source_digit is required: no classifier is loaded to read the uploaded digit "
                "(or start the server with --classifier RUN)"
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
        noise, error = self._style_noise(image, source_digit, seed)
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

    def translate(
        self,
        image: torch.Tensor,
        method: str,
        digits: list[int] | None,
        source_digit: int | None = None,
    ) -> dict:
        """uint8 (28, 28) image of one digit -> the same writer's `digits` (None: every digit
        the method reaches) by a translator `method` (see TranslatorSet.translate).

        The image's digit comes from `source_digit` if given, else from the classifier.
        """
        source_digit, classification = self.upload_digit(image, source_digit)
        result = self.translators.translate(image, method, source_digit, digits)
        source = "request" if classification is None else "classifier"
        return {
            **result,
            "source_digit": source_digit,
            "source": source,
            "classification": classification,
        }

    def _style_noise(self, image: torch.Tensor, digit: int, seed: int):
        """(noise (1, noise_dim), error (1,)): the noise whose drawing of `digit` lands nearest
        the image's code; a conditional GAN's style lives in its noise."""
        image = to_float_images(image.reshape(1, 28, 28))
        if self.generator.autoencoder is not None:
            target = encode_images(self.generator.autoencoder, image)
        else:
            target = image.reshape(1, -1)
        return invert(
            self.generator,
            target,
            torch.tensor([digit]),
            steps=RESTYLE_STEPS,
            restarts=RESTYLE_RESTARTS,
            seed=seed,
        )
