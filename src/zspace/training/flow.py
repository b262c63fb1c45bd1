"""Train a latent flow: conditional flow matching over a trained autoencoder's codes.

The recipe (Lipman et al. 2023, with the linear "rectified" path of Liu et al. 2023): draw a
code x1 (standardised), noise x0 and a time t; the point x_t = (1 - t) x0 + t x1 on the straight
path moves with velocity x1 - x0, and the network learns to predict it (mean squared error).
`flow_matching`'s `CondOTProbPath` builds x_t and the target. Around it:
  - labels are dropped to "no label" for `label_dropout` of the rows, so one network gives both
    the conditional and the unconditional velocity that classifier-free guidance mixes;
  - t is drawn from a logit-normal (Esser et al. 2024) or a uniform distribution;
  - an exponential moving average of the weights is what samples (velocity_ema.safetensors);
  - the learning rate follows a warm-up then cosine schedule, a pure function of the step.

The codes are encoded once and held as one tensor; batches are drawn by index. `run_epochs`
checkpoints every epoch, so `--resume` continues exactly, and under torchrun each rank takes
its share of every global batch, as the GAN trainer does.
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import asdict, dataclass
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
from zspace.models.flow import DEFAULT_FLOW_PRESET, FLOW_PRESETS, FlowConfig, VelocityField
from zspace.models.gan import CodeScaler
from zspace.runs import AUTOENCODER, LATENT_FLOW, RunDir, check_claimable
from zspace.sampling.flow import FlowSampler, FlowSampling, read_flow_config
from zspace.sampling.latent import encode_images, load_autoencoder
from zspace.training.cards import run_environment, write_card
from zspace.training.gan_steps import update_average
from zspace.training.loop import (
    TrainingParts,
    one_cycle_lr,
    progress_bar,
    resume_configs,
    run_epochs,
    set_learning_rate,
    shuffled_batches,
    training_seconds,
)

TIME_SAMPLINGS = ("logit-normal", "uniform")
COUPLINGS = ("independent", "minibatch-ot")
WARMUP_STEPS = 200  # of the constant learning rate under a time budget
SAMPLES_FOLDER = "samples"
RESUME_FLAGS = {
    "model.preset": "--preset",
    "model.conditional": "--conditional",
    "training.dataset": "--dataset",
    "training.limit": "--limit",
    "training.seed": "--seed",
    "training.batch_size": "--batch-size",
    "training.time_budget": "--time-budget",
    "training.threads": "--threads",
}


@dataclass
class FlowTrainingConfig:
    """How a latent flow is trained (config.json's "training")."""

    dataset: str = "mnist"
    limit: int | None = None
    # 22 epochs (2,600 steps) take about 105 s on the 2-core machine at 2 threads
    # (benchmarks/bench_flow.py); FD keeps falling with more (README, "Latent flow").
    epochs: int = 22
    seed: int = 0
    batch_size: int = 512
    learning_rate: float = 2e-3
    # Rows whose label is replaced by "no label": the unconditional velocity of guidance.
    label_dropout: float = 0.1
    time_sampling: str = "logit-normal"
    # How noise is paired with codes in a batch: at random, or by an optimal assignment
    # within each digit (minibatch OT, Tong et al. 2023; Pooladian et al. 2023), which
    # straightens the paths the ODE has to follow.
    coupling: str = "independent"
    ema_decay: float = 0.999
    # Stop after the first epoch that ends past this many seconds of training.
    time_budget: float | None = None
    # Torch threads while training (None: leave torch's setting); see the README for the
    # measurement behind the CLI's default.
    threads: int | None = None

    def __post_init__(self):
        check.text("dataset (--dataset)", self.dataset)
        check.optional_whole_number("limit (--limit)", self.limit, 1, check.MAX_COUNT)
        check.whole_number("epochs (--epochs)", self.epochs, 1, check.MAX_COUNT)
        check.whole_number("seed (--seed)", self.seed, 0, check.MAX_SEED)
        check.whole_number("batch_size (--batch-size)", self.batch_size, 1, check.MAX_COUNT)
        check.learning_rate("learning_rate (--lr)", self.learning_rate)
        check.real_number("label_dropout", self.label_dropout, 0.0, 1.0)
        check.choice("time_sampling", self.time_sampling, TIME_SAMPLINGS)
        check.choice("coupling", self.coupling, COUPLINGS)
        check.real_number("ema_decay", self.ema_decay, 0.0, 1.0)
        if self.ema_decay == 1.0:
            raise ZspaceError("ema_decay must be below 1 (at 1 the average never moves)")
        check.optional_real_number(
            "time_budget (--time-budget)", self.time_budget, 0, 1e9, include_low=False
        )
        check.optional_whole_number("threads (--threads)", self.threads, 1, 1024)

    @classmethod
    def from_dict(cls, data: dict) -> FlowTrainingConfig:
        return cls(**check.known_fields("flow training config", data, cls))


def read_saved_configs(run_dir: str | Path) -> tuple[FlowConfig, FlowTrainingConfig]:
    run = RunDir(run_dir)
    saved = run.read_config(LATENT_FLOW)
    model, _, _ = read_flow_config(run)
    with check.reading(run.config_path):
        return model, FlowTrainingConfig.from_dict(check.section(saved, "training"))


def sample_times(count: int, scheme: str, device) -> torch.Tensor:
    """(count,) times in (0, 1): logit-normal (sigmoid of a standard normal), or uniform."""
    if scheme == "uniform":
        return torch.rand(count, device=device)
    return torch.sigmoid(torch.randn(count, device=device))


def optimal_pairing(noise: torch.Tensor, codes: torch.Tensor, labels) -> torch.Tensor:
    """`noise` reordered so that row i goes with codes[i] by a minimum total squared distance
    assignment, solved separately within each label (a pairing across digits would teach the
    field to move a 3's noise towards a 7)."""
    from scipy.optimize import linear_sum_assignment

    order = torch.arange(len(noise))
    groups = (
        [torch.arange(len(noise))]
        if labels is None
        else [(labels == value).nonzero().squeeze(1) for value in labels.unique()]
    )
    for rows in groups:
        cost = torch.cdist(codes[rows].double(), noise[rows].double()).pow(2).cpu().numpy()
        _, columns = linear_sum_assignment(cost)
        order[rows] = rows[torch.from_numpy(columns).to(rows.device)]
    return noise[order.to(noise.device)]


def drop_labels(labels: torch.Tensor, rate: float, null_label: int) -> torch.Tensor:
    """Labels with a random `rate` of them replaced by the "no label" value."""
    dropped = torch.rand(len(labels), device=labels.device) < rate
    return torch.where(dropped, torch.full_like(labels, null_label), labels)


@functools.cache
def straight_path():
    """flow_matching's CondOTProbPath, built once (imported on first use: an optional extra)."""
    from flow_matching.path import CondOTProbPath

    return CondOTProbPath()


def flow_matching_loss(field, codes, labels, times, noise) -> torch.Tensor:
    """Mean squared error between v(x_t, t, label) and the straight path's velocity x1 - x0."""
    point = straight_path().sample(x_0=noise, x_1=codes, t=times)
    return ((field(point.x_t, point.t, labels) - point.dx_t) ** 2).mean()


@dataclass
class FlowData:
    codes: torch.Tensor  # raw AE codes (N, latent_dim) on the device
    labels: torch.Tensor | None
    autoencoder: object
    autoencoder_config: dict


def prepare_codes(training: FlowTrainingConfig, ae_run, data_dir, device) -> FlowData:
    if ae_run is None:
        raise ZspaceError("a latent flow needs --ae AE_RUN (a trained autoencoder run folder)")
    ae_config = RunDir(ae_run).read_config(AUTOENCODER)
    autoencoder = load_autoencoder(ae_run, device)
    dataset = load_dataset(training.dataset, data_dir=data_dir, limit=training.limit)
    codes = encode_images(autoencoder, dataset.train_images)
    return FlowData(codes.to(device), dataset.train_labels, autoencoder, ae_config)


class FlowTrainer:
    """The field, its average, optimiser and data of one flow run, and its epoch of steps."""

    def __init__(
        self,
        model: FlowConfig,
        training: FlowTrainingConfig,
        data: FlowData,
        device,
        context: DistributedContext,
    ):
        self.model, self.training, self.device, self.context = model, training, device, context
        torch.manual_seed(training.seed)
        self.field = VelocityField(model).to(device)
        self.average = copy.deepcopy(self.field).requires_grad_(False)
        self.scaler = CodeScaler(model.data_dim).to(device).fit(data.codes)
        self.codes = self.scaler(data.codes)
        self.labels = data.labels.to(device) if model.conditional else None
        self.optimizer = torch.optim.Adam(self.field.parameters(), training.learning_rate)
        self.parts = TrainingParts(
            modules={"velocity": self.field, "velocity_ema": self.average, "scaler": self.scaler},
            optimizers={"velocity": self.optimizer},
        )
        self.steps_per_epoch = -(-len(self.codes) // training.batch_size)
        self.sampler = FlowSampler(model, self.average, self.scaler, data.autoencoder)

    def learning_rate(self, step: int, total_steps: int) -> float:
        """Warm-up then cosine decay over the run's epochs; under a time budget, where the
        last step is not known in advance, warm-up then constant (the EMA does the averaging)."""
        peak = self.training.learning_rate
        if self.training.time_budget is None:
            return one_cycle_lr(step, total_steps, peak, 0.05)
        return peak * min(1.0, 0.04 + 0.96 * step / WARMUP_STEPS)

    def train_epoch(self, epoch: int, deadline: float | None, progress: bool) -> dict:
        training, context, device = self.training, self.context, self.device
        self.field.train()
        total_steps = self.steps_per_epoch * training.epochs
        steps, loss_sum = 0, 0.0
        batches = shuffled_batches(
            len(self.codes), training.batch_size, training.seed, epoch, device, context.world_size
        )
        enabled = progress and context.is_main
        for indices in progress_bar(batches, self.steps_per_epoch, f"epoch {epoch}", enabled):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            step = (epoch - 1) * self.steps_per_epoch + steps
            steps += 1
            set_learning_rate(self.optimizer, self.learning_rate(step, total_steps))
            # Noise, times and dropped labels are drawn for the whole global batch on every
            # rank (the same RNG state everywhere); each rank then keeps its share.
            noise = torch.randn(len(indices), self.model.data_dim, device=device)
            times = sample_times(len(indices), training.time_sampling, device)
            if training.coupling == "minibatch-ot":
                classes = None if self.labels is None else self.labels[indices]
                noise = optimal_pairing(noise, self.codes[indices], classes)
            labels = None
            if self.labels is not None:
                labels = drop_labels(
                    self.labels[indices], training.label_dropout, self.model.num_classes
                )
            if context.enabled:
                share = shard_of_batch(torch.arange(len(indices), device=device), context)
                indices, noise, times = indices[share], noise[share], times[share]
                labels = None if labels is None else labels[share]
            loss = flow_matching_loss(self.field, self.codes[indices], labels, times, noise)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(self.field, context)
            self.optimizer.step()
            update_average(self.average, self.field, training.ema_decay, step)
            loss_sum += float(loss.detach())
        record = {"loss": all_reduce_mean(loss_sum / max(steps, 1), context, device)}
        if steps < self.steps_per_epoch:
            record["steps"] = steps
        return record


def train_flow(
    out: str | Path,
    model: FlowConfig | None = None,
    training: FlowTrainingConfig | None = None,
    ae_run: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
    sampling: FlowSampling | None = None,
) -> FlowSampler:
    """Train (or resume) a latent-flow run in folder `out`; returns its sampler.

    On resume the saved configs are used; a given config that differs from them in anything
    but the number of epochs is refused in one line."""
    run = RunDir(out)
    model, training, ae_run, sampling = _configs_to_train(
        run, model, training, ae_run, resume, sampling
    )
    check_claimable(run.path, LATENT_FLOW)  # before any work: never into a user's folder
    if training.threads is not None:
        torch.set_num_threads(training.threads)
    torch_device = resolve_device(device)
    context = init_distributed(torch_device)  # no-op unless launched by torchrun
    torch_device = local_device(torch_device, context)
    if context.enabled and training.time_budget is not None:
        raise ZspaceError("--time-budget is not supported under torchrun")
    data = prepare_codes(training, ae_run, data_dir, torch_device)
    if model.conditional and data.labels is None:
        raise ZspaceError(f"{training.dataset} has no labels; a conditional flow needs them")
    if model.data_dim != data.codes.shape[1]:
        raise ZspaceError(f"the flow expects {model.data_dim}-d codes, got {data.codes.shape[1]}")
    barrier(context)
    if context.is_main:
        _write_run_config(run, model, training, sampling, data, ae_run, torch_device, context)
    trainer = FlowTrainer(model, training, data, torch_device, context)
    trainer.sampler.sampling = sampling
    budget = training.time_budget

    def train(epoch: int) -> dict:
        deadline = None
        if budget is not None:
            deadline = time.perf_counter() + budget - training_seconds(run.path)
        record = trainer.train_epoch(epoch, deadline, progress)
        if context.is_main:
            save_epoch_samples(trainer.sampler, run, epoch, training.seed)
        return record

    def budget_spent(epoch: int, record: dict) -> bool:
        return budget is not None and training_seconds(run.path) >= budget

    run_epochs(
        run,
        trainer.parts,
        training.epochs,
        train,
        torch_device,
        resume=resume,
        stop_after=budget_spent,
        is_main_process=context.is_main,
    )
    barrier(context)
    if context.is_main:
        write_card(run.path)
    trainer.average.eval()
    return trainer.sampler


def _configs_to_train(run: RunDir, model, training, ae_run, resume: bool, sampling):
    if run.exists() and not resume:
        raise ZspaceError(f"{run.path} already holds a run; pass --resume or choose another --out")
    if resume and run.exists():
        saved_model, saved_training = read_saved_configs(run.path)
        model, training = resume_configs(
            run.path, saved_model, saved_training, model, training, RESUME_FLAGS
        )
        saved = run.read_config(LATENT_FLOW)
        ae_run = ae_run or saved.get("autoencoder", {}).get("source")
        _, sampling, _ = read_flow_config(run)
    if model is None:
        raise ZspaceError("a new flow run needs a model config (a FlowConfig)")
    return model, training or FlowTrainingConfig(), ae_run, sampling or FlowSampling()


def _write_run_config(run, model, training, sampling, data, ae_run, device, context) -> None:
    run.write_config(
        LATENT_FLOW,
        {
            "model": model.to_dict(),
            "training": asdict(training),
            "sampling": sampling.to_dict(),
            "conditional": model.conditional,
            "autoencoder": {
                "model": data.autoencoder_config["model"],
                "source": str(Path(ae_run).resolve()),
            },
            "environment": run_environment(device, context.world_size),
        },
    )
    # The run carries its own copy of the decoder so it keeps working if the AE moves.
    save_tensors(run.file("autoencoder.safetensors"), data.autoencoder.state_dict())


@torch.no_grad()
def save_epoch_samples(sampler: FlowSampler, run: RunDir, epoch: int, seed: int) -> None:
    """samples/epoch_XXX.png from fixed noise (seeded CPU streams: the global RNG, which
    resume restores, is untouched)."""
    if sampler.conditional:
        images, _ = sampler.sample_with_labels(n=10, seed=seed)
    else:
        images = sampler.images(sampler.noise(100, seed))
    save_grid(images, run.file(f"{SAMPLES_FOLDER}/epoch_{epoch:03d}.png"), ncols=10, scale=1)


def new_configs(
    ae_latent_dim: int, conditional: bool, preset: str | None = None, **training_settings
) -> tuple[FlowConfig, FlowTrainingConfig]:
    """(architecture, training) of a new flow run from a preset and training settings."""
    model = FlowConfig.for_preset(preset or DEFAULT_FLOW_PRESET, ae_latent_dim, conditional)
    settings = {key: value for key, value in training_settings.items() if value is not None}
    return model, FlowTrainingConfig(**settings)


__all__ = [
    "FLOW_PRESETS",
    "FlowTrainingConfig",
    "FlowTrainer",
    "flow_matching_loss",
    "new_configs",
    "train_flow",
]
