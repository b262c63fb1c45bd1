"""The class-conditional Gaussian-mixture baseline in latent space.

For each digit, a mixture of a few full-covariance Gaussians is fitted by EM to the
autoencoder codes of that digit's training images; samples are drawn from the digit's mixture
and decoded by the same decoder as GAN samples. Achlioptas et al. (2018, "Learning
Representations and Generative Models for 3D Point Clouds") found such mixtures a strong
baseline for generative models in an autoencoder's latent space: a latent GAN should beat it.

    gmm = ClassConditionalGMM.fit(codes, labels, components=4, seed=0)
    codes = gmm.sample(torch.tensor([7, 7, 3]), torch.Generator().manual_seed(0))

A fitted baseline lives in a run folder of kind "gmm-baseline" (config.json + gmm.safetensors)
that `load_gmm_baseline` (and `zspace.load`) turns into a Sampler, like a conditional latent
GAN.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.checkpoint import load_tensors, save_tensors
from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.errors import RunError, ZspaceError
from zspace.models.autoencoder import Autoencoder
from zspace.models.encoders import AutoencoderConfig
from zspace.runs import AUTOENCODER, GMM_BASELINE, RunDir, check_claimable, load_weights_into
from zspace.sampling.latent import decode_codes, encode_images, load_autoencoder
from zspace.sampling.sampler import (
    check_sample_request,
    labels_for,
    noise_stream,
    requested_digits,
)
from zspace.training.cards import Command, run_environment, write_card

WEIGHTS_FILE = "gmm.safetensors"
AUTOENCODER_FILE = "autoencoder.safetensors"


def kmeans_plus_plus(points: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Pick `count` seed centres from (N, D) points: each next one with probability
    proportional to its squared distance from the nearest centre chosen so far."""
    first = torch.randint(len(points), (1,), generator=generator)
    centres = [points[first[0]]]
    nearest = ((points - centres[0]) ** 2).sum(dim=1)
    for _ in range(1, count):
        weights = nearest.clamp_min(0)
        if weights.sum() <= 0:  # all points coincide with a centre already
            weights = torch.ones_like(weights)
        index = torch.multinomial(weights, 1, generator=generator)[0]
        centres.append(points[index])
        nearest = torch.minimum(nearest, ((points - points[index]) ** 2).sum(dim=1))
    return torch.stack(centres)


def kmeans(points: torch.Tensor, centres: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """A few Lloyd iterations; returns each point's cluster index (N,)."""
    for _ in range(iterations):
        assignment = torch.cdist(points, centres).argmin(dim=1)
        for cluster in range(len(centres)):
            members = points[assignment == cluster]
            if len(members):
                centres[cluster] = members.mean(dim=0)
    return torch.cdist(points, centres).argmin(dim=1)


def gaussian_log_densities(points, means, cholesky) -> torch.Tensor:
    """log N(x | mean_k, L_k L_k^T) for (N, D) points and K components -> (N, K)."""
    dim = points.shape[1]
    centred = points[None, :, :] - means[:, None, :]  # (K, N, D)
    # Solve L z = (x - mu)^T for each component: |z|^2 is the Mahalanobis distance.
    solved = torch.linalg.solve_triangular(cholesky, centred.transpose(1, 2), upper=False)
    mahalanobis = (solved**2).sum(dim=1)  # (K, N)
    log_det = 2 * torch.log(torch.diagonal(cholesky, dim1=1, dim2=2)).sum(dim=1)  # (K,)
    return (-0.5 * (mahalanobis + log_det[:, None] + dim * math.log(2 * math.pi))).T


def fit_gaussian_mixture(
    points: torch.Tensor,
    components: int,
    generator: torch.Generator,
    iterations: int = 200,
    tolerance: float = 1e-5,
    regularisation: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """EM for a full-covariance mixture on (N, D) points, in float64.

    Starts from k-means++ seeds refined by k-means. `regularisation` times the mean per-dimension
    variance is added to each covariance's diagonal, which keeps them invertible for small or
    nearly flat clusters. Returns (weights (K,), means (K, D), covariances (K, D, D),
    mean log-likelihood per point).
    """
    points = points.double()
    count, dim = points.shape
    if count < components * 2:
        raise ZspaceError(f"{count} codes are too few for {components} mixture components")
    ridge = regularisation * points.var(dim=0).mean().clamp_min(1e-12)
    eye = torch.eye(dim, dtype=points.dtype, device=points.device)

    assignment = kmeans(points, kmeans_plus_plus(points, components, generator))
    responsibilities = torch.nn.functional.one_hot(assignment, components).double()
    previous = -math.inf
    log_likelihood = -math.inf
    for _ in range(iterations):
        # M-step: weighted counts, means and covariances.
        totals = responsibilities.sum(dim=0) + 1e-10  # (K,)
        weights = totals / count
        means = responsibilities.T @ points / totals[:, None]
        centred = points[None, :, :] - means[:, None, :]  # (K, N, D)
        weighted = centred * responsibilities.T[:, :, None]
        covariances = weighted.transpose(1, 2) @ centred / totals[:, None, None] + ridge * eye
        # E-step.
        cholesky = torch.linalg.cholesky(covariances)
        joint = gaussian_log_densities(points, means, cholesky) + torch.log(weights)[None, :]
        per_point = torch.logsumexp(joint, dim=1)
        responsibilities = torch.exp(joint - per_point[:, None])
        log_likelihood = per_point.mean().item()
        if log_likelihood - previous < tolerance * max(1.0, abs(log_likelihood)):
            break
        previous = log_likelihood
    return weights, means, covariances, log_likelihood


class ClassConditionalGMM:
    """One Gaussian mixture per class over latent codes.

    Shapes: weights (C, K), means (C, K, D), covariances (C, K, D, D); float64.
    """

    def __init__(self, weights, means, covariances, log_likelihoods=None):
        self.weights = weights.double()
        self.means = means.double()
        self.covariances = covariances.double()
        try:
            self.cholesky = torch.linalg.cholesky(self.covariances)
        except RuntimeError as error:
            raise RunError("mixture covariances are not positive definite") from error
        self.log_likelihoods = log_likelihoods

    @property
    def num_classes(self) -> int:
        return self.weights.shape[0]

    @property
    def components(self) -> int:
        return self.weights.shape[1]

    @property
    def latent_dim(self) -> int:
        return self.means.shape[2]

    @classmethod
    def fit(
        cls,
        codes: torch.Tensor,
        labels: torch.Tensor,
        components: int = 4,
        seed: int = 0,
        num_classes: int = 10,
        iterations: int = 200,
        regularisation: float = 1e-3,
    ) -> ClassConditionalGMM:
        """Fit a `components`-Gaussian mixture to the (N, D) codes of each class in 0..C-1."""
        if components < 1:
            raise ZspaceError(f"components must be at least 1, got {components}")
        if codes.dim() != 2 or labels.shape != (len(codes),):
            raise ZspaceError(
                f"codes must be (N, D) and labels (N,), got {tuple(codes.shape)} and "
                f"{tuple(labels.shape)}"
            )
        codes, labels = codes.detach().cpu().double(), labels.detach().cpu().long()
        generator = torch.Generator().manual_seed(seed)
        fitted = []
        for label in range(num_classes):
            members = codes[labels == label]
            if len(members) == 0:
                raise ZspaceError(f"no codes for class {label}; cannot fit its mixture")
            fitted.append(
                fit_gaussian_mixture(
                    members, components, generator, iterations, regularisation=regularisation
                )
            )
        weights, means, covariances, log_likelihoods = zip(*fitted)
        return cls(
            torch.stack(weights),
            torch.stack(means),
            torch.stack(covariances),
            list(log_likelihoods),
        )

    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None):
        """Draw one code per entry of `labels` (int64 (N,)) -> float32 (N, D) codes."""
        labels = torch.as_tensor(labels).long().cpu()
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ZspaceError(f"labels must lie in 0..{self.num_classes - 1}")
        component = torch.multinomial(self.weights[labels], 1, generator=generator)[:, 0]
        noise = torch.randn(len(labels), self.latent_dim, generator=generator, dtype=torch.float64)
        factors = self.cholesky[labels, component]  # (N, D, D)
        codes = self.means[labels, component] + (factors @ noise[:, :, None])[:, :, 0]
        return codes.float()

    def log_prob(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log p(code | label) per row, float64 (N,)."""
        codes, labels = codes.double().cpu(), torch.as_tensor(labels).long().cpu()
        result = torch.empty(len(codes), dtype=torch.float64)
        for label in labels.unique().tolist():
            rows = labels == label
            joint = (
                gaussian_log_densities(codes[rows], self.means[label], self.cholesky[label])
                + torch.log(self.weights[label])[None, :]
            )
            result[rows] = torch.logsumexp(joint, dim=1)
        return result

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights, "means": self.means, "covariances": self.covariances}

    def save(self, path: str | Path) -> None:
        save_tensors(Path(path), self.tensors())

    @classmethod
    def load(cls, path: str | Path) -> ClassConditionalGMM:
        tensors, _ = load_tensors(Path(path))
        missing = {"weights", "means", "covariances"} - set(tensors)
        if missing:
            raise RunError(f"{path} is not a saved mixture (missing {sorted(missing)})")
        return cls(tensors["weights"], tensors["means"], tensors["covariances"])


class GMMBaseline:
    """A fitted mixture plus its autoencoder's decoder: a Sampler, like a conditional GAN.

    It has no noise space: noise interpolation and restyles do not apply to it."""

    kind = GMM_BASELINE
    conditional = True
    has_noise = False

    def __init__(self, gmm: ClassConditionalGMM, autoencoder, run_dir: str | Path | None = None):
        self.gmm = gmm
        self.autoencoder = autoencoder
        self.run_dir = None if run_dir is None else Path(run_dir)

    def __repr__(self) -> str:
        return f"GMMBaseline(components={self.gmm.components}, run_dir={self.run_dir})"

    def sample_codes(self, digit: int | None = None, n: int = 4, seed: int = 0):
        """(codes (M, latent_dim), labels int64 (M,)): n codes of `digit`, or n of each digit.

        Each digit draws from its own stream seeded by (seed, digit), as GAN sampling does, so
        row d of `sample(n=16, seed=3)` equals `sample(digit=d, n=16, seed=3)`.
        """
        check_sample_request(digit, n, True, self.gmm.num_classes)
        digits = requested_digits(digit, conditional=True)
        codes = torch.cat(
            [
                self.gmm.sample(torch.full((n,), d, dtype=torch.long), noise_stream(seed, d))
                for d in digits
            ]
        )
        return codes, labels_for(digits, n)

    def sample_with_labels(self, digit: int | None = None, n: int = 4, seed: int = 0):
        """(images float (M, 1, 28, 28) in [0, 1] on CPU, labels int64 (M,)); see
        `sample_codes`."""
        codes, labels = self.sample_codes(digit, n, seed)
        return decode_codes(self.autoencoder, codes), labels

    def sample(self, digit: int | None = None, n: int = 4, seed: int = 0) -> torch.Tensor:
        """Images only; see `sample_with_labels`."""
        return self.sample_with_labels(digit, n, seed)[0]


def fit_gmm_baseline(
    ae_run: str | Path,
    out: str | Path,
    components: int = 4,
    seed: int = 0,
    data_dir=None,
    device: str = "cpu",
    limit: int | None = None,
) -> GMMBaseline:
    """Encode the AE run's training images, fit the mixture per digit, save a gmm-baseline run."""
    run = RunDir(out)
    if run.exists():
        raise ZspaceError(f"{run.path} already holds a run; choose another --out")
    check_claimable(run.path, GMM_BASELINE)  # before any work: never into a user's folder
    ae_config = RunDir(ae_run).read_config(AUTOENCODER)
    autoencoder = load_autoencoder(ae_run, device)
    dataset_name = ae_config["training"]["dataset"]
    dataset = load_dataset(dataset_name, data_dir=data_dir, limit=limit)
    if dataset.train_labels is None:
        raise ZspaceError(f"{dataset_name} has no labels; a class-conditional mixture needs them")
    started = time.perf_counter()
    codes = encode_images(autoencoder, dataset.train_images)
    gmm = ClassConditionalGMM.fit(codes, dataset.train_labels, components=components, seed=seed)
    seconds = time.perf_counter() - started
    # The run carries its own copy of the autoencoder (as GAN runs do), so it stays usable
    # when the autoencoder run is moved or deleted.
    run.claim(GMM_BASELINE)
    save_tensors(run.file(AUTOENCODER_FILE), autoencoder.state_dict())
    gmm.save(run.file(WEIGHTS_FILE))
    run.write_config(
        GMM_BASELINE,
        {
            "autoencoder": {"run": str(Path(ae_run).resolve()), "model": ae_config["model"]},
            "dataset": dataset_name,
            "components": components,
            "seed": seed,
            "limit": limit,
            "latent_dim": gmm.latent_dim,
            "train_count": len(codes),
            "mean_log_likelihood": gmm.log_likelihoods,
            "conditional": True,
            "environment": run_environment(
                resolve_device(device) if isinstance(device, str) else device
            ),
        },
    )
    run.append_metrics(
        {
            "mean_log_likelihood": sum(gmm.log_likelihoods) / len(gmm.log_likelihoods),
            "seconds": round(seconds, 3),
        }
    )
    write_card(run.path)
    return GMMBaseline(gmm, autoencoder, run.path)


def command_for_run(run: RunDir, config: dict) -> Command:
    """The `zspace fit-gmm` command that makes this run (for its model card): every setting
    has a flag, and the dataset is the autoencoder's."""
    args = ["fit-gmm", "--ae", config["autoencoder"]["run"], "--out", run.path]
    args += ["--components", config["components"], "--seed", config["seed"]]
    if config.get("limit") is not None:
        args += ["--limit", config["limit"]]
    return Command(args)


def load_gmm_baseline(run_dir: str | Path, device: str | torch.device = "cpu") -> GMMBaseline:
    """Rebuild a GMMBaseline from its run folder (mixture + its copy of the autoencoder)."""
    run = RunDir(run_dir)
    config = run.read_config(GMM_BASELINE)
    gmm = ClassConditionalGMM.load(run.file(WEIGHTS_FILE))
    try:
        with check.reading(run.config_path):
            ae_config = AutoencoderConfig.from_dict(config["autoencoder"]["model"])
    except (KeyError, TypeError) as error:
        raise RunError(f"{run.config_path} does not describe its autoencoder") from error
    torch_device = resolve_device(device) if isinstance(device, str) else device
    autoencoder = Autoencoder(ae_config).to(torch_device)
    load_weights_into(autoencoder, run, AUTOENCODER_FILE, torch_device)
    autoencoder.eval()
    if autoencoder.latent_dim != gmm.latent_dim:
        raise RunError(
            f"{run.path}: the mixture is {gmm.latent_dim}-d but the autoencoder has "
            f"{autoencoder.latent_dim}-d codes"
        )
    return GMMBaseline(gmm, autoencoder, run.path)
