"""Train an autoencoder into a run folder, resumably."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from zspace import config_checks as check
from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.distributed import (
    all_reduce_mean,
    barrier,
    init_distributed,
    local_device,
    shard_of_batch,
    wrap_for_training,
)
from zspace.errors import ZspaceError
from zspace.figures import save_grid, save_line_plot
from zspace.models.augment import random_affine
from zspace.models.autoencoder import Autoencoder
from zspace.models.encoders import AutoencoderConfig
from zspace.models.images import to_float_images
from zspace.models.presets import ae_config_for_preset, is_transformer_preset, transformer_config
from zspace.runs import AUTOENCODER, RunDir, check_claimable
from zspace.training.cards import Command, run_environment, setting_differences, write_card
from zspace.training.loop import (
    TrainingParts,
    one_cycle_lr,
    progress_bar,
    resume_configs,
    run_epochs,
    set_learning_rate,
    shuffled_batches,
)

LOSSES = ("bce", "mse")
# How far the contrastive term's views differ: up to 14 degrees of rotation, 15% of scale and
# 2 pixels of shift (wider than the self-trained classifier's, so the codes learn more invariance).
CONTRASTIVE_VIEWS = {"max_rotation": 0.25, "max_scale": 0.15, "max_shift": 2.0}
# The command-line flag of each setting that has one, for resume messages.
RESUME_FLAGS = {
    "model.preset": "--preset",
    "model.latent_dim": "--latent-dim",
    "model.extra.positional": "--positional",
    "training.dataset": "--dataset",
    "training.limit": "--limit",
    "training.seed": "--seed",
    "training.batch_size": "--batch-size",
    "training.learning_rate": "--lr",
    "training.loss": "--loss",
    "training.contrastive_weight": "--contrastive-weight",
    "training.contrastive_temperature": "--contrastive-temperature",
}


@dataclass
class AETrainingConfig:
    """How an autoencoder was trained (saved in config.json under "training")."""

    dataset: str = "mnist"
    limit: int | None = None
    epochs: int = 5
    batch_size: int = 128
    learning_rate: float = 3e-3
    loss: str = "bce"  # bce trains faster to a low pixel MSE than mse itself
    seed: int = 0
    # Weight of a contrastive term (NT-Xent) between the codes of two randomly rotated, scaled
    # and shifted views of each image; 0 trains for reconstruction alone.
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.3

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """ZspaceError in one line for a value of the wrong type or range."""
        check.text("dataset (--dataset)", self.dataset)
        check.optional_whole_number("limit (--limit)", self.limit, 1, check.MAX_COUNT)
        check.whole_number("epochs (--epochs)", self.epochs, 1, check.MAX_COUNT)
        check.whole_number("batch_size (--batch-size)", self.batch_size, 1, check.MAX_COUNT)
        check.learning_rate("learning_rate (--lr)", self.learning_rate)
        check.choice("loss (--loss)", self.loss, LOSSES)
        check.whole_number("seed (--seed)", self.seed, 0, check.MAX_SEED)
        check.real_number(
            "contrastive_weight (--contrastive-weight)", self.contrastive_weight, 0.0, 100.0
        )
        check.real_number(
            "contrastive_temperature (--contrastive-temperature)",
            self.contrastive_temperature,
            0.0,
            10.0,
            include_low=False,
        )

    @classmethod
    def from_dict(cls, data: dict) -> AETrainingConfig:
        """The config from its JSON form (unknown keys are ignored); ZspaceError on a value
        of the wrong type or range."""
        return cls(**check.known_fields("autoencoder training config", data, cls))


def read_saved_configs(run_dir: str | Path) -> tuple[AutoencoderConfig, AETrainingConfig]:
    """(architecture, training) of an autoencoder run."""
    run = RunDir(run_dir)
    saved = run.read_config(AUTOENCODER)
    with check.reading(run.config_path):
        return (
            AutoencoderConfig.from_dict(check.section(saved, "model")),
            AETrainingConfig.from_dict(check.section(saved, "training")),
        )


def _resolve_resume(
    run: RunDir, model: AutoencoderConfig | None, training: AETrainingConfig | None
) -> tuple[AutoencoderConfig, AETrainingConfig]:
    """The saved configs, refusing a given setting that differs (epochs may change)."""
    saved_model, saved_training = read_saved_configs(run.path)
    return resume_configs(run.path, saved_model, saved_training, model, training, RESUME_FLAGS)


def reconstruction_loss(reconstructions, images, loss: str) -> torch.Tensor:
    if loss == "bce":
        return F.binary_cross_entropy(reconstructions, images)
    return F.mse_loss(reconstructions, images)


def contrastive_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020) on codes (B, D) of two views of the same B images:
    each code must pick its partner view's code out of the other 2B - 1 by cosine similarity."""
    codes = F.normalize(torch.cat([first, second]), dim=1)
    similarity = codes @ codes.T / temperature
    similarity.fill_diagonal_(float("-inf"))  # a code is not its own partner
    count = len(first)
    partner = torch.cat([torch.arange(count, 2 * count), torch.arange(count)]).to(codes.device)
    return F.cross_entropy(similarity, partner)


class TwoViewAutoencoder(nn.Module):
    """The autoencoder's forward pass for the contrastive term, as one module so that a
    distributed wrapper sees (and synchronises) every use of the weights: the reconstruction
    of the clean images and the codes of two augmented views."""

    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model

    def forward(self, images, first_view, second_view):
        codes = self.model.encode(torch.cat([first_view, second_view]))
        return self.model(images), *codes.chunk(2)


@torch.no_grad()
def reconstruction_mse(model: Autoencoder, images_uint8: torch.Tensor, batch_size: int = 1000):
    """Mean squared error per pixel (images in [0, 1]) over a uint8 image tensor."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(images_uint8), batch_size):
        images = to_float_images(images_uint8[start : start + batch_size].to(device))
        total += F.mse_loss(model(images), images, reduction="sum").item()
    model.train(was_training)
    return total / (len(images_uint8) * images_uint8[0].numel())


def train_autoencoder(
    out: str | Path,
    model_config: AutoencoderConfig | None = None,
    training: AETrainingConfig | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> Autoencoder:
    """Train (or resume) an autoencoder run in folder `out`; returns the trained model.

    On resume the run's saved configs are used; a given config that differs from them in
    anything but the number of epochs is refused in one line.
    """
    run = RunDir(out)
    if run.exists() and not resume:
        raise ZspaceError(f"{run.path} already holds a run; pass --resume or choose another --out")
    if resume and run.exists():
        model_config, training = _resolve_resume(run, model_config, training)
    model_config = model_config or AutoencoderConfig()
    training = training or AETrainingConfig()
    training.validate()
    check_claimable(run.path, AUTOENCODER)  # before any work: never into a user's folder
    torch_device = resolve_device(device)
    context = init_distributed(torch_device)  # no-op unless launched by torchrun
    torch_device = local_device(torch_device, context)
    dataset = load_dataset(training.dataset, data_dir=data_dir, limit=training.limit)
    barrier(context)  # every rank has checked the folder before rank 0 writes into it
    if context.is_main:
        run.write_config(
            AUTOENCODER,
            {
                "model": model_config.to_dict(),
                "training": asdict(training),
                "environment": run_environment(torch_device, context.world_size),
            },
        )
    trainer = AutoencoderTrainer(model_config, training, dataset, torch_device, context, progress)
    metrics = run_epochs(
        run,
        trainer.parts,
        training.epochs,
        trainer.train_epoch,
        torch_device,
        resume=resume,
        is_main_process=context.is_main,
    )
    if context.is_main:
        write_autoencoder_figures(run, trainer.model, dataset.test_images, metrics)
        write_card(run.path)
    barrier(context)
    trainer.model.eval()
    return trainer.model


def command_for_run(run: RunDir, config: dict) -> Command:
    """The `zspace train-ae` command that makes this run (for its model card)."""
    model = AutoencoderConfig.from_dict(config["model"])
    training = AETrainingConfig.from_dict(config["training"])
    args = ["train-ae", "--preset", model.preset, "--latent-dim", model.latent_dim]
    rebuilt = ae_config_for_preset(model.preset, model.latent_dim)
    positional = model.extra.get("positional")
    if is_transformer_preset(model.preset) and rebuilt.extra.get("positional") != positional:
        args += ["--positional", positional]
        rebuilt = transformer_config(model.preset, model.latent_dim, positional=positional)
    if training.dataset != AETrainingConfig.dataset:
        args += ["--dataset", training.dataset]
    if training.limit is not None:
        args += ["--limit", training.limit]
    args += ["--epochs", training.epochs, "--batch-size", training.batch_size]
    args += ["--lr", repr(training.learning_rate), "--loss", training.loss]
    if training.contrastive_weight > 0:
        args += ["--contrastive-weight", repr(training.contrastive_weight)]
        args += ["--contrastive-temperature", repr(training.contrastive_temperature)]
    args += ["--seed", training.seed, "--out", run.path]
    # Every training setting has a flag; what the flags rebuild is compared with the saved
    # config, so a setting zspace does not know (or an architecture set by hand) shows up.
    differences = setting_differences(
        {"model": config["model"], "training": config["training"]},
        {"model": rebuilt.to_dict(), "training": asdict(training)},
    )
    return Command(args, differences)


class AutoencoderTrainer:
    """The model, optimiser and in-memory images of one autoencoder run, and its epoch."""

    def __init__(self, model_config, training, dataset, device, context, progress: bool):
        self.training, self.device, self.context = training, device, context
        self.progress = progress and context.is_main
        torch.manual_seed(training.seed)  # same initial weights on every rank
        self.model = Autoencoder(model_config).to(device)
        self.contrastive = training.contrastive_weight > 0
        forward = TwoViewAutoencoder(self.model) if self.contrastive else self.model
        self.trainable = wrap_for_training(forward, context)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=training.learning_rate)
        # Hold the training images on the device once as floats and batch by index.
        self.train_images = to_float_images(dataset.train_images.to(device))
        self.test_images = dataset.test_images
        self.steps_per_epoch = -(-len(self.train_images) // training.batch_size)
        self.parts = TrainingParts(
            modules={"model": self.model}, optimizers={"adam": self.optimizer}
        )

    def train_epoch(self, epoch: int) -> dict:
        training, context = self.training, self.context
        total_steps = self.steps_per_epoch * training.epochs
        self.model.train()
        loss_sum, count = 0.0, 0
        batches = shuffled_batches(
            len(self.train_images),
            training.batch_size,
            training.seed,
            epoch,
            self.device,
            min_batch=context.world_size,
        )
        description = f"epoch {epoch}/{training.epochs}"
        bar = progress_bar(batches, self.steps_per_epoch, description, self.progress)
        # Augmentations drawn on the CPU from (seed, epoch, rank): a resumed epoch repeats them.
        views = torch.Generator().manual_seed(
            (training.seed * 10_007 + epoch) * 1_009 + context.rank
        )
        for step_in_epoch, indices in enumerate(bar):
            step = (epoch - 1) * self.steps_per_epoch + step_in_epoch
            rate = one_cycle_lr(step, total_steps, training.learning_rate)
            set_learning_rate(self.optimizer, rate)
            images = self.train_images[shard_of_batch(indices, context)]
            loss = self.loss(images, views)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.item() * len(images)
            count += len(images)
            if step_in_epoch % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        return {
            "train_loss": all_reduce_mean(loss_sum / count, context, self.device),
            "test_mse": reconstruction_mse(self.model, self.test_images),
        }

    def loss(self, images: torch.Tensor, views: torch.Generator) -> torch.Tensor:
        training = self.training
        if not self.contrastive:
            return reconstruction_loss(self.trainable(images), images, training.loss)
        first = random_affine(images, views, **CONTRASTIVE_VIEWS)
        second = random_affine(images, views, **CONTRASTIVE_VIEWS)
        reconstructions, first_codes, second_codes = self.trainable(images, first, second)
        return reconstruction_loss(
            reconstructions, images, training.loss
        ) + training.contrastive_weight * contrastive_loss(
            first_codes, second_codes, training.contrastive_temperature
        )


def write_autoencoder_figures(run: RunDir, model: Autoencoder, test_images, metrics) -> None:
    """reconstructions.png (originals above reconstructions) and loss_curve.png."""
    device = next(model.parameters()).device
    originals = test_images[:16]
    with torch.no_grad():
        model.eval()
        reconstructions = model(to_float_images(originals.to(device))).cpu()
    pairs = torch.stack([to_float_images(originals), reconstructions])  # (2, 16, 1, 28, 28)
    save_grid(pairs.squeeze(2), run.file("reconstructions.png"))
    epochs = [m["epoch"] for m in metrics]
    save_line_plot(
        {
            "train loss": (epochs, [m["train_loss"] for m in metrics]),
            "test MSE per pixel": (epochs, [m["test_mse"] for m in metrics]),
        },
        run.file("loss_curve.png"),
        xlabel="epoch",
        ylabel="loss",
        title="autoencoder training",
        logy=True,
    )
