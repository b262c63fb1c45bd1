"""Train a GAN on the codes of a trained autoencoder (latent-gan) or on raw pixels (pixel-gan).

Both kinds share one recipe: the training data is encoded once and held as a tensor on the
device, batches are drawn by index, each step updates D on a real and a generated batch and then
G, and `run_epochs` checkpoints every epoch so `--resume` continues exactly. After each epoch a
grid of samples from fixed noise is saved and, when an evaluation classifier is given, the class
histogram of generated samples is logged as a mode-collapse check.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from zspace.checkpoint import save_tensors
from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.distributed import (
    all_reduce_mean,
    average_gradients,
    barrier,
    init_distributed,
    local_device,
    shard_of_batch,
)
from zspace.errors import ZspaceError
from zspace.figures import save_grid
from zspace.generation import LATENT_GAN_KIND, PIXEL_GAN_KIND, GANSampler
from zspace.models.autoencoder import to_float_images
from zspace.models.gan import CodeScaler, Discriminator, GANConfig, Generator
from zspace.runs import RunDir
from zspace.training.loop import (
    TrainingParts,
    progress_bar,
    run_epochs,
    set_learning_rate,
    shuffled_batches,
)

SPACES = ("latent", "pixels")
SAMPLES_FOLDER = "samples"


@dataclass
class GANTrainingConfig:
    """How a GAN was trained (saved in config.json under "training")."""

    space: str = "latent"
    dataset: str = "mnist"
    limit: int | None = None
    epochs: int = 20  # see the measurements in zspace.models.gan
    seed: int = 0
    # Stop after the first epoch that ends past this many seconds of training (summed over
    # resumed sessions), for comparisons under equal wall-clock budgets.
    time_budget: float | None = None
    # Samples classified after each epoch for the mode-collapse check (0 turns it off).
    monitor_samples: int = 1000
    # Steps of fitting a noise inverter after training (zspace.inversion: fast, close
    # restyles and interpolation endpoints); 0 fits none. 500 take about 7 s on 2 CPU cores.
    inverter_steps: int = 500

    def validate(self) -> None:
        if self.space not in SPACES:
            raise ZspaceError(f"--space must be one of {SPACES}, got {self.space!r}")
        if self.epochs < 1:
            raise ZspaceError(f"--epochs must be at least 1, got {self.epochs}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ZspaceError(f"--time-budget must be positive, got {self.time_budget}")
        if self.monitor_samples < 0:
            raise ZspaceError("monitor_samples must be >= 0")
        if self.inverter_steps < 0:
            raise ZspaceError(f"--inverter-steps must be >= 0, got {self.inverter_steps}")

    @classmethod
    def from_dict(cls, data: dict) -> GANTrainingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def discriminator_loss(config: GANConfig, real_logits, fake_logits) -> torch.Tensor:
    if config.loss == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    real_target = torch.full_like(real_logits, config.real_label)
    return F.binary_cross_entropy_with_logits(
        real_logits, real_target
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(config: GANConfig, fake_logits) -> torch.Tensor:
    if config.loss == "hinge":
        return -fake_logits.mean()
    if config.loss == "minimax":  # minimise log(1 - D(G(z))) = -BCE(D(G(z)), 0)
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_step(
    config: GANConfig, discriminator, optimizer, real, fake, labels, sync=None, step: int = 0
) -> tuple[torch.Tensor, dict]:
    """One D update on a real batch and a generated batch (`fake`, detached here) of the same
    labels. Returns the detached loss and the terms logged beside it: mean real and fake
    logits and, on steps with an R1 penalty, the mean squared gradient norm on real data."""
    fake = fake.detach()
    penalize = config.r1_weight > 0 and step % config.r1_interval == 0
    if penalize:
        real = real.detach().requires_grad_(True)
    real_logits, real_classes = discriminator.scores(real, labels)
    fake_logits, _ = discriminator.scores(fake, labels)
    loss = discriminator_loss(config, real_logits, fake_logits)
    if real_classes is not None:
        loss = loss + config.auxiliary_weight * F.cross_entropy(real_classes, labels)
    terms = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
    if penalize:
        (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        penalty = gradient.pow(2).sum(1).mean()
        loss = loss + 0.5 * config.r1_weight * config.r1_interval * penalty
        terms["r1"] = penalty.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        sync(discriminator)  # average gradients across data-parallel ranks
    optimizer.step()
    return loss.detach(), terms


def generator_step(
    config: GANConfig, discriminator, optimizer, fake, labels, sync=None, generator=None
) -> torch.Tensor:
    """One G update from a generated batch (with its graph); returns the detached loss."""
    discriminator.requires_grad_(False)  # G's step needs no gradients for D's weights
    judged_logits, judged_classes = discriminator.scores(fake, labels)
    loss = generator_loss(config, judged_logits)
    if judged_classes is not None:
        loss = loss + config.auxiliary_weight * F.cross_entropy(judged_classes, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if sync is not None:
        sync(generator)
    optimizer.step()
    discriminator.requires_grad_(True)
    return loss.detach()


@torch.no_grad()
def update_average(average, generator, decay: float, step: int) -> None:
    """average <- decay * average + (1 - decay) * generator, with a warm-up.

    The effective decay min(decay, (1 + step) / (10 + step)) keeps the first steps' random
    weights from lingering in the average of a short run.
    """
    decay = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(average.parameters()), list(generator.parameters()), 1 - decay)


@dataclass
class GANData:
    """What the GAN learns from: (N, data_dim) raw data, labels, and the AE (latent space)."""

    data: torch.Tensor
    labels: torch.Tensor | None
    autoencoder: object | None
    autoencoder_config: dict | None


def prepare_data(
    training: GANTrainingConfig, ae_run: str | Path | None, data_dir, device: torch.device
) -> GANData:
    """Training images as flat pixels, or encoded once by the autoencoder into codes."""
    dataset = load_dataset(training.dataset, data_dir=data_dir, limit=training.limit)
    if training.space == "pixels":
        data = to_float_images(dataset.train_images).reshape(len(dataset.train_images), -1)
        return GANData(data.to(device), dataset.train_labels, None, None)
    if ae_run is None:
        raise ZspaceError("a latent GAN needs --ae AE_RUN (a trained autoencoder run folder)")
    from zspace.latent import encode_images
    from zspace.training.autoencoder import load_autoencoder

    autoencoder = load_autoencoder(ae_run, device)
    codes = encode_images(autoencoder, dataset.train_images)
    ae_config = RunDir(ae_run).read_config("autoencoder")
    return GANData(codes.to(device), dataset.train_labels, autoencoder, ae_config)


class _BudgetSpent(Exception):
    """Raised after an epoch's checkpoint once the wall-clock budget is used up."""


def _kl_from_uniform(histogram: torch.Tensor) -> float:
    p = histogram.clamp_min(1e-12)
    return float((p * (p * len(p)).log()).sum())


def train_gan(
    out: str | Path,
    gan_config: GANConfig,
    training: GANTrainingConfig | None = None,
    ae_run: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    classifier=None,
) -> GANSampler:
    """Train (or resume) a latent-gan / pixel-gan run in folder `out`; returns its sampler.

    `classifier` (optional) has `predict(images) -> (labels, probs)`; it drives the per-epoch
    mode-collapse check (class histogram, and accuracy on requested digits when conditional).
    """
    training = training or GANTrainingConfig()
    training.validate()
    gan_config.validate()
    run = RunDir(out)
    torch_device = resolve_device(device)
    context = init_distributed(torch_device)  # no-op unless launched by torchrun
    torch_device = local_device(torch_device, context)
    if context.enabled and training.time_budget is not None:
        raise ZspaceError("--time-budget is not supported under torchrun")
    if run.exists() and not resume:
        raise ZspaceError(f"{run.path} already holds a run; pass --resume or choose another --out")
    prepared = prepare_data(training, ae_run, data_dir, torch_device)
    if gan_config.conditional and prepared.labels is None:
        raise ZspaceError(f"{training.dataset} has no labels; a conditional GAN needs them")
    if gan_config.data_dim != prepared.data.shape[1]:
        raise ZspaceError(
            f"the GAN config expects {gan_config.data_dim}-d data, got {prepared.data.shape[1]}"
        )
    kind = LATENT_GAN_KIND if training.space == "latent" else PIXEL_GAN_KIND
    extra = {}
    if prepared.autoencoder_config is not None:
        extra["autoencoder"] = {
            "model": prepared.autoencoder_config["model"],
            "source": str(Path(ae_run).resolve()),
        }
    barrier(context)  # every rank has checked the folder before rank 0 writes into it
    if context.is_main:
        run.write_config(
            kind,
            {
                "model": gan_config.to_dict(),
                "training": asdict(training),
                "conditional": gan_config.conditional,
                **extra,
            },
        )
    if prepared.autoencoder is not None and context.is_main:
        # The run carries its own copy of the decoder so it keeps working if the AE moves.
        save_tensors(run.file("autoencoder.safetensors"), prepared.autoencoder.state_dict())

    torch.manual_seed(training.seed)
    generator = Generator(gan_config).to(torch_device)
    discriminator = Discriminator(gan_config).to(torch_device)
    scaler = CodeScaler(gan_config.data_dim).to(torch_device)
    if training.space == "pixels":
        scaler.set(0.5, 0.5)  # pixels in [0, 1] -> [-1, 1]
    elif gan_config.standardize:
        scaler.fit(prepared.data)
    data = scaler(prepared.data)  # what D sees as real, (N, data_dim)
    labels = None if not gan_config.conditional else prepared.labels.to(torch_device)
    generator.fit_base(data, labels)  # before the EMA copy, which shares the fitted base
    betas = tuple(gan_config.betas)
    optimizer_g = torch.optim.Adam(generator.parameters(), gan_config.learning_rate_g, betas=betas)
    optimizer_d = torch.optim.Adam(
        discriminator.parameters(), gan_config.learning_rate_d, betas=betas
    )
    modules = {"generator": generator, "discriminator": discriminator, "scaler": scaler}
    average = None
    if gan_config.ema_decay > 0:
        # A separate module (and weights file) so that resume restores it exactly.
        average = copy.deepcopy(generator).requires_grad_(False)
        modules["generator_ema"] = average
    sampler = GANSampler(gan_config, average or generator, scaler, prepared.autoencoder, kind)

    def sync(module) -> None:
        average_gradients(module, context)

    steps_per_epoch = -(-len(data) // gan_config.batch_size)
    total_steps = steps_per_epoch * training.epochs

    def learning_rate_factor(step: int) -> float:
        if gan_config.lr_schedule == "linear":
            return max(0.0, 1.0 - step / total_steps)
        return 1.0

    def train_epoch(epoch: int) -> dict:
        generator.train()
        discriminator.train()
        # With a time budget the epoch may end early, at the step that uses the budget up.
        deadline = None
        if training.time_budget is not None:
            deadline = time.perf_counter() + training.time_budget - training_seconds(run.path)
        steps = 0
        sums = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        if gan_config.r1_weight > 0:
            sums["r1"] = 0.0
        penalized = 0  # D steps that carried the R1 penalty this epoch
        batches = shuffled_batches(
            len(data),
            gan_config.batch_size,
            training.seed,
            epoch,
            torch_device,
            min_batch=context.world_size,
        )
        bar = progress_bar(batches, steps_per_epoch, f"epoch {epoch}", progress and context.is_main)
        for indices in bar:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            # Every schedule is a function of the global step, so resume continues exactly.
            step = (epoch - 1) * steps_per_epoch + steps
            steps += 1
            factor = learning_rate_factor(step)
            set_learning_rate(optimizer_d, gan_config.learning_rate_d * factor)
            set_learning_rate(optimizer_g, gan_config.learning_rate_g * factor)
            # Noise is drawn for the whole global batch on every rank (the same RNG state
            # everywhere), then each rank keeps its share: one process sees the same noise.
            noise = torch.randn(len(indices), gan_config.noise_dim, device=torch_device)
            if context.enabled:
                share = shard_of_batch(torch.arange(len(indices), device=torch_device), context)
                indices, noise = indices[share], noise[share]
            real = data[indices]
            batch_labels = None if labels is None else labels[indices]
            # G steps after every d_steps-th D step, on the batch that D step judged.
            g_step = (step + 1) % gan_config.d_steps == 0
            with torch.set_grad_enabled(g_step):
                fake = generator(noise, batch_labels)
            d_loss, terms = discriminator_step(
                gan_config, discriminator, optimizer_d, real, fake, batch_labels, sync, step
            )
            penalized += "r1" in terms
            for name, value in terms.items():
                sums[name] += value
            sums["d_loss"] += d_loss
            if not g_step:
                continue
            sums["g_loss"] += generator_step(
                gan_config, discriminator, optimizer_g, fake, batch_labels, sync, generator
            )
            if average is not None:
                update_average(average, generator, gan_config.ema_decay, step // gan_config.d_steps)
        counts = {"r1": penalized}  # the R1 term is averaged over the steps that had it
        record = {
            name: all_reduce_mean(
                float(value) / max(counts.get(name, steps), 1), context, torch_device
            )
            for name, value in sums.items()
        }
        record["g_loss"] *= gan_config.d_steps  # G stepped once per d_steps batches
        if steps < steps_per_epoch:
            record["steps"] = steps
        if context.is_main:
            record.update(epoch_report(sampler, run, epoch, training, classifier))
        return record

    parts = TrainingParts(
        modules=modules, optimizers={"generator": optimizer_g, "discriminator": optimizer_d}
    )

    def stop_when_budget_spent(epoch: int, record: dict) -> None:
        if training.time_budget is None:
            return
        spent = sum(r.get("seconds", 0.0) for r in run.read_metrics())
        if spent >= training.time_budget:
            raise _BudgetSpent

    epochs_before = len(run.read_metrics()) if resume else 0
    try:
        run_epochs(
            run,
            parts,
            training.epochs,
            train_epoch,
            torch_device,
            resume=resume,
            on_epoch_end=stop_when_budget_spent,
            is_main_process=context.is_main,
        )
    except _BudgetSpent:
        pass
    barrier(context)
    generator.eval()
    sampler.generator.eval()
    if training.inverter_steps > 0 and context.is_main:
        sampler.inverter = _fit_or_reuse_inverter(
            run, sampler, prepared, training, epochs_before, progress
        )
    barrier(context)  # under torchrun the other ranks wait for rank 0's inverter
    return sampler


def _fit_or_reuse_inverter(
    run: RunDir, sampler, prepared, training, epochs_before: int, progress: bool
):
    """Fit the run's noise inverter and save it; a resumed run that trained no further epochs
    keeps the one it has."""
    from zspace.training.inverter import (
        INVERTER_FILE,
        InverterTrainingConfig,
        fit_inverter,
        load_inverter,
        save_inverter,
    )

    if len(run.read_metrics()) == epochs_before and run.file(INVERTER_FILE).exists():
        return load_inverter(run.path, sampler.config, sampler.device)
    settings = InverterTrainingConfig(steps=training.inverter_steps, seed=training.seed)
    inverter = fit_inverter(sampler, prepared.data, prepared.labels, settings, progress=progress)
    save_inverter(run.path, inverter, settings)
    return inverter


@torch.no_grad()
def epoch_report(
    sampler: GANSampler, run: RunDir, epoch: int, training: GANTrainingConfig, classifier
) -> dict:
    """Save samples/epoch_XXX.png from fixed noise; with a classifier, the class histogram of
    `monitor_samples` generated images (a collapsed GAN piles into few classes)."""
    # Fixed noise from seeded CPU streams: the global RNG, which resume restores, is untouched.
    if sampler.conditional:
        images, _ = sampler.sample_with_labels(n=10, seed=training.seed)
    else:
        images = sampler.images(sampler.noise(100, training.seed))
    save_grid(images, run.file(f"{SAMPLES_FOLDER}/epoch_{epoch:03d}.png"), ncols=10, scale=1)
    report: dict = {}
    if classifier is None or training.monitor_samples == 0:
        return report
    count = training.monitor_samples
    noise = sampler.noise(count, training.seed + 1)
    requested = torch.arange(count) % 10 if sampler.conditional else None
    predicted, _ = classifier.predict(sampler.images(noise, requested))
    predicted = predicted.cpu()
    histogram = torch.bincount(predicted, minlength=10).float() / count
    report["class_histogram"] = [round(float(v), 4) for v in histogram]
    report["kl_from_uniform"] = round(_kl_from_uniform(histogram), 5)
    if requested is not None:
        report["requested_accuracy"] = float((predicted == requested).float().mean())
    return report


def load_monitor_classifier(data_dir=None, device="cpu", progress=True):
    """The evaluation classifier for the mode-collapse check, or None if it is unavailable."""
    try:
        from zspace.evaluation.classifier import load_eval_classifier
    except ImportError:
        return None
    return load_eval_classifier(
        dataset="mnist", data_dir=data_dir, device=device, progress=progress
    )


def training_seconds(run_dir: str | Path) -> float:
    """Wall-clock seconds of training recorded in a run's metrics (all sessions)."""
    return sum(r.get("seconds", 0.0) for r in RunDir(run_dir).read_metrics())


def read_saved_configs(run_dir: str | Path) -> tuple[str, GANConfig, GANTrainingConfig]:
    saved = RunDir(run_dir).read_config((LATENT_GAN_KIND, PIXEL_GAN_KIND))
    return (
        saved["kind"],
        GANConfig.from_dict(saved["model"]),
        GANTrainingConfig.from_dict(saved["training"]),
    )


__all__ = [
    "GANTrainingConfig",
    "discriminator_loss",
    "generator_loss",
    "load_monitor_classifier",
    "read_saved_configs",
    "train_gan",
    "training_seconds",
]
