"""Train a GAN on the codes of a trained autoencoder (latent-gan) or on raw pixels (pixel-gan).

Both kinds share one recipe: the training data is encoded once and held as a tensor on the
device, batches are drawn by index, each step updates D on a real and a generated batch and then
G (`zspace.training.gan_steps`), and `run_epochs` checkpoints every epoch so `--resume` continues
exactly. After each epoch a grid of samples from fixed noise is saved and, when a monitor is
given, its figures (for example the class histogram of generated samples) are logged.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.checkpoint import save_tensors
from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.distributed import (
    DistributedContext,
    all_reduce_mean,
    average_gradients,
    barrier,
    init_distributed,
    local_device,
    shard_of_batch,
)
from zspace.errors import ZspaceError
from zspace.figures import save_grid
from zspace.loading import load_sampler
from zspace.models.gan import (
    CodeScaler,
    Discriminator,
    GANConfig,
    Generator,
    config_for_preset,
    split_legacy_gan_config,
)
from zspace.models.images import to_float_images
from zspace.models.presets import gan_preset
from zspace.runs import AUTOENCODER, LATENT_GAN, PIXEL_GAN, RunDir, check_claimable
from zspace.sampling.gan import GANSampler
from zspace.sampling.inversion import invert, load_inverter
from zspace.sampling.latent import encode_images, load_autoencoder
from zspace.sampling.sampler import refuse_without_noise
from zspace.training.cards import Command, run_environment, setting_differences, write_card
from zspace.training.gan_steps import discriminator_step, generator_step, update_average
from zspace.training.inverter import (
    InverterTrainingConfig,
    fit_inverter,
    has_inverter,
    save_inverter,
)
from zspace.training.loop import (
    TrainingParts,
    progress_bar,
    resume_configs,
    run_epochs,
    set_learning_rate,
    shuffled_batches,
    training_seconds,
)

SPACES = ("latent", "pixels")
LOSSES = ("bce", "minimax", "hinge")
LR_SCHEDULES = ("constant", "linear")
SAMPLES_FOLDER = "samples"
# The command-line flag of each setting that has one, for resume messages.
RESUME_FLAGS = {
    "model.preset": "--preset",
    "model.conditional": "--conditional",
    "training.space": "--space",
    "training.dataset": "--dataset",
    "training.limit": "--limit",
    "training.seed": "--seed",
    "training.batch_size": "--batch-size",
    "training.time_budget": "--time-budget",
    "training.monitor_samples": "--monitor-samples",
    "training.inverter_steps": "--inverter-steps",
}

# A monitor judges the sampler after each epoch: (sampler, epoch) -> figures to log.
Monitor = Callable[[GANSampler, int], dict]


@dataclass
class GANTrainingConfig:
    """How a GAN is trained: data, schedule, losses and optimiser (config.json's "training")."""

    space: str = "latent"
    dataset: str = "mnist"
    limit: int | None = None
    epochs: int = 20  # see docs/gan-experiments.md
    seed: int = 0
    # Stop after the first epoch that ends past this many seconds of training (summed over
    # resumed sessions), for comparisons under equal wall-clock budgets.
    time_budget: float | None = None
    # Samples the monitor judges after each epoch (0 turns the check off).
    monitor_samples: int = 1000
    # Steps of fitting a noise inverter after training (zspace.sampling.inversion: fast, close
    # restyles and interpolation endpoints); 0 fits none. 500 take about 7 s on 2 CPU cores.
    inverter_steps: int = 500
    # bce: D by binary cross-entropy, G by BCE against "real" (the non-saturating loss that
    # almost every BCE implementation uses); minimax: G minimises log(1 - D(G(z))), the
    # saturating loss of Goodfellow et al. 2014; hinge: Lim & Ye 2017 / Miyato et al. 2018.
    loss: str = "bce"
    # One-sided label smoothing: D's target for real data (Salimans et al. 2016).
    real_label: float = 1.0
    # Standardise the training data per dimension before the GAN sees it.
    standardize: bool = False
    # AC-GAN: the weight of the cross-entropy of D's class head (needs auxiliary_classifier).
    auxiliary_weight: float = 0.0
    learning_rate_g: float = 2e-4
    learning_rate_d: float = 2e-4
    betas: list = field(default_factory=lambda: [0.5, 0.999])
    batch_size: int = 128
    # "constant", or "linear": both learning rates fall linearly to 0 over the run's epochs.
    lr_schedule: str = "constant"
    # D updates per G update (each on a fresh real batch), as in WGAN-style training.
    d_steps: int = 1
    # R1 penalty (Mescheder et al. 2018): r1_weight / 2 * E ||grad_x D(x)||^2 on real data.
    r1_weight: float = 0.0
    # Lazy R1 (Karras et al. 2020): the penalty on every r1_interval-th D step only, scaled by
    # r1_interval so that its average strength stays the same; it is the costliest part of a
    # D step (a second backward pass).
    r1_interval: int = 1
    # Exponential moving average of G's weights (Karras et al. 2018; Yazici et al. 2019), used
    # for sampling; 0 turns it off. Its weights are saved as generator_ema.safetensors.
    ema_decay: float = 0.0

    @classmethod
    def for_preset(cls, name: str, **overrides) -> GANTrainingConfig:
        """The optimisation settings a GAN preset stands for, plus `overrides`."""
        return cls(**{**gan_preset(name, "training"), **overrides})

    def __post_init__(self):
        self.validate()

    def validate(self, model: GANConfig | None = None) -> None:
        """ZspaceError in one line for a value of the wrong type or range, or (given the
        model) a setting the architecture cannot honour."""
        self._check_fields()
        if model is None:
            return
        if self.loss == "hinge" and model.discriminator_output != "identity":
            raise ZspaceError("the hinge loss needs discriminator_output 'identity'")
        if self.auxiliary_weight > 0 and not model.auxiliary_classifier:
            raise ZspaceError("auxiliary_weight needs a model with auxiliary_classifier")

    def _check_fields(self) -> None:
        check.choice("space (--space)", self.space, SPACES)
        check.text("dataset (--dataset)", self.dataset)
        check.optional_whole_number("limit (--limit)", self.limit, 1, check.MAX_COUNT)
        check.whole_number("epochs (--epochs)", self.epochs, 1, check.MAX_COUNT)
        check.whole_number("seed (--seed)", self.seed, 0, check.MAX_SEED)
        check.optional_real_number(
            "time_budget (--time-budget)", self.time_budget, 0, 1e9, include_low=False
        )
        check.whole_number(
            "monitor_samples (--monitor-samples)", self.monitor_samples, 0, check.MAX_COUNT
        )
        check.whole_number(
            "inverter_steps (--inverter-steps)", self.inverter_steps, 0, check.MAX_COUNT
        )
        check.choice("GAN loss", self.loss, LOSSES)
        check.real_number("real_label", self.real_label, 0.0, 1.0, include_low=False)
        check.flag("standardize", self.standardize)
        check.real_number("auxiliary_weight", self.auxiliary_weight, 0.0, 1e6)
        check.learning_rate("learning_rate_g", self.learning_rate_g)
        check.learning_rate("learning_rate_d", self.learning_rate_d)
        if not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2:
            raise ZspaceError(f"betas must be a pair of numbers, got {check.shown(self.betas)}")
        for beta in self.betas:
            check.real_number("each of betas", beta, 0.0, 1.0)
        check.whole_number("batch_size (--batch-size)", self.batch_size, 1, check.MAX_COUNT)
        check.choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check.whole_number("d_steps", self.d_steps, 1, 1000)
        check.real_number("r1_weight", self.r1_weight, 0.0, 1e6)
        check.whole_number("r1_interval", self.r1_interval, 1, check.MAX_COUNT)
        check.real_number("ema_decay", self.ema_decay, 0.0, 1.0)
        if self.ema_decay == 1.0:
            raise ZspaceError("ema_decay must be below 1 (at 1 the average never moves)")

    @classmethod
    def from_dict(cls, data: dict) -> GANTrainingConfig:
        """The config from its JSON form (unknown keys are ignored); ZspaceError on a value
        of the wrong type or range."""
        return cls(**check.known_fields("GAN training config", data, cls))


def configs_for_preset(
    preset: str, space: str, data_dim: int, conditional: bool, **training_settings
) -> tuple[GANConfig, GANTrainingConfig]:
    """(architecture, training) of a new GAN run from a preset: over AE codes of `data_dim`
    dimensions, or (space "pixels") over the 784 pixels, scaled to [-1, 1], so G ends in tanh."""
    if space == "pixels":
        model = config_for_preset(preset, 28 * 28, conditional, generator_output="tanh")
    else:
        model = config_for_preset(preset, data_dim, conditional)
    return model, GANTrainingConfig.for_preset(preset, space=space, **training_settings)


def read_saved_configs(run_dir: str | Path) -> tuple[str, GANConfig, GANTrainingConfig]:
    """(kind, architecture, training) of a GAN run, in the 0.2 or the 0.1.0 layout (which kept
    the optimisation settings in the model config)."""
    run = RunDir(run_dir)
    saved = run.read_config((LATENT_GAN, PIXEL_GAN))
    with check.reading(run.config_path):
        model, legacy_training = split_legacy_gan_config(check.section(saved, "model"))
        settings = {**legacy_training, **check.section(saved, "training")}
        return saved["kind"], GANConfig.from_dict(model), GANTrainingConfig.from_dict(settings)


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
    autoencoder = load_autoencoder(ae_run, device)
    codes = encode_images(autoencoder, dataset.train_images)
    ae_config = RunDir(ae_run).read_config(AUTOENCODER)
    return GANData(codes.to(device), dataset.train_labels, autoencoder, ae_config)


def training_data(sampler: GANSampler, run_dir: str | Path, data_dir=None):
    """(data in data space, labels) a GAN run was trained on: AE codes of the training images
    for a latent GAN (encoded by the autoencoder inside the run), flat pixels for a pixel GAN."""
    _, _, training = read_saved_configs(run_dir)
    dataset = load_dataset(training.dataset, data_dir=data_dir, limit=training.limit)
    images = dataset.train_images
    if sampler.autoencoder is None:
        return to_float_images(images).reshape(len(images), -1), dataset.train_labels
    return encode_images(sampler.autoencoder, images), dataset.train_labels


def _resolve_resume(
    run: RunDir, model: GANConfig | None, training: GANTrainingConfig | None
) -> tuple[GANConfig, GANTrainingConfig]:
    """The configs to resume with: the saved ones, refusing any given setting that differs
    (the number of epochs may change, to extend a finished run)."""
    _, saved_model, saved_training = read_saved_configs(run.path)
    return resume_configs(run.path, saved_model, saved_training, model, training, RESUME_FLAGS)


class GANTrainer:
    """The modules, optimisers and data of one GAN run, and its epoch of steps."""

    def __init__(
        self,
        model: GANConfig,
        training: GANTrainingConfig,
        prepared: GANData,
        kind: str,
        device: torch.device,
        context: DistributedContext,
    ):
        self.model, self.training = model, training
        self.device, self.context = device, context
        torch.manual_seed(training.seed)
        self.generator = Generator(model).to(device)
        self.discriminator = Discriminator(model).to(device)
        self.scaler = CodeScaler(model.data_dim).to(device)
        if training.space == "pixels":
            self.scaler.set(0.5, 0.5)  # pixels in [0, 1] -> [-1, 1]
        elif training.standardize:
            self.scaler.fit(prepared.data)
        self.data = self.scaler(prepared.data)  # what D sees as real, (N, data_dim)
        self.labels = None if not model.conditional else prepared.labels.to(device)
        self.generator.fit_base(self.data, self.labels)  # before the EMA copy shares the base
        betas = tuple(training.betas)
        self.optimizer_g = torch.optim.Adam(
            self.generator.parameters(), training.learning_rate_g, betas=betas
        )
        self.optimizer_d = torch.optim.Adam(
            self.discriminator.parameters(), training.learning_rate_d, betas=betas
        )
        modules = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "scaler": self.scaler,
        }
        self.average = None
        if training.ema_decay > 0:
            # A separate module (and weights file) so that resume restores it exactly.
            self.average = copy.deepcopy(self.generator).requires_grad_(False)
            modules["generator_ema"] = self.average
        self.parts = TrainingParts(
            modules=modules,
            optimizers={"generator": self.optimizer_g, "discriminator": self.optimizer_d},
        )
        self.sampler = GANSampler(
            model, self.average or self.generator, self.scaler, prepared.autoencoder, kind
        )
        self.steps_per_epoch = -(-len(self.data) // training.batch_size)

    def _sync(self, module) -> None:
        average_gradients(module, self.context)  # averages gradients across data-parallel ranks

    def _learning_rate_factor(self, step: int) -> float:
        if self.training.lr_schedule == "linear":
            return max(0.0, 1.0 - step / (self.steps_per_epoch * self.training.epochs))
        return 1.0

    def train_epoch(self, epoch: int, deadline: float | None, progress: bool) -> dict:
        """One pass over the data (or until `deadline`, a perf_counter time); mean losses."""
        training, context, device = self.training, self.context, self.device
        self.generator.train()
        self.discriminator.train()
        steps, penalized = 0, 0  # penalized: D steps that carried the R1 penalty
        sums = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        if training.r1_weight > 0:
            sums["r1"] = 0.0
        batches = shuffled_batches(
            len(self.data), training.batch_size, training.seed, epoch, device, context.world_size
        )
        enabled = progress and context.is_main
        for indices in progress_bar(batches, self.steps_per_epoch, f"epoch {epoch}", enabled):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            # Every schedule is a function of the global step, so resume continues exactly.
            step = (epoch - 1) * self.steps_per_epoch + steps
            steps += 1
            factor = self._learning_rate_factor(step)
            set_learning_rate(self.optimizer_d, training.learning_rate_d * factor)
            set_learning_rate(self.optimizer_g, training.learning_rate_g * factor)
            # Noise is drawn for the whole global batch on every rank (the same RNG state
            # everywhere), then each rank keeps its share: one process sees the same noise.
            noise = torch.randn(len(indices), self.model.noise_dim, device=device)
            if context.enabled:
                share = shard_of_batch(torch.arange(len(indices), device=device), context)
                indices, noise = indices[share], noise[share]
            real = self.data[indices]
            labels = None if self.labels is None else self.labels[indices]
            # G steps after every d_steps-th D step, on the batch that D step judged.
            g_step = (step + 1) % training.d_steps == 0
            with torch.set_grad_enabled(g_step):
                fake = self.generator(noise, labels)
            d_loss, terms = discriminator_step(
                training, self.discriminator, self.optimizer_d, real, fake, labels, self._sync, step
            )
            penalized += "r1" in terms
            for name, value in terms.items():
                sums[name] += value
            sums["d_loss"] += d_loss
            if not g_step:
                continue
            sums["g_loss"] += generator_step(
                training,
                self.discriminator,
                self.optimizer_g,
                fake,
                labels,
                self._sync,
                self.generator,
            )
            if self.average is not None:
                update_average(
                    self.average, self.generator, training.ema_decay, step // training.d_steps
                )
        counts = {"r1": penalized}  # the R1 term is averaged over the steps that had it
        record = {
            name: all_reduce_mean(float(value) / max(counts.get(name, steps), 1), context, device)
            for name, value in sums.items()
        }
        record["g_loss"] *= training.d_steps  # G stepped once per d_steps batches
        if steps < self.steps_per_epoch:
            record["steps"] = steps
        return record


def train_gan(
    out: str | Path,
    gan_config: GANConfig | None = None,
    training: GANTrainingConfig | None = None,
    ae_run: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    monitor: Monitor | None = None,
) -> GANSampler:
    """Train (or resume) a latent-gan / pixel-gan run in folder `out`; returns its sampler.

    On resume the run's saved configs are used; a given config that differs from them in
    anything but the number of epochs is refused in one line. `monitor` (optional) judges the
    sampler after each epoch (see `zspace.evaluation.monitor`).
    """
    run = RunDir(out)
    gan_config, training, ae_run = _configs_to_train(run, gan_config, training, ae_run, resume)
    kind = LATENT_GAN if training.space == "latent" else PIXEL_GAN
    check_claimable(run.path, kind)  # before any work: never into a folder of a user's files
    torch_device = resolve_device(device)
    context = init_distributed(torch_device)  # no-op unless launched by torchrun
    torch_device = local_device(torch_device, context)
    if context.enabled and training.time_budget is not None:
        raise ZspaceError("--time-budget is not supported under torchrun")
    prepared = prepare_data(training, ae_run, data_dir, torch_device)
    _check_data(gan_config, training, prepared)
    barrier(context)  # every rank has checked the folder before rank 0 writes into it
    if context.is_main:
        environment = run_environment(torch_device, context.world_size)
        _write_run_config(run, kind, gan_config, training, prepared, ae_run, environment)
    trainer = GANTrainer(gan_config, training, prepared, kind, torch_device, context)
    epochs_before = len(run.read_metrics()) if resume else 0
    epochs = RunEpochs(trainer, run, monitor, progress)
    run_epochs(
        run,
        trainer.parts,
        training.epochs,
        epochs.train,
        torch_device,
        resume=resume,
        stop_after=epochs.budget_spent,
        is_main_process=context.is_main,
    )
    barrier(context)
    sampler = trainer.sampler
    trainer.generator.eval()
    sampler.generator.eval()
    if training.inverter_steps > 0 and context.is_main:
        sampler.inverter = _fit_or_reuse_inverter(
            run, sampler, prepared, training, epochs_before, progress
        )
    if context.is_main:
        write_card(run.path)
    barrier(context)  # under torchrun the other ranks wait for rank 0's inverter
    return sampler


def _configs_to_train(run: RunDir, gan_config, training, ae_run, resume: bool):
    """(model, training, AE run) for a new run, or the saved ones for a resumed run."""
    if run.exists() and not resume:
        raise ZspaceError(f"{run.path} already holds a run; pass --resume or choose another --out")
    if resume and run.exists():
        gan_config, training = _resolve_resume(run, gan_config, training)
        ae_run = ae_run or run.read_config().get("autoencoder", {}).get("source")
    if gan_config is None:
        raise ZspaceError("a new GAN run needs a model config (a GANConfig)")
    training = training or GANTrainingConfig()
    gan_config.validate()
    training.validate(gan_config)
    return gan_config, training, ae_run


def _check_data(gan_config: GANConfig, training: GANTrainingConfig, prepared: GANData) -> None:
    if gan_config.conditional and prepared.labels is None:
        raise ZspaceError(f"{training.dataset} has no labels; a conditional GAN needs them")
    if gan_config.data_dim != prepared.data.shape[1]:
        raise ZspaceError(
            f"the GAN config expects {gan_config.data_dim}-d data, got {prepared.data.shape[1]}"
        )


class RunEpochs:
    """What `run_epochs` calls for a GAN run: one epoch with its report, and the time budget."""

    def __init__(self, trainer: GANTrainer, run: RunDir, monitor, progress: bool):
        self.trainer, self.run, self.monitor, self.progress = trainer, run, monitor, progress
        self.budget = trainer.training.time_budget

    def train(self, epoch: int) -> dict:
        # With a time budget the epoch may end early, at the step that uses the budget up.
        deadline = None
        if self.budget is not None:
            deadline = time.perf_counter() + self.budget - training_seconds(self.run.path)
        record = self.trainer.train_epoch(epoch, deadline, self.progress)
        if self.trainer.context.is_main:
            report = epoch_report(
                self.trainer.sampler, self.run, epoch, self.trainer.training, self.monitor
            )
            record.update(report)
        return record

    def budget_spent(self, epoch: int, record: dict) -> bool:
        return self.budget is not None and training_seconds(self.run.path) >= self.budget


def _write_run_config(run, kind, gan_config, training, prepared, ae_run, environment) -> None:
    extra = {"environment": environment}
    if prepared.autoencoder_config is not None:
        extra["autoencoder"] = {
            "model": prepared.autoencoder_config["model"],
            "source": str(Path(ae_run).resolve()),
        }
    run.write_config(
        kind,
        {
            "model": gan_config.to_dict(),
            "training": asdict(training),
            "conditional": gan_config.conditional,
            **extra,
        },
    )
    if prepared.autoencoder is not None:
        # The run carries its own copy of the decoder so it keeps working if the AE moves.
        save_tensors(run.file("autoencoder.safetensors"), prepared.autoencoder.state_dict())


def command_for_run(run: RunDir, config: dict) -> Command:
    """The `zspace train-gan` command that makes this run (for its model card)."""
    legacy_model, legacy_training = split_legacy_gan_config(config["model"])
    model = GANConfig.from_dict(legacy_model)
    training = GANTrainingConfig.from_dict({**legacy_training, **config["training"]})
    defaults = GANTrainingConfig()
    args = ["train-gan"]
    if training.space == "latent":
        args += ["--ae", config["autoencoder"]["source"]]
    else:
        args += ["--space", training.space]
    if model.conditional:
        args.append("--conditional")
    args += ["--preset", model.preset]
    if training.dataset != defaults.dataset:
        args += ["--dataset", training.dataset]
    if training.limit is not None:
        args += ["--limit", training.limit]
    args += ["--epochs", training.epochs, "--seed", training.seed]
    if training.time_budget is not None:
        args += ["--time-budget", repr(training.time_budget)]
    args += ["--batch-size", training.batch_size]
    if training.monitor_samples != defaults.monitor_samples:
        args += ["--monitor-samples", training.monitor_samples]
    if training.inverter_steps != defaults.inverter_steps:
        args += ["--inverter-steps", training.inverter_steps]
    args += ["--out", run.path]
    # What `zspace train-gan` builds from those flags, compared with what the run holds.
    rebuilt_model, rebuilt_training = configs_for_preset(
        model.preset,
        training.space,
        model.data_dim,
        model.conditional,
        dataset=training.dataset,
        limit=training.limit,
        epochs=training.epochs,
        seed=training.seed,
        time_budget=training.time_budget,
    )
    rebuilt_training.batch_size = training.batch_size
    rebuilt_training.monitor_samples = training.monitor_samples
    rebuilt_training.inverter_steps = training.inverter_steps
    differences = setting_differences(
        {"model": model.to_dict(), "training": asdict(training)},
        {"model": rebuilt_model.to_dict(), "training": asdict(rebuilt_training)},
    )
    return Command(args, differences)


def _fit_or_reuse_inverter(
    run: RunDir, sampler, prepared, training, epochs_before: int, progress: bool
):
    """Fit the run's noise inverter and save it; a resumed run that trained no further epochs
    keeps the one it has."""
    if len(run.read_metrics()) == epochs_before and has_inverter(run.path):
        return load_inverter(run.path, sampler.config, sampler.device)
    settings = InverterTrainingConfig(steps=training.inverter_steps, seed=training.seed)
    inverter = fit_inverter(sampler, prepared.data, prepared.labels, settings, progress=progress)
    save_inverter(run.path, inverter, settings)
    return inverter


def refit_inverter(
    run_dir: str | Path,
    settings: InverterTrainingConfig | None = None,
    data_dir=None,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Fit (or refit) a GAN run's noise inverter on its training data and save it; returns
    out, steps, seconds and a sanity check: the mean inversion error on the last 200
    training rows (not a held-out score)."""
    settings = settings or InverterTrainingConfig()
    settings.validate()
    sampler = load_sampler(run_dir, device, action="have a noise inverter")
    refuse_without_noise(sampler, "have a noise inverter")
    data, labels = training_data(sampler, run_dir, data_dir)
    started = time.perf_counter()
    sampler.inverter = fit_inverter(sampler, data, labels, settings, progress=progress)
    seconds = time.perf_counter() - started
    path = save_inverter(run_dir, sampler.inverter, settings)
    check = slice(len(data) - min(200, len(data)), len(data))
    _, error = invert(sampler, data[check], None if not sampler.conditional else labels[check])
    return {
        "out": str(path),
        "steps": settings.steps,
        "seconds": round(seconds, 1),
        "inversion_error": round(float(error.mean()), 4),
    }


@torch.no_grad()
def epoch_report(
    sampler: GANSampler, run: RunDir, epoch: int, training: GANTrainingConfig, monitor
) -> dict:
    """Save samples/epoch_XXX.png from fixed noise, and return the monitor's figures."""
    # Fixed noise from seeded CPU streams: the global RNG, which resume restores, is untouched.
    if sampler.conditional:
        images, _ = sampler.sample_with_labels(n=10, seed=training.seed)
    else:
        images = sampler.images(sampler.noise(100, training.seed))
    save_grid(images, run.file(f"{SAMPLES_FOLDER}/epoch_{epoch:03d}.png"), ncols=10, scale=1)
    if monitor is None or training.monitor_samples == 0:
        return {}
    return monitor(sampler, epoch)


__all__ = [
    "GANTrainingConfig",
    "GANTrainer",
    "read_saved_configs",
    "refit_inverter",
    "train_gan",
    "training_data",
]
