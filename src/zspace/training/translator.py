"""Train a class-to-class translator (`zspace train-translator`): the reference study's three
GAN translators in the autoencoder's latent space, and two baselines.

Every learned method trains a residual map G over standardised codes against a critic D with
the non-saturating GAN loss and an R1 penalty on real data (Mescheder et al. 2018); they differ
in what D sees and in one extra term:
  - regular: G maps codes of A; D tells G's outputs from real codes of B. Nothing ties an output
    to its input, so nothing but G's identity start keeps the writer's style.
  - cycle (Zhu et al. 2017): G also maps B back to A, a second critic judges that direction, and
    an L1 cycle loss asks that A -> B -> A (and B -> A -> B) returns the input.
  - paired (pix2pix, Isola et al. 2017): D tells (I, G(I)) from (I, J), where J is I's
    counterpart in B, plus an L1 term towards J. MNIST has no pairs, so they come from a
    conditional generator: one noise drawn with labels A and B gives two digits in one style
    (translator_pairs.py).
  - shift: no training; the difference of the two classes' mean codes (class_means.safetensors).
  - restyle: no training; the run names a conditional generator to invert and redraw with.
With `--to all` one network serves every ordered pair, taking the target class as an input
(StarGAN-style); each batch mixes random (source, target) pairs.

Codes are encoded once and held as tensors; batches are drawn by index from the global RNG,
which checkpoints save, so `--resume` continues exactly.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from zspace import config_checks as check
from zspace.checkpoint import save_tensors
from zspace.data import load_dataset
from zspace.device import resolve_device
from zspace.errors import ZspaceError
from zspace.loading import load_sampler
from zspace.models.gan import CodeScaler
from zspace.models.translator import CodeCritic, CodeTranslator, TranslatorConfig
from zspace.runs import AUTOENCODER, TRANSLATOR, RunDir, check_claimable
from zspace.sampling.latent import encode_images, load_autoencoder, load_autoencoder_config
from zspace.sampling.translator import SHIFT_WEIGHTS, load_translator, read_translator_config
from zspace.training.cards import Command, run_environment, setting_differences, write_card
from zspace.training.gan_steps import update_average
from zspace.training.loop import TrainingParts, progress_bar, resume_configs, run_epochs
from zspace.training.translator_pairs import generated_pairs, same_autoencoder

# The training settings `zspace train-translator` takes as flags.
TRAINING_FLAGS = {
    "dataset": "--dataset",
    "limit": "--limit",
    "seed": "--seed",
    "epochs": "--epochs",
    "steps_per_epoch": "--steps-per-epoch",
    "batch_size": "--batch-size",
    "pairs": "--pairs",
    "threads": "--threads",
}
RESUME_FLAGS = {
    "model.method": "--method",
    "model.source": "--from",
    "model.target": "--to",
    **{f"training.{name}": flag for name, flag in TRAINING_FLAGS.items()},
}


@dataclass
class TranslatorTrainingConfig:
    """How a translator is trained (config.json's "training")."""

    dataset: str = "mnist"
    limit: int | None = None
    seed: int = 0
    epochs: int = 8
    steps_per_epoch: int = 250
    batch_size: int = 256
    # Adam with betas (0, 0.99), R1 every 16 steps and an EMA of G: the recipe of zspace's
    # best latent cGAN (wide-r1, zspace.models.presets), which these small GANs share.
    learning_rate: float = 1e-3
    cycle_weight: float = 10.0  # the cycle method's L1 A -> B -> A term
    pair_weight: float = 10.0  # the paired method's L1 term towards the counterpart
    r1_weight: float = 0.1
    r1_interval: int = 16  # lazy regularisation (Karras et al. 2020): R1 every N critic steps
    ema_decay: float = 0.999
    # Generated pairs for the paired method: per-pair runs draw this many noises with labels A
    # and B; all-pairs runs draw this many noises with every label.
    pairs: int = 20_000
    threads: int | None = None

    def __post_init__(self):
        check.text("dataset (--dataset)", self.dataset)
        check.optional_whole_number("limit (--limit)", self.limit, 1, check.MAX_COUNT)
        check.whole_number("seed (--seed)", self.seed, 0, check.MAX_SEED)
        check.whole_number("epochs (--epochs)", self.epochs, 1, check.MAX_COUNT)
        check.whole_number(
            "steps_per_epoch (--steps-per-epoch)", self.steps_per_epoch, 1, check.MAX_COUNT
        )
        check.whole_number("batch_size (--batch-size)", self.batch_size, 2, check.MAX_COUNT)
        check.learning_rate("learning_rate (--lr)", self.learning_rate)
        check.real_number("cycle_weight", self.cycle_weight, 0.0, 1e6)
        check.real_number("pair_weight", self.pair_weight, 0.0, 1e6)
        check.real_number("r1_weight", self.r1_weight, 0.0, 1e6)
        check.whole_number("r1_interval", self.r1_interval, 1, check.MAX_COUNT)
        check.real_number("ema_decay", self.ema_decay, 0.0, 0.999_999)
        check.whole_number("pairs (--pairs)", self.pairs, 1, check.MAX_COUNT)
        check.optional_whole_number("threads (--threads)", self.threads, 1, 1024)

    @classmethod
    def from_dict(cls, data: dict) -> TranslatorTrainingConfig:
        return cls(**check.known_fields("translator training config", data, cls))


@dataclass
class TranslationData:
    """Raw codes on the device: real training codes by class, and generated pairs."""

    codes_by_class: dict[int, torch.Tensor]
    pairs: torch.Tensor | None  # (M, len(pair_classes), latent_dim): one noise per row
    pair_classes: tuple[int, ...]
    autoencoder: object
    autoencoder_config: dict


def prepare_data(
    config: TranslatorConfig,
    training: TranslatorTrainingConfig,
    ae_run,
    generator_run,
    data_dir,
    device,
) -> TranslationData:
    """Encode the training images of the classes the run needs; draw the paired method's pairs."""
    ae_config = RunDir(ae_run).read_config(AUTOENCODER)
    autoencoder = load_autoencoder(ae_run, device)
    dataset = load_dataset(training.dataset, data_dir=data_dir, limit=training.limit)
    if dataset.train_labels is None:
        raise ZspaceError(f"{training.dataset} has no labels; translators need digit classes")
    classes = range(config.num_classes) if config.all_pairs else (config.source, config.target)
    codes_by_class = {}
    for digit in classes:
        images = dataset.train_images[dataset.train_labels == digit]
        if len(images) < 2:
            raise ZspaceError(f"{training.dataset} has fewer than 2 training images of {digit}")
        codes_by_class[digit] = encode_images(autoencoder, images).to(device)
    pairs, pair_classes = None, tuple(classes)
    if generator_run is not None:
        sampler = load_sampler(generator_run, device, action="translate")
        if not getattr(sampler, "conditional", False) or not getattr(sampler, "has_noise", False):
            raise ZspaceError(
                f"{generator_run} is not a conditional generator with noise; the {config.method} "
                "method needs one (train-gan --conditional or train-flow --conditional)"
            )
        same_autoencoder(sampler, autoencoder, generator_run, ae_run)
        if config.method == "paired":
            pairs = generated_pairs(sampler, pair_classes, training.pairs, training.seed)
            pairs = pairs.to(device)
    return TranslationData(codes_by_class, pairs, pair_classes, autoencoder, ae_config)


def cycle_loss(translator, outputs, inputs, sources) -> torch.Tensor:
    """L1 between the inputs and their outputs translated back to the inputs' classes: zero
    exactly when the way back undoes the way there."""
    return (translator(outputs, sources) - inputs).abs().mean()


class TranslatorTrainer:
    """G, D, their optimisers and data for one learned translator, and its epoch of steps."""

    def __init__(
        self,
        config: TranslatorConfig,
        training: TranslatorTrainingConfig,
        data: TranslationData,
        device,
    ):
        self.config, self.training, self.device = config, training, device
        torch.manual_seed(training.seed)
        self.translator = CodeTranslator(config).to(device)
        self.average = copy.deepcopy(self.translator).requires_grad_(False)
        self.critic = CodeCritic(config).to(device)
        every_code = torch.cat(list(data.codes_by_class.values()))
        self.scaler = CodeScaler(config.data_dim).to(device).fit(every_code)
        self.codes = {digit: self.scaler(codes) for digit, codes in data.codes_by_class.items()}
        self.class_means = {digit: codes.mean(0) for digit, codes in self.codes.items()}
        self.pairs = None if data.pairs is None else self.scaler(data.pairs)
        # digit -> its column of `pairs`, as a tensor so a batch looks its columns up at once
        self.pair_column = torch.zeros(config.num_classes, dtype=torch.long, device=device)
        self.pair_column[list(data.pair_classes)] = torch.arange(
            len(data.pair_classes), device=device
        )
        betas = (0.0, 0.99)
        # foreach: one kernel per step for all tensors (measured: Adam took 17% of a step)
        self.translator_optimizer = torch.optim.Adam(
            self.translator.parameters(), training.learning_rate, betas=betas, foreach=True
        )
        self.critic_optimizer = torch.optim.Adam(
            self.critic.parameters(), training.learning_rate, betas=betas, foreach=True
        )
        self.parts = TrainingParts(
            modules={
                "translator": self.translator,
                "translator_ema": self.average,
                "critic": self.critic,
                "scaler": self.scaler,
            },
            optimizers={"translator": self.translator_optimizer, "critic": self.critic_optimizer},
        )

    def draw_real(self, classes: torch.Tensor) -> torch.Tensor:
        """One random real (standardised) training code of each row's class."""
        result = torch.empty(len(classes), self.config.data_dim, device=self.device)
        for digit in classes.unique().tolist():
            rows = classes == digit
            pool = self.codes[digit]
            result[rows] = pool[torch.randint(len(pool), (int(rows.sum()),), device=self.device)]
        return result

    def random_directions(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(sources, targets) for `count` rows: all pairs draws ordered pairs uniformly; a
        per-pair cycle run goes half A -> B, half B -> A; other per-pair runs go A -> B."""
        config, device = self.config, self.device
        if config.all_pairs:
            sources = torch.randint(config.num_classes, (count,), device=device)
            offsets = torch.randint(1, config.num_classes, (count,), device=device)
            return sources, (sources + offsets) % config.num_classes
        sources = torch.full((count,), config.source, device=device)
        if config.method == "cycle":
            sources[count // 2 :] = config.target
        targets = torch.where(sources == config.source, config.target, config.source)
        return sources, targets

    def batch(self):
        """(inputs, sources, targets, counterparts or None) for one step."""
        sources, targets = self.random_directions(self.training.batch_size)
        if self.pairs is None:
            return self.draw_real(sources), sources, targets, None
        rows = torch.randint(len(self.pairs), (len(sources),), device=self.device)
        inputs = self.pairs[rows, self.pair_column[sources]]
        return inputs, sources, targets, self.pairs[rows, self.pair_column[targets]]

    def critic_step(self, inputs, targets, counterparts, step: int) -> float:
        paired = counterparts is not None
        with torch.no_grad():
            fake = self.translator(inputs, targets)
        real = (counterparts if paired else self.draw_real(targets)).requires_grad_(True)
        condition = inputs if paired else None
        real_logits = self.critic(real, targets, condition)
        fake_logits = self.critic(fake, targets, condition)
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        interval = self.training.r1_interval
        if self.training.r1_weight > 0 and step % interval == 0:
            (gradient,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            penalty = gradient.pow(2).sum(1).mean()
            loss = loss + 0.5 * self.training.r1_weight * interval * penalty
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        return float(loss.detach())

    def translator_step(self, inputs, sources, targets, counterparts, step: int) -> dict:
        paired = counterparts is not None
        fake = self.translator(inputs, targets)
        adversarial = F.softplus(-self.critic(fake, targets, inputs if paired else None)).mean()
        loss, record = adversarial, {"adversarial": float(adversarial.detach())}
        if self.config.method == "cycle":
            cycle = cycle_loss(self.translator, fake, inputs, sources)
            loss = loss + self.training.cycle_weight * cycle
            record["cycle_l1"] = float(cycle.detach())
        if paired:
            pair = (fake - counterparts).abs().mean()
            loss = loss + self.training.pair_weight * pair
            record["pair_l1"] = float(pair.detach())
        self.translator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.translator_optimizer.step()
        update_average(self.average, self.translator, self.training.ema_decay, step)
        record["mean_gap"] = self.mean_gap(fake.detach(), targets)
        return record

    def mean_gap(self, outputs: torch.Tensor, targets: torch.Tensor) -> float:
        """Squared distance between the outputs' mean and their target class's mean code,
        averaged over the target classes of the batch (0 once the map lands on the class
        centres; at the identity start, the distance between the classes)."""
        gaps = [
            (outputs[targets == digit].mean(0) - self.class_means[digit]).pow(2).sum()
            for digit in targets.unique().tolist()
        ]
        return float(torch.stack(gaps).mean())

    def train_epoch(self, epoch: int, progress: bool) -> dict:
        self.translator.train()
        self.critic.train()
        totals: dict[str, float] = {}
        steps = range(self.training.steps_per_epoch)
        first = (epoch - 1) * len(steps)
        for offset in progress_bar(steps, len(steps), f"epoch {epoch}", progress):
            inputs, sources, targets, counterparts = self.batch()
            step = first + offset
            record = {"critic_loss": self.critic_step(inputs, targets, counterparts, step)}
            record.update(self.translator_step(inputs, sources, targets, counterparts, step))
            for key, value in record.items():
                totals[key] = totals.get(key, 0.0) + value
        return {key: value / len(steps) for key, value in totals.items()}


def train_translator(
    out: str | Path,
    config: TranslatorConfig | None = None,
    training: TranslatorTrainingConfig | None = None,
    ae_run: str | Path | None = None,
    generator_run: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
):
    """Train (or resume) a translator run in folder `out`; returns the loaded Translator.

    `generator_run` is the conditional generator that the paired method draws its pairs from
    and the restyle method inverts; the other methods take none."""
    run = RunDir(out)
    config, training, ae_run, generator_run = _configs_to_train(
        run, config, training, ae_run, generator_run, resume
    )
    check_claimable(run.path, TRANSLATOR)  # before any work: never into a user's folder
    latent_dim = _check_inputs(config, ae_run, generator_run)
    if not resume or not run.exists():
        config = dataclasses.replace(config, data_dim=latent_dim)  # the AE's code size
    if training.threads is not None:
        torch.set_num_threads(training.threads)
    torch_device = resolve_device(device)
    data = prepare_data(config, training, ae_run, generator_run, data_dir, torch_device)
    _write_run_config(run, config, training, data, ae_run, generator_run, torch_device)
    if config.method == "shift":
        means = torch.zeros(config.num_classes, config.data_dim)
        for digit, codes in data.codes_by_class.items():
            means[digit] = codes.mean(0).cpu()
        save_tensors(run.file(SHIFT_WEIGHTS), {"class_means": means})
    elif config.learned:
        trainer = TranslatorTrainer(config, training, data, torch_device)
        run_epochs(
            run,
            trainer.parts,
            training.epochs,
            lambda epoch: trainer.train_epoch(epoch, progress),
            torch_device,
            resume=resume,
        )
    write_card(run.path)
    return load_translator(run.path, torch_device)


def _check_inputs(config: TranslatorConfig, ae_run, generator_run) -> int:
    """Refuse missing or mismatched inputs in one line; returns the AE's code size."""
    if ae_run is None:
        raise ZspaceError("a translator needs --ae AE_RUN (a trained autoencoder run folder)")
    latent_dim = load_autoencoder_config(ae_run).latent_dim
    needs_generator = config.method in ("paired", "restyle")
    if needs_generator and generator_run is None:
        raise ZspaceError(
            f"the {config.method} method needs --generator RUN (a conditional latent GAN or flow)"
        )
    if not needs_generator and generator_run is not None:
        raise ZspaceError(f"the {config.method} method takes no --generator")
    return latent_dim


def saved_method(run_dir) -> str | None:
    """The method of the translator run in `run_dir`, None if there is none yet."""
    run = RunDir(run_dir)
    return read_translator_config(run)[0].method if run.exists() else None


def read_saved_training(run_dir) -> TranslatorTrainingConfig:
    """A translator run's saved training settings (for `--resume` with changed epochs)."""
    run = RunDir(run_dir)
    _, saved = read_translator_config(run)
    with check.reading(run.config_path):
        return TranslatorTrainingConfig.from_dict(check.section(saved, "training"))


def _configs_to_train(run: RunDir, config, training, ae_run, generator_run, resume: bool):
    if run.exists() and not resume:
        raise ZspaceError(f"{run.path} already holds a run; pass --resume or choose another --out")
    if resume and run.exists():
        saved_config, saved = read_translator_config(run)
        saved_training = read_saved_training(run.path)
        if config is not None:  # the code size is the AE's, not a setting to compare
            config = dataclasses.replace(config, data_dim=saved_config.data_dim)
        config, training = resume_configs(
            run.path, saved_config, saved_training, config, training, RESUME_FLAGS
        )
        ae_run = ae_run or saved.get("autoencoder", {}).get("source")
        generator_run = generator_run or saved.get("generator", {}).get("source")
    if config is None:
        raise ZspaceError("a new translator run needs a config (a TranslatorConfig)")
    return config, training or TranslatorTrainingConfig(), ae_run, generator_run


def _write_run_config(run, config, training, data, ae_run, generator_run, device) -> None:
    settings = {
        "model": config.to_dict(),
        "training": asdict(training),
        "autoencoder": {
            "model": data.autoencoder_config["model"],
            "source": str(Path(ae_run).resolve()),
        },
        "environment": run_environment(device, 1),
    }
    if generator_run is not None:
        settings["generator"] = {"source": str(Path(generator_run).resolve())}
    run.write_config(TRANSLATOR, settings)
    # The run carries its own copy of the decoder so it keeps working if the AE moves.
    save_tensors(run.file("autoencoder.safetensors"), data.autoencoder.state_dict())


def command_for_run(run: RunDir, config: dict) -> Command:
    """The `zspace train-translator` command that makes this run, for its card."""
    model = TranslatorConfig.from_dict(config["model"])
    training = TranslatorTrainingConfig.from_dict(config["training"])
    args = ["train-translator", "--ae", config["autoencoder"]["source"], "--method", model.method]
    if model.all_pairs:
        args += ["--to", "all"]
    else:
        args += ["--from", model.source, "--to", model.target]
    if "generator" in config:
        args += ["--generator", config["generator"]["source"]]
    defaults = TranslatorTrainingConfig()
    given = {name: getattr(training, name) for name in TRAINING_FLAGS}
    for name, value in given.items():
        if value != getattr(defaults, name):
            args += [TRAINING_FLAGS[name], value]
    args += ["--out", run.path]
    rebuilt_model = TranslatorConfig(
        method=model.method, source=model.source, target=model.target, data_dim=model.data_dim
    )
    differences = setting_differences(
        {"model": model.to_dict(), "training": asdict(training)},
        {"model": rebuilt_model.to_dict(), "training": asdict(TranslatorTrainingConfig(**given))},
    )
    return Command(args, differences)


__all__ = [
    "TranslatorTrainer",
    "TranslatorTrainingConfig",
    "command_for_run",
    "train_translator",
]
