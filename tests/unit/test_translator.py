"""Class-to-class translators without MNIST: the networks' identity start and routing, the
cycle loss, each method learning on synthetic two-class Gaussian codes, the paired method's
generated pairs, the shift baseline's arithmetic, the translation measures and the verdicts on
the study's hypotheses from hand-made rows."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from zspace.errors import ZspaceError
from zspace.evaluation.translation import chosen_pairs, class_similarity, counterpart_error
from zspace.evaluation.translation_hypotheses import (
    COUNTERPART_CONVERGED,
    MARGINS,
    best_learned,
    hypothesis_verdicts,
    scope_winner,
    similarity_effects,
)
from zspace.models.gan import CodeScaler
from zspace.models.translator import CodeCritic, CodeTranslator, TranslatorConfig
from zspace.sampling.translator import LearnedMap, ShiftMap, Translator
from zspace.training.translator import (
    TranslationData,
    TranslatorTrainer,
    TranslatorTrainingConfig,
    cycle_loss,
)
from zspace.training.translator_pairs import generated_pairs, same_autoencoder

DATA_DIM = 8
SOURCE, TARGET = 4, 9
SMALL = {"data_dim": DATA_DIM, "hidden_dim": 32, "critic_hidden_dim": 32}


def _config(method="cycle", source=SOURCE, target=TARGET, **overrides) -> TranslatorConfig:
    return TranslatorConfig(method=method, source=source, target=target, **{**SMALL, **overrides})


def _two_class_codes(seed: int = 0, count: int = 256):
    """(codes of A, codes of B, pairs): Gaussians of spread 0.5 around +1.5 and -1.5 on the
    first half of the dimensions; pairs (count, 2, DATA_DIM) put one "style" (the same noise)
    around both means, the counterparts the paired method should find."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.zeros(DATA_DIM)
    centre[: DATA_DIM // 2] = 1.5
    style = 0.5 * torch.randn(count, DATA_DIM, generator=generator)
    codes_a = centre + style
    codes_b = -centre + 0.5 * torch.randn(count, DATA_DIM, generator=generator)
    pairs = torch.stack([centre + style, -centre + style], dim=1)
    return codes_a, codes_b, pairs


def _trainer(method="regular", seed=0, all_pairs=False, **training) -> TranslatorTrainer:
    """A trainer of small networks on `_two_class_codes(0)`; `seed` is the training seed."""
    codes_a, codes_b, pairs = _two_class_codes(0)
    settings = {"seed": seed, "epochs": 1, "steps_per_epoch": 50, "batch_size": 64, **training}
    if all_pairs:  # two classes, 0 and 1: the one network sees the target as a one-hot
        config = _config(method, source=None, target=None, num_classes=2)
        codes, classes = {0: codes_a, 1: codes_b}, (0, 1)
    else:
        config = _config(method)
        codes, classes = {SOURCE: codes_a, TARGET: codes_b}, (SOURCE, TARGET)
    data = TranslationData(
        codes_by_class=codes,
        pairs=pairs if method == "paired" else None,
        pair_classes=classes,
        autoencoder=None,
        autoencoder_config={},
    )
    return TranslatorTrainer(config, TranslatorTrainingConfig(**settings), data, "cpu")


def _targets(count: int, digit: int) -> torch.Tensor:
    return torch.full((count,), digit, dtype=torch.long)


@torch.no_grad()
def _class_gap(trainer: TranslatorTrainer, source: int, target: int) -> float:
    """Squared distance between the mean of every (standardised) training code of `source`
    translated to `target` and the mean of the real codes of `target`."""
    inputs = trainer.codes[source]
    outputs = trainer.translator(inputs, _targets(len(inputs), target))
    return float((outputs.mean(0) - trainer.codes[target].mean(0)).pow(2).sum())


def _random_weights(module: nn.Module, seed: int = 0, spread: float = 0.3) -> nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, spread)
    return module


# --- the config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"method": "stargan"}, "method (--method) must be one of"),
        ({"source": 4, "target": 4}, "--from and --to are both 4"),
        ({"source": 4, "target": 10}, "--to must be a whole number from 0 to 9"),
        ({"source": -1, "target": 9}, "--from must be a whole number from 0 to 9"),
        ({"source": 4.0, "target": 9}, "--from must be a whole number"),
        ({"source": 2, "target": 3, "num_classes": 3}, "--to must be a whole number from 0 to 2"),
        ({"source": 3, "target": None}, "takes no --from"),
        ({"source": None, "target": 3}, "needs --from"),
        ({"num_classes": 1}, "num_classes"),
        ({"data_dim": 0}, "data_dim"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"depth": 0}, "depth"),
        ({"critic_hidden_dim": 0}, "critic_hidden_dim"),
        ({"critic_depth": True}, "critic_depth"),
    ],
)
def test_config_refuses_bad_settings_in_one_line(settings, message):
    with pytest.raises(ZspaceError, match=re.escape(message)) as error:
        TranslatorConfig(**settings)
    assert "\n" not in str(error.value)


def test_config_names_what_a_run_translates():
    assert _config("regular").target_classes == (TARGET,)
    assert _config("paired").target_classes == (TARGET,)
    assert _config("cycle").target_classes == (TARGET, SOURCE)  # and the way back
    assert _config("shift").target_classes == (TARGET, SOURCE)
    assert _config("regular").critic_classes == (TARGET,)
    assert _config("cycle").critic_classes == (TARGET, SOURCE)
    everything = _config("regular", source=None, target=None)
    assert everything.all_pairs and everything.target_classes == tuple(range(10))
    assert _config("paired").pair_critic and not _config("cycle").pair_critic
    assert _config("cycle").learned and not _config("shift").learned
    config = _config("paired", depth=3)
    assert TranslatorConfig.from_dict(config.to_dict()) == config
    # Keys a newer zspace may add are ignored; bad values are not.
    assert TranslatorConfig.from_dict({**config.to_dict(), "colour": "red"}) == config
    with pytest.raises(ZspaceError, match="--from and --to"):
        TranslatorConfig.from_dict({**config.to_dict(), "target": SOURCE})


def test_training_config_refuses_bad_settings():
    with pytest.raises(ZspaceError, match="batch_size"):
        TranslatorTrainingConfig(batch_size=1)
    with pytest.raises(ZspaceError, match="pairs"):
        TranslatorTrainingConfig(pairs=0)
    with pytest.raises(ZspaceError, match="ema_decay"):
        TranslatorTrainingConfig(ema_decay=1.0)


# --- the networks ----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["pair", "all"])
def test_fresh_translator_is_exactly_the_identity(scope):
    config = _config("cycle") if scope == "pair" else _config("cycle", None, None)
    translator = CodeTranslator(config)
    codes = torch.randn(12, DATA_DIM)
    for target in config.target_classes:
        assert torch.equal(translator(codes, _targets(12, target)), codes)
    # ...but not by accident: the hidden layers are random, only the last layer is zero.
    for net in translator.nets.values() if scope == "pair" else [translator.net]:
        assert net[0].weight.abs().sum() > 0
        assert not net[-1].weight.any() and not net[-1].bias.any()


def test_per_pair_translator_routes_each_row_to_its_target_network():
    translator = CodeTranslator(_config("cycle"))
    with torch.no_grad():
        translator.nets[f"to_{TARGET}"][-1].bias.fill_(1.0)
        translator.nets[f"to_{SOURCE}"][-1].bias.fill_(-2.0)
    codes = torch.randn(6, DATA_DIM)
    targets = torch.tensor([TARGET, SOURCE, TARGET, TARGET, SOURCE, SOURCE])
    shift = torch.where(targets == TARGET, 1.0, -2.0)[:, None]
    assert torch.allclose(translator(codes, targets), codes + shift)


def test_per_pair_translator_refuses_a_target_it_has_no_network_for():
    regular = CodeTranslator(_config("regular"))
    with pytest.raises(ZspaceError, match=f"maps to {TARGET} only, not {SOURCE}"):
        regular(torch.randn(3, DATA_DIM), _targets(3, SOURCE))
    with pytest.raises(ZspaceError, match="not 2, 7"):
        CodeTranslator(_config("cycle"))(torch.randn(3, DATA_DIM), torch.tensor([2, TARGET, 7]))
    with pytest.raises(ZspaceError, match=f"not {SOURCE}"):
        CodeCritic(_config("regular"))(torch.randn(3, DATA_DIM), _targets(3, SOURCE))


def test_all_pairs_translator_sees_the_target_class():
    translator = _random_weights(CodeTranslator(_config("regular", None, None)))
    codes = torch.randn(5, DATA_DIM)
    outputs = {target: translator(codes, _targets(5, target)) for target in (0, 3, 9)}
    assert not torch.allclose(outputs[0], outputs[3]) and not torch.allclose(outputs[3], outputs[9])
    # Each row is mapped with its own target: a mixed batch equals the rows done one by one.
    mixed = translator(codes, torch.tensor([0, 3, 9, 0, 3]))
    expected = torch.stack([outputs[t][row] for row, t in enumerate([0, 3, 9, 0, 3])])
    assert torch.allclose(mixed, expected, atol=1e-6)


def test_critic_shapes_and_the_paired_critic_needs_inputs():
    codes = torch.randn(7, DATA_DIM)
    assert CodeCritic(_config("cycle"))(codes, _targets(7, SOURCE)).shape == (7,)
    assert CodeCritic(_config("regular", None, None))(codes, torch.arange(7)).shape == (7,)
    paired = CodeCritic(_config("paired"))
    assert paired(codes, _targets(7, TARGET), torch.randn(7, DATA_DIM)).shape == (7,)
    with pytest.raises(ZspaceError, match="give inputs"):
        paired(codes, _targets(7, TARGET))


# --- the cycle loss --------------------------------------------------------------------------


def test_cycle_loss_is_zero_for_identity_maps_and_positive_otherwise():
    translator = CodeTranslator(_config("cycle"))
    inputs = torch.randn(16, DATA_DIM)
    sources, targets = _targets(16, SOURCE), _targets(16, TARGET)
    outputs = translator(inputs, targets)
    assert cycle_loss(translator, outputs, inputs, sources).item() == 0.0
    # A -> B adds 0.5 to every coordinate and B -> A adds nothing: the round trip is off by 0.5.
    with torch.no_grad():
        translator.nets[f"to_{TARGET}"][-1].bias.fill_(0.5)
    outputs = translator(inputs, targets)
    assert cycle_loss(translator, outputs, inputs, sources).item() == pytest.approx(0.5)
    # B -> A undoing it exactly brings the loss back to zero.
    with torch.no_grad():
        translator.nets[f"to_{SOURCE}"][-1].bias.fill_(-0.5)
    outputs = translator(inputs, targets)
    assert cycle_loss(translator, outputs, inputs, sources).item() == pytest.approx(0, abs=1e-6)
    # Random (non-identity) maps do not undo each other.
    _random_weights(translator)
    outputs = translator(inputs, targets)
    assert cycle_loss(translator, outputs, inputs, sources).item() > 0.01


# --- training on synthetic codes -------------------------------------------------------------


@pytest.mark.parametrize(
    "method, epochs, steps",
    [("regular", 3, 50), ("paired", 3, 50), ("cycle", 3, 100)],
)
def test_each_method_moves_codes_onto_the_target_class(method, epochs, steps):
    trainer = _trainer(method, steps_per_epoch=steps)
    identity_gap = _class_gap(trainer, SOURCE, TARGET)
    assert identity_gap > 10  # the classes' means are far apart at the identity start
    records = [trainer.train_epoch(epoch, progress=False) for epoch in range(1, epochs + 1)]
    assert all(math.isfinite(value) for record in records for value in record.values())
    assert _class_gap(trainer, SOURCE, TARGET) < 0.1 * identity_gap
    if method == "cycle":  # and the way back
        assert _class_gap(trainer, TARGET, SOURCE) < 0.1 * identity_gap
        inputs = trainer.codes[SOURCE]
        with torch.no_grad():
            outputs = trainer.translator(inputs, _targets(len(inputs), TARGET))
            round_trip = cycle_loss(
                trainer.translator, outputs, inputs, _targets(len(inputs), SOURCE)
            )
        moved = (outputs - inputs).abs().mean()
        assert moved > 0.5 and round_trip < 0.15 * moved  # B -> A learned to undo A -> B
        assert [record["cycle_l1"] for record in records][0] < 0.02  # near-identity at first
    else:  # every row goes A -> B, so the logged mean gap follows the class gap
        gaps = [record["mean_gap"] for record in records]
        assert gaps[-1] < gaps[0] < identity_gap and gaps[-1] < 0.15 * identity_gap
    if method == "paired":
        inputs, counterparts = trainer.pairs[:, 0], trainer.pairs[:, 1]
        identity_l1 = (inputs - counterparts).abs().mean().item()
        pair_l1 = [record["pair_l1"] for record in records]
        assert pair_l1[-1] < pair_l1[0] < identity_l1 and pair_l1[-1] < 0.2 * identity_l1
    else:
        assert "pair_l1" not in records[0]


@pytest.mark.parametrize(
    "method, all_pairs", [("regular", False), ("cycle", False), ("regular", True)]
)
def test_mean_gap_starts_at_the_class_distance(method, all_pairs):
    """The logged `mean_gap` is "how far the outputs' mean is from the targets' real mean": at
    the identity start it must be about the distance between the two classes' means, whatever
    the batch's mix of directions (a cycle run and an all-pairs run translate both ways)."""
    trainer = _trainer(method, all_pairs=all_pairs, steps_per_epoch=1, batch_size=256)
    source, target = (0, 1) if all_pairs else (SOURCE, TARGET)
    identity_gap = _class_gap(trainer, source, target)
    record = trainer.train_epoch(1, progress=False)  # measured on the outputs before the step
    assert record["mean_gap"] > 0.5 * identity_gap, (record["mean_gap"], identity_gap)


def test_training_is_deterministic_for_a_seed():
    def after_one_epoch(seed):
        trainer = _trainer("paired", seed=seed, steps_per_epoch=20)
        record = trainer.train_epoch(1, progress=False)
        weights = {
            f"{name}.{key}": value.clone()
            for name, module in trainer.parts.modules.items()
            for key, value in module.state_dict().items()
        }
        return record, weights

    (record, weights), (again, weights_again) = after_one_epoch(0), after_one_epoch(0)
    assert record == again
    assert weights.keys() == weights_again.keys()
    assert all(torch.equal(weights[key], weights_again[key]) for key in weights)
    other, other_weights = after_one_epoch(1)
    assert other != record
    assert not torch.equal(
        weights["translator_ema.nets.to_9.0.weight"],
        other_weights["translator_ema.nets.to_9.0.weight"],
    )


# --- generated pairs -------------------------------------------------------------------------


class RecordingSampler:
    """A stand-in conditional sampler: codes = noise @ W + 3 * label, remembering every call."""

    noise_dim = 5
    conditional = True
    has_noise = True

    def __init__(self):
        self.weight = torch.randn(
            self.noise_dim, DATA_DIM, generator=torch.Generator().manual_seed(1)
        )
        self.calls = []

    def generate_codes(self, noise, labels):
        self.calls.append((noise.clone(), labels.clone()))
        return noise @ self.weight + 3.0 * labels[:, None].float()


def test_generated_pairs_draw_one_noise_with_every_label():
    sampler = RecordingSampler()
    pairs = generated_pairs(sampler, (SOURCE, TARGET, 2), count=9, seed=3)
    assert pairs.shape == (9, 3, DATA_DIM)
    assert [labels.unique().tolist() for _, labels in sampler.calls] == [[SOURCE], [TARGET], [2]]
    noise = sampler.calls[0][0]
    assert noise.shape == (9, sampler.noise_dim)
    assert all(torch.equal(call_noise, noise) for call_noise, _ in sampler.calls)
    assert noise.std() > 0.5  # real noise, and every row its own
    assert len({tuple(row.tolist()) for row in noise}) == 9
    # Row i, column j is noise i drawn again, alone, with label j.
    for row in (0, 4, 8):
        for column, digit in enumerate((SOURCE, TARGET, 2)):
            alone = sampler.generate_codes(noise[row : row + 1], _targets(1, digit))
            assert torch.allclose(pairs[row, column], alone[0])
    # Within a row only the label differs.
    assert torch.allclose(
        pairs[:, 1] - pairs[:, 0], torch.full((9, DATA_DIM), 3.0 * (TARGET - SOURCE))
    )
    # The same seed gives the same pairs; another seed others.
    assert torch.equal(generated_pairs(RecordingSampler(), (SOURCE, TARGET, 2), 9, 3), pairs)
    assert not torch.allclose(generated_pairs(RecordingSampler(), (SOURCE, TARGET, 2), 9, 4), pairs)


def test_same_autoencoder_refuses_a_generator_of_another_latent_space():
    class Carrier:
        def __init__(self, autoencoder):
            self.autoencoder = autoencoder

    torch.manual_seed(0)
    ours = nn.Linear(4, 3)
    same_autoencoder(Carrier(ours), ours, "G", "AE")
    twin = nn.Linear(4, 3)
    twin.load_state_dict(ours.state_dict())
    same_autoencoder(Carrier(twin), ours, "G", "AE")  # equal weights: the same autoencoder
    with pytest.raises(ZspaceError, match="G was trained on another autoencoder than AE"):
        same_autoencoder(Carrier(nn.Linear(4, 3)), ours, "G", "AE")
    with pytest.raises(ZspaceError, match="another autoencoder"):
        same_autoencoder(Carrier(nn.Linear(4, 5)), ours, "G", "AE")
    with pytest.raises(ZspaceError, match="does not draw AE codes"):
        same_autoencoder(object(), ours, "G", "AE")


# --- loaded translators: the shift baseline and the learned map -----------------------------


def _class_means() -> torch.Tensor:
    return torch.arange(10 * DATA_DIM, dtype=torch.float32).reshape(10, DATA_DIM) / 7.0


def test_shift_map_moves_codes_by_the_difference_of_class_means():
    means = _class_means()
    shift = ShiftMap(means)
    codes = torch.randn(6, DATA_DIM)
    sources = torch.tensor([1, 1, 4, 4, 7, 0])
    targets = torch.tensor([2, 9, 9, 0, 3, 5])
    expected = torch.stack([codes[i] - means[sources[i]] + means[targets[i]] for i in range(6)])
    assert torch.allclose(shift(codes, targets, sources), expected)
    # There and back is the identity; the mean of A lands exactly on the mean of B.
    there = shift(codes, targets, sources)
    assert torch.allclose(shift(there, sources, targets), codes, atol=1e-5)
    assert torch.allclose(shift(means[[4]], _targets(1, 9), _targets(1, 4)), means[[9]])


def test_shift_translator_checks_each_request():
    config = _config("shift")
    translator = Translator(config, ShiftMap(_class_means()), autoencoder=None)
    codes = torch.randn(5, DATA_DIM)
    means = _class_means()
    assert torch.allclose(
        translator.translate_codes(codes, TARGET), codes - means[SOURCE] + means[TARGET]
    )
    # The pair's other digit is the default source; the way back exists.
    back = translator.translate_codes(translator.translate_codes(codes, TARGET), SOURCE)
    assert torch.allclose(back, codes, atol=1e-5) and translator.can_go_back
    assert translator.translate_codes(codes[:0], TARGET).shape == (0, DATA_DIM)
    for target, source, message in [
        (3, None, f"makes {TARGET} or {SOURCE}, not 3"),
        (10, None, "target digit"),
        (TARGET, 2, f"turns {SOURCE} into {TARGET}, not 2"),
    ]:
        with pytest.raises(ZspaceError, match=message):
            translator.translate_codes(codes, target, source)
    with pytest.raises(ZspaceError, match=rf"shape \(N, {DATA_DIM}\)"):
        translator.translate_codes(torch.randn(5, DATA_DIM + 1), TARGET)
    # One shift for all pairs needs the input's digit, and refuses a digit into itself.
    everything = Translator(_config("shift", None, None), ShiftMap(_class_means()), None)
    with pytest.raises(ZspaceError, match="needs the input's digit: give --from"):
        everything.translate_codes(codes, 3)
    with pytest.raises(ZspaceError, match="already a 3"):
        everything.translate_codes(codes, 3, 3)
    assert torch.allclose(everything.translate_codes(codes, 3, 8), codes - means[8] + means[3])
    assert repr(everything) == "Translator(shift, all pairs)"


def test_learned_map_works_on_raw_codes_through_the_scaler():
    config = _config("regular")
    network = CodeTranslator(config)
    codes = 3.0 + 2.0 * torch.randn(50, DATA_DIM)
    scaler = CodeScaler(DATA_DIM).fit(codes)
    translator = Translator(config, LearnedMap(network, scaler), autoencoder=None)
    assert not translator.can_go_back and translator.targets == (TARGET,)
    # A fresh network is the identity, so raw codes come back unchanged.
    assert torch.allclose(translator.translate_codes(codes, TARGET), codes, atol=1e-5)
    # A bias of 1 in standardised units is one standard deviation of the raw codes.
    with torch.no_grad():
        network.nets[f"to_{TARGET}"][-1].bias.fill_(1.0)
    moved = translator.translate_codes(codes, TARGET) - codes
    assert torch.allclose(
        moved,
        scaler.inverse(torch.ones(1, DATA_DIM)) - scaler.inverse(torch.zeros(1, DATA_DIM)),
        atol=1e-4,
    )
    with pytest.raises(ZspaceError, match=f"makes {TARGET}, not {SOURCE}"):
        translator.translate_codes(codes, SOURCE)


# --- the measures ----------------------------------------------------------------------------


class _Exact:
    """A stand-in translator returning fixed outputs."""

    def __init__(self, outputs):
        self.outputs = outputs

    def translate_codes(self, codes, target, source):
        return self.outputs


def test_counterpart_error_is_zero_for_the_true_counterparts():
    _, _, pairs = _two_class_codes(0, count=64)
    assert counterpart_error(_Exact(pairs[:, 1]), pairs, SOURCE, TARGET) == 0.0
    shuffled = pairs[:, 1].roll(1, dims=0)
    assert counterpart_error(_Exact(shuffled), pairs, SOURCE, TARGET) == pytest.approx(1.0)
    # The mean of B for every input knows the class but not the style: about half-way.
    class_only = pairs[:, 1].mean(0).expand(64, DATA_DIM)
    assert counterpart_error(_Exact(class_only), pairs, SOURCE, TARGET) == pytest.approx(
        0.5, abs=0.1
    )


def test_class_similarity_ranks_the_pairs_of_codes():
    generator = torch.Generator().manual_seed(0)
    centres = torch.zeros(10, 3)
    centres[:, 0] = torch.tensor([0.0, 0.5, 3, 6, 9, 12, 15, 18, 21, 40])  # 0 and 1 alike
    labels = torch.arange(10).repeat_interleave(60)
    codes = centres[labels] + 0.3 * torch.randn(600, 3, generator=generator)
    ranking = class_similarity(codes, labels)
    assert len(ranking) == 45
    assert ranking[0]["pair"] == [0, 1] and ranking[-1]["pair"] == [0, 9]
    distances = [row["code_fd"] for row in ranking]
    assert distances == sorted(distances) and distances[0] >= 0
    chosen = chosen_pairs(ranking, per_end=2)
    assert [row["group"] for row in chosen] == ["similar"] * 2 + ["dissimilar"] * 2
    assert chosen[0]["pair"] == [0, 1] and chosen[-1]["pair"] == [0, 9]


# --- the hypotheses, on hand-made rows -------------------------------------------------------


def _row(method, group, accuracy, style_kept, fd_ratio, cycle_error=None, scope="pair"):
    return {
        "method": method,
        "scope": scope,
        "group": group,
        "accuracy": accuracy,
        "style_kept": style_kept,
        "fd_ratio": fd_ratio,
        "cycle_error": cycle_error,
    }


def _rows(method, similar: dict, dissimilar: dict, scope="pair", pairs=3) -> list[dict]:
    """`pairs` rows per group with the given measures."""
    return [
        _row(method, group, scope=scope, **measures)
        for group, measures in (("similar", similar), ("dissimilar", dissimilar))
        for _ in range(pairs)
    ]


GOOD = {"accuracy": 0.9, "style_kept": 0.6, "fd_ratio": 1.5, "cycle_error": 0.01}
BAD = {"accuracy": 0.6, "style_kept": 0.3, "fd_ratio": 3.0, "cycle_error": 0.03}


def _verdicts(rows, counterpart_errors=None) -> dict:
    return {v["hypothesis"]: v for v in hypothesis_verdicts(rows, counterpart_errors)}


def test_regular_hypothesis_supported_when_groups_are_equal_refuted_otherwise():
    same = {"accuracy": 0.8, "style_kept": 0.4, "fd_ratio": 2.0}
    verdict = _verdicts(_rows("regular", same, same))["regular"]
    assert verdict["verdict"] == "supported"
    assert set(verdict["effects"]) == {"accuracy", "style_kept", "fd_ratio"}  # no cycle error
    assert all(
        e["better"] == "neither" and e["difference"] == 0 for e in verdict["effects"].values()
    )
    # Within the margins still counts as no difference.
    within = {"accuracy": 0.81, "style_kept": 0.42, "fd_ratio": 2.2}
    assert _verdicts(_rows("regular", within, same))["regular"]["verdict"] == "supported"
    beyond = {**same, "accuracy": 0.9}
    verdict = _verdicts(_rows("regular", beyond, same))["regular"]
    assert verdict["verdict"] == "refuted"
    assert "accuracy 0.900 on similar pairs vs 0.800 on dissimilar" in verdict["evidence"]


def test_cycle_hypothesis_follows_which_group_is_better_beyond_the_margins():
    assert _verdicts(_rows("cycle", GOOD, BAD))["cycle"]["verdict"] == "supported"
    assert _verdicts(_rows("cycle", BAD, GOOD))["cycle"]["verdict"] == "refuted"
    same = _verdicts(_rows("cycle", GOOD, GOOD))["cycle"]
    assert same["verdict"] == "refuted"  # never better on similar pairs
    # Better on similar pairs in accuracy and style, worse in realism: mixed.
    mixed = {**GOOD, "fd_ratio": 4.0}
    assert _verdicts(_rows("cycle", mixed, BAD))["cycle"]["verdict"] == "mixed"
    # Better on similar pairs in one measure alone is not enough to support it.
    one = {**BAD, "accuracy": 0.9}
    assert _verdicts(_rows("cycle", one, BAD))["cycle"]["verdict"] == "mixed"
    effects = _verdicts(_rows("cycle", GOOD, BAD))["cycle"]["effects"]
    assert effects["cycle_error"]["better"] == "similar"  # smaller is better
    assert effects["fd_ratio"]["difference"] == pytest.approx(-1.5)


def test_paired_hypothesis_also_needs_the_counterpart_to_converge():
    rows = _rows("paired", GOOD, BAD)
    converged = _verdicts(rows, [0.1, 0.2])["paired"]
    assert converged["verdict"] == "supported"
    assert converged["counterpart_error"] == pytest.approx(0.15)
    assert "converges" in converged["evidence"] and "does not" not in converged["evidence"]
    far = _verdicts(rows, [COUNTERPART_CONVERGED + 0.3])["paired"]
    assert far["verdict"] == "mixed" and "does not converge" in far["evidence"]
    assert _verdicts(rows)["paired"]["counterpart_error"] is None
    assert _verdicts(_rows("paired", BAD, GOOD), [0.1])["paired"]["verdict"] == "refuted"


def test_verdicts_cover_only_the_methods_measured():
    rows = _rows("cycle", GOOD, BAD) + _rows("shift", GOOD, BAD)
    assert [v["hypothesis"] for v in hypothesis_verdicts(rows)] == ["cycle"]
    assert hypothesis_verdicts([]) == []
    # Rows of the all-pairs scope are not the per-pair hypothesis' evidence.
    assert hypothesis_verdicts(_rows("regular", GOOD, BAD, scope="all")) == []


def test_similarity_effects_ignore_missing_measures():
    rows = _rows("regular", {**GOOD, "cycle_error": None}, {**GOOD, "cycle_error": None})
    rows[0]["accuracy"] = float("nan")  # a NaN is left out of the mean, not spread into it
    effects = similarity_effects(rows, "regular")
    assert "cycle_error" not in effects
    assert effects["accuracy"]["similar"] == pytest.approx(GOOD["accuracy"])
    assert set(MARGINS) >= set(effects)


def test_scope_winner_and_best_learned():
    pair = _rows("cycle", BAD, BAD)
    everything = _rows("cycle", GOOD, GOOD, scope="all")
    assert scope_winner(pair, "cycle") is None  # no all-pairs model to compare with
    winner = scope_winner(pair + everything, "cycle")
    assert winner["winner"] == "all"
    assert winner["means"]["all"]["accuracy"] == pytest.approx(GOOD["accuracy"])
    assert (
        scope_winner(_rows("cycle", GOOD, GOOD) + _rows("cycle", BAD, BAD, scope="all"), "cycle")[
            "winner"
        ]
        == "pair"
    )

    rows = pair + everything + _rows("shift", {**GOOD, "accuracy": 1.0}, GOOD)
    rows += _rows("regular", {**GOOD, "style_kept": 0.1}, {**GOOD, "style_kept": 0.1})
    best = best_learned(rows)  # shift is no learned method; the tie goes to more style kept
    assert (best["method"], best["scope"]) == ("cycle", "all")
    assert best["accuracy"] == pytest.approx(GOOD["accuracy"]) and best["pairs"] == 6
    assert best_learned(_rows("shift", GOOD, GOOD)) is None
