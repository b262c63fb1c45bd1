"""Distil a latent flow into a one-step generator (`zspace distill-flow RUN --out RUN2`).

The teacher's ODE pairs every noise x0 with one code x1 = ODE(x0, label), solved with the
teacher's default sampler (guidance included). A copy of the teacher's field is then trained
so that a single Euler step lands there: x0 + v(x0, 0, label) = x1 (mean squared error over
the pairs). This is the distillation step of rectified flow (Liu et al. 2023, section 2.3):
the pairs are the teacher's own coupling, so the student only has to learn a deterministic
map, and its sampler costs one network call instead of the teacher's 2 x steps (x2 again for
guidance). The result is a latent-flow run like any other, sampled with steps=1; its config
says what it was distilled from.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from zspace import config_checks as check
from zspace.checkpoint import save_tensors
from zspace.device import resolve_device
from zspace.errors import ZspaceError
from zspace.loading import load_sampler
from zspace.runs import LATENT_FLOW, RunDir, check_claimable, kind_text
from zspace.sampling.flow import FlowSampler, FlowSampling, read_flow_config
from zspace.sampling.ode import integrate
from zspace.training.cards import Command, run_environment, write_card
from zspace.training.flow import save_epoch_samples
from zspace.training.gan_steps import update_average
from zspace.training.loop import (
    TrainingParts,
    one_cycle_lr,
    progress_bar,
    run_epochs,
    set_learning_rate,
    shuffled_batches,
)

ONE_STEP = FlowSampling(solver="euler", steps=1, guidance=1.0)


@dataclass
class DistillConfig:
    """How a flow is distilled (config.json's "distilled", beside the teacher's path)."""

    pairs: int = 60_000  # (noise, code) pairs drawn from the teacher, balanced over digits
    epochs: int = 15
    batch_size: int = 512
    learning_rate: float = 5e-4
    ema_decay: float = 0.999
    seed: int = 0

    def __post_init__(self):
        check.whole_number("pairs (--pairs)", self.pairs, 1, check.MAX_COUNT)
        check.whole_number("epochs (--epochs)", self.epochs, 1, check.MAX_COUNT)
        check.whole_number("batch_size (--batch-size)", self.batch_size, 1, check.MAX_COUNT)
        check.learning_rate("learning_rate (--lr)", self.learning_rate)
        check.real_number("ema_decay", self.ema_decay, 0.0, 1.0)
        if self.ema_decay == 1.0:
            raise ZspaceError("ema_decay must be below 1 (at 1 the average never moves)")
        check.whole_number("seed (--seed)", self.seed, 0, check.MAX_SEED)

    @classmethod
    def from_dict(cls, data: dict) -> DistillConfig:
        return cls(**check.known_fields("distillation config", data, cls))


@torch.no_grad()
def teacher_pairs(teacher: FlowSampler, count: int, seed: int) -> tuple[torch.Tensor, ...]:
    """(noise, standardised codes, labels or None): `count` rows of the teacher's coupling."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(count, teacher.noise_dim, generator=generator)
    labels = None
    if teacher.conditional:
        labels = torch.arange(count) % teacher.config.num_classes
    targets = []
    settings = teacher.sampling
    for start in range(0, count, 4096):
        part = noise[start : start + 4096].to(teacher.device)
        rows = None if labels is None else labels[start : start + 4096].to(teacher.device)
        targets.append(integrate(teacher.velocity(rows), part, settings.steps, settings.solver))
    return (
        noise.to(teacher.device),
        torch.cat(targets),
        None if labels is None else labels.to(teacher.device),
    )


def one_step_loss(field, noise, targets, labels) -> torch.Tensor:
    """Mean squared error of one Euler step from t = 0: x0 + v(x0, 0, label) against x1."""
    zero = torch.zeros((), dtype=noise.dtype, device=noise.device)
    return ((noise + field(noise, zero, labels) - targets) ** 2).mean()


def distill_flow(
    teacher_run: str | Path,
    out: str | Path,
    settings: DistillConfig | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> FlowSampler:
    """Distil a latent-flow run into a one-step latent-flow run in `out`; returns its sampler."""
    run = RunDir(out)
    teacher_config = RunDir(teacher_run).read_config()
    if teacher_config.get("kind") != LATENT_FLOW:
        raise ZspaceError(
            f"{teacher_run} holds a run of kind {kind_text(teacher_config.get('kind'))}; "
            "distill-flow needs a latent-flow run (zspace train-flow)"
        )
    if teacher_config.get("distilled") is not None:
        raise ZspaceError(f"{teacher_run} is already a one-step (distilled) flow")
    if run.exists() and not resume:
        raise ZspaceError(f"{run.path} already holds a run; pass --resume or choose another --out")
    if resume and run.exists():
        saved = run.read_config(LATENT_FLOW)
        with check.reading(run.config_path):
            stored = DistillConfig.from_dict(
                check.section(check.section(saved, "distilled"), "settings")
            )
        if settings is not None and settings.epochs >= stored.epochs:
            stored.epochs = settings.epochs
        settings = stored
    settings = settings or DistillConfig()
    check_claimable(run.path, LATENT_FLOW)
    torch_device = resolve_device(device)
    teacher = load_sampler(teacher_run, torch_device)
    started = time.perf_counter()
    noise, targets, labels = teacher_pairs(teacher, settings.pairs, settings.seed)
    pair_seconds = time.perf_counter() - started
    _write_config(run, teacher_run, teacher, teacher_config, settings, pair_seconds, torch_device)
    torch.manual_seed(settings.seed)
    field = copy.deepcopy(teacher.field).train().requires_grad_(True)
    average = copy.deepcopy(field).requires_grad_(False)
    optimizer = torch.optim.Adam(field.parameters(), settings.learning_rate)
    parts = TrainingParts(
        modules={"velocity": field, "velocity_ema": average, "scaler": teacher.scaler},
        optimizers={"velocity": optimizer},
    )
    student = FlowSampler(
        teacher.config, average, teacher.scaler, teacher.autoencoder, ONE_STEP, one_step=True
    )
    steps_per_epoch = -(-settings.pairs // settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs

    def train(epoch: int) -> dict:
        field.train()
        loss_sum, steps = 0.0, 0
        batches = shuffled_batches(
            settings.pairs, settings.batch_size, settings.seed, epoch, torch_device
        )
        for indices in progress_bar(batches, steps_per_epoch, f"epoch {epoch}", progress):
            step = (epoch - 1) * steps_per_epoch + steps
            steps += 1
            set_learning_rate(
                optimizer, one_cycle_lr(step, total_steps, settings.learning_rate, 0.05)
            )
            rows = None if labels is None else labels[indices]
            loss = one_step_loss(field, noise[indices], targets[indices], rows)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            update_average(average, field, settings.ema_decay, step)
            loss_sum += float(loss.detach())
        save_epoch_samples(student, run, epoch, settings.seed)
        return {"loss": loss_sum / max(steps, 1)}

    run_epochs(run, parts, settings.epochs, train, torch_device, resume=resume)
    write_card(run.path)
    average.eval()
    return student


def _write_config(run, teacher_run, teacher, teacher_config, settings, pair_seconds, device):
    run.write_config(
        LATENT_FLOW,
        {
            "model": teacher.config.to_dict(),
            "training": teacher_config.get("training", {}),
            "sampling": ONE_STEP.to_dict(),
            "conditional": teacher.conditional,
            "autoencoder": teacher_config["autoencoder"],
            "distilled": {
                "teacher": str(Path(teacher_run).resolve()),
                "teacher_sampling": teacher.sampling.to_dict(),
                "settings": asdict(settings),
                "pair_seconds": round(pair_seconds, 2),
            },
            "environment": run_environment(device, 1),
        },
    )
    save_tensors(run.file("autoencoder.safetensors"), teacher.autoencoder.state_dict())


def distill_command(run: RunDir, config: dict) -> Command:
    """The `zspace distill-flow` command that makes this run (for its model card)."""
    distilled = config["distilled"]
    settings = DistillConfig.from_dict(distilled["settings"])
    defaults = DistillConfig()
    args = ["distill-flow", distilled["teacher"]]
    for flag, name in (("--pairs", "pairs"), ("--epochs", "epochs"), ("--seed", "seed")):
        args += [flag, getattr(settings, name)]
    args += ["--out", run.path]
    differences = {
        f"distilled.settings.{name}": (value, getattr(defaults, name))
        for name, value in asdict(settings).items()
        if name in ("batch_size", "learning_rate", "ema_decay") and value != getattr(defaults, name)
    }
    return Command(args, differences)


def teacher_of(run_dir: str | Path) -> str | None:
    """The teacher folder of a distilled flow run, else None."""
    distilled = RunDir(run_dir).read_config(LATENT_FLOW).get("distilled")
    return distilled.get("teacher") if isinstance(distilled, dict) else None


__all__ = ["DistillConfig", "distill_flow", "one_step_loss", "read_flow_config", "teacher_of"]
