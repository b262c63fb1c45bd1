"""Latent flows without MNIST: the straight path and its loss, guidance, the ODE solvers (ours
against `flow_matching`'s), inversion, log-likelihood against closed forms, and distillation on
a 2-D Gaussian mixture whose exact flow is known."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from zspace.errors import ZspaceError
from zspace.models.flow import FlowConfig, VelocityField
from zspace.models.gan import CodeScaler
from zspace.sampling.flow import FlowSampler, FlowSampling
from zspace.sampling.ode import SOLVERS, guided, integrate, log_likelihood
from zspace.training.flow import (
    FlowTrainingConfig,
    drop_labels,
    flow_matching_loss,
    new_configs,
    sample_times,
)
from zspace.training.flow_distill import ONE_STEP, DistillConfig, one_step_loss, teacher_pairs


def _random_field(
    data_dim=4, conditional=True, num_classes=10, architecture="adaln", seed=0, spread=0.4
):
    """A small VelocityField with every weight random: a fresh one is exactly zero (its output
    layer and adaLN gates start at zero), which would hide most mistakes."""
    torch.manual_seed(seed)
    config = FlowConfig(
        data_dim=data_dim,
        conditional=conditional,
        num_classes=num_classes,
        architecture=architecture,
        hidden_dim=16,
        depth=2,
        time_features=4,
    )
    field = VelocityField(config)
    with torch.no_grad():
        for parameter in field.parameters():
            parameter.normal_(0.0, spread)
    return field.eval()


class LinearField(nn.Module):
    """v(x, t, labels) = x A^T: the flow from x0 is x(t) = expm(t A) x0, its divergence tr A."""

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.matrix = nn.Parameter(matrix.clone(), requires_grad=False)

    def forward(self, x, t, labels=None):
        return x @ self.matrix.T


def _log_normal(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x**2).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


# --- the straight path and its loss ---------------------------------------------------------


def test_cond_ot_path_is_the_straight_line():
    from flow_matching.path import CondOTProbPath

    torch.manual_seed(0)
    x0, x1, t = torch.randn(32, 5), torch.randn(32, 5), torch.rand(32)
    point = CondOTProbPath().sample(x_0=x0, x_1=x1, t=t)
    assert torch.allclose(point.x_t, (1 - t[:, None]) * x0 + t[:, None] * x1, atol=1e-6)
    assert torch.allclose(point.dx_t, x1 - x0, atol=1e-6)
    assert torch.equal(point.t, t)


def test_flow_matching_loss_is_the_hand_computed_mse():
    torch.manual_seed(1)
    codes, noise, times = torch.randn(16, 3), torch.randn(16, 3), torch.rand(16)
    labels = torch.arange(16) % 4
    seen = {}

    def stand_in(x, t, rows):
        seen["labels"] = rows
        return 0.5 * x + t[:, None] ** 2 + rows[:, None].float()

    loss = flow_matching_loss(stand_in, codes, labels, times, noise)
    x_t = (1 - times[:, None]) * noise + times[:, None] * codes
    prediction = 0.5 * x_t + times[:, None] ** 2 + labels[:, None].float()
    expected = ((prediction - (codes - noise)) ** 2).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert seen["labels"] is labels
    # A field that is exactly the straight path's velocity has zero loss only on that pair.
    assert float(flow_matching_loss(lambda x, t, _: codes - noise, codes, None, times, noise)) == 0


def test_sample_times_and_drop_labels():
    torch.manual_seed(0)
    for scheme in ("uniform", "logit-normal"):
        times = sample_times(4000, scheme, "cpu")
        assert times.shape == (4000,) and (times > 0).all() and (times < 1).all()
        assert abs(float(times.mean()) - 0.5) < 0.03
    # logit-normal puts more mass in the middle than uniform
    assert (
        sample_times(4000, "logit-normal", "cpu").std() < sample_times(4000, "uniform", "cpu").std()
    )
    labels = torch.arange(1000) % 10
    assert torch.equal(drop_labels(labels, 0.0, 10), labels)
    assert (drop_labels(labels, 1.0, 10) == 10).all()
    dropped = drop_labels(labels, 0.3, 10)
    assert 0.25 < float((dropped == 10).float().mean()) < 0.35
    assert torch.equal(dropped[dropped != 10], labels[dropped != 10])


# --- the field ------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["adaln", "concat"])
def test_null_label_forms_agree_and_grouped_forward_matches_rows(architecture):
    field = _random_field(architecture=architecture)
    x = torch.randn(12, 4)
    labels = torch.tensor([0, 3, 10, 3, 9, 10, 0, 1, 2, 3, 4, 5])
    t = torch.tensor(0.3)
    with torch.no_grad():
        grouped = field(x, t, labels)  # shared time: the per-label grouped path
        rows = field._forward_rows(x, field.condition(t.expand(12), labels, 12, x))
        soft = field(x, t, field.one_hot(labels, torch.float32))  # float rows: per row
        null_int = field(x, t, torch.full((12,), 10))
        null_soft = field(x, t, torch.zeros(12, 10))
        no_label = field(x, t, None)
    assert torch.allclose(grouped, rows, atol=1e-5)
    assert torch.allclose(grouped, soft, atol=1e-5)
    assert torch.allclose(null_int, null_soft, atol=1e-5)
    assert torch.allclose(null_int, no_label, atol=1e-5)
    assert not torch.allclose(grouped, null_int, atol=1e-3)  # the label matters


def test_fresh_field_is_zero_and_configs_check_themselves():
    field = VelocityField(FlowConfig(data_dim=6, hidden_dim=8, depth=1, time_features=2))
    assert torch.equal(
        field(torch.randn(3, 6), torch.rand(3), torch.tensor([1, 2, 10])), torch.zeros(3, 6)
    )
    model, training = new_configs(64, True, "base", epochs=3, limit=None)
    assert (model.hidden_dim, model.depth, model.preset) == (512, 4, "base")
    assert training.epochs == 3 and training.limit is None
    with pytest.raises(ZspaceError, match="unknown flow preset"):
        new_configs(64, True, "huge")
    with pytest.raises(ZspaceError, match="ema_decay"):
        FlowTrainingConfig(ema_decay=1.0)
    with pytest.raises(ZspaceError, match="time_sampling"):
        FlowTrainingConfig(time_sampling="beta")
    with pytest.raises(ZspaceError):
        DistillConfig(pairs=0)
    assert FlowConfig.from_dict(model.to_dict()) == model


# --- guidance -------------------------------------------------------------------------------


def test_guidance_one_is_the_plain_field_and_w_mixes_exactly():
    calls = []

    def field(x, t, labels):  # exact arithmetic: small integers in float32
        calls.append(len(x))
        if labels is None:
            label_term = torch.full((len(x),), -1.0)
        elif labels.dtype.is_floating_point:
            label_term = labels.sum(1)
        else:
            label_term = labels.float()
        return 2 * x + label_term[:, None] + 3 * t

    x = torch.arange(12.0).reshape(4, 3)
    labels = torch.tensor([1, 2, 3, 4])
    t = torch.tensor(0.5)
    plain = guided(field, labels, 1.0, 10)(x, t)
    assert torch.equal(plain, field(x, t, labels)) and calls == [4, 4]  # one call, no null rows
    for w in (0.0, 2.0, 3.5):
        conditional = field(x, t, labels)
        unconditional = field(x, t, torch.full_like(labels, 10))
        expected = unconditional + w * (conditional - unconditional)
        assert torch.equal(guided(field, labels, w, 10)(x, t), expected)
    # soft labels: the "no label" input is an all-zero row
    soft = torch.tensor([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    expected = field(x, t, torch.zeros(4, 2)) + 2.0 * (
        field(x, t, soft) - field(x, t, torch.zeros(4, 2))
    )
    assert torch.equal(guided(field, soft, 2.0, 10)(x, t), expected)
    assert torch.equal(guided(field, None, 5.0, 10)(x, t), field(x, t, None))


def test_guided_velocity_field_matches_two_calls():
    field = _random_field()
    x, labels, t = torch.randn(7, 4), torch.tensor([0, 1, 2, 3, 4, 5, 6]), torch.tensor(0.7)
    with torch.no_grad():
        assert torch.allclose(guided(field, labels, 1.0, 10)(x, t), field(x, t, labels))
        c, u = field(x, t, labels), field(x, t, torch.full_like(labels, 10))
        assert torch.allclose(guided(field, labels, 2.5, 10)(x, t), u + 2.5 * (c - u), atol=1e-5)


def _sampler(field, sampling=None, scaler=None, one_step=False):
    if scaler is None:
        scaler = CodeScaler(field.config.data_dim)
        scaler.mean.copy_(torch.linspace(-1, 1, field.config.data_dim))
        scaler.scale.copy_(torch.linspace(0.5, 2, field.config.data_dim))
    return FlowSampler(field.config, field, scaler, None, sampling, one_step=one_step)


def test_sampler_at_guidance_one_is_plain_conditional_sampling():
    field = _random_field()
    sampler = _sampler(field, FlowSampling(solver="heun2", steps=5, guidance=3.0))
    plain = sampler.with_sampling(guidance=1.0)
    assert plain.sampling == FlowSampling(solver="heun2", steps=5, guidance=1.0)
    assert sampler.sampling.guidance == 3.0  # with_sampling leaves the original alone
    codes, labels = plain.sample_codes(digit=3, n=6, seed=2)
    noise = plain.noise(6, seed=2, digit=3)
    assert torch.equal(labels, torch.full((6,), 3))
    with torch.no_grad():
        expected = integrate(lambda x, t: field(x, t, labels), noise, 5, "heun2")
    assert torch.allclose(codes, sampler.scaler.inverse(expected), atol=1e-6)
    guided_codes, _ = sampler.sample_codes(digit=3, n=6, seed=2)
    assert not torch.allclose(guided_codes, codes, atol=1e-3)
    # the same noise and label, twice: the same codes
    assert torch.equal(plain.sample_codes(digit=3, n=6, seed=2)[0], codes)


def test_sampling_settings_are_checked():
    field = _random_field()
    sampler = _sampler(field)
    for settings, message in (
        ({"steps": 0}, "steps"),
        ({"steps": 1001}, "steps"),
        ({"guidance": -1.0}, "guidance"),
        ({"solver": "rk4"}, "solver"),
    ):
        with pytest.raises(ZspaceError, match=message):
            sampler.with_sampling(**settings)
    assert sampler.with_sampling(steps=None).sampling == sampler.sampling
    unconditional = _sampler(_random_field(conditional=False))
    with pytest.raises(ZspaceError, match="unconditional"):
        unconditional.with_sampling(guidance=2.0)
    with pytest.raises(ZspaceError, match="unconditional"):
        unconditional.generate_codes(torch.randn(2, 4), torch.tensor([1, 2]))
    with pytest.raises(ZspaceError, match="conditional"):
        sampler.generate_codes(torch.randn(2, 4))
    distilled = _sampler(field, ONE_STEP, one_step=True)
    with pytest.raises(ZspaceError, match="one Euler step"):
        distilled.with_sampling(steps=2)
    with pytest.raises(ZspaceError, match="one Euler step"):
        distilled.with_sampling(solver="midpoint")
    with pytest.raises(ZspaceError, match="one Euler step"):
        _sampler(field, FlowSampling(), one_step=True)
    with pytest.raises(ZspaceError, match="no density"):
        distilled.log_likelihood(torch.randn(2, 4), torch.tensor([1, 2]))


# --- the ODE solvers ------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_our_solvers_match_flow_matching(solver):
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    noise = torch.randn(10, 4, generator=torch.Generator().manual_seed(3))
    # float32 on a field of the size a trained one has; float64 on a stiffer one, where the
    # only difference left is rounding
    for dtype, spread, tolerance in ((torch.float32, 0.25, 1e-5), (torch.float64, 0.4, 1e-10)):
        field = _random_field(spread=spread).to(dtype)
        velocity = guided(field, labels, 1.5, 10)
        start_noise = noise.to(dtype)
        with torch.no_grad():
            for start, end in ((0.0, 1.0), (1.0, 0.0)):
                ours = integrate(velocity, start_noise, 7, solver, start, end)
                library = integrate(
                    velocity, start_noise, 7, solver, start, end, backend="flow_matching"
                )
                assert (ours - start_noise).abs().max() > 0.05  # the field moves the points
                difference = float((ours - library).abs().max())
                assert difference < tolerance, (dtype, start, difference)
    # the solvers are different rules: a check that compared a solver with itself would pass
    with torch.no_grad():
        euler = integrate(velocity, start_noise, 7, "euler")
        other = integrate(velocity, start_noise, 7, "midpoint" if solver == "euler" else solver)
    assert (euler - other).abs().max() > 1e-4


def test_solvers_converge_to_the_linear_flow_and_invert_it():
    torch.manual_seed(0)
    matrix = 0.6 * torch.randn(3, 3, dtype=torch.float64)
    field = LinearField(matrix)
    x0 = torch.randn(8, 3, dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(matrix).T
    velocity = lambda x, t: field(x, t)  # noqa: E731
    for solver, steps, tolerance in (
        ("euler", 2000, 5e-3),
        ("midpoint", 200, 1e-4),
        ("heun2", 200, 1e-4),
    ):
        forward = integrate(velocity, x0, steps, solver)
        assert torch.allclose(forward, exact, atol=tolerance), solver
        back = integrate(velocity, forward, steps, solver, 1.0, 0.0)
        assert torch.allclose(back, x0, atol=tolerance), solver


def test_invert_codes_recovers_the_noise_of_a_linear_flow():
    torch.manual_seed(1)
    matrix = 0.5 * torch.randn(3, 3)
    field = LinearField(matrix)
    field.config = FlowConfig(data_dim=3, conditional=False)
    sampler = _sampler(field, FlowSampling(solver="midpoint", steps=100, guidance=1.0))
    noise = torch.randn(16, 3)
    codes = sampler.generate_codes(noise)
    expected = sampler.scaler.inverse(noise @ torch.linalg.matrix_exp(matrix).T)
    assert torch.allclose(codes, expected, atol=1e-3)
    recovered, error = sampler.invert_codes(codes)
    assert torch.allclose(recovered, noise, atol=1e-4), (recovered - noise).abs().max()
    assert error.shape == (16,) and float(error.max()) < 1e-8
    # too few steps: the round trip is visibly worse, so the tolerance above means something
    coarse, _ = sampler.with_sampling(steps=2, solver="euler").invert_codes(codes)
    assert (coarse - noise).abs().max() > 1e-2


# --- log-likelihood -------------------------------------------------------------------------


@pytest.mark.parametrize("exact", [True, False])
def test_log_likelihood_of_a_zero_field_is_the_normal_density(exact):
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    values = log_likelihood(lambda x, t: 0 * x, x, steps=3, exact=exact)
    assert torch.allclose(values, _log_normal(x), atol=1e-5)
    # a fresh VelocityField is exactly zero; the sampler adds the scaler's Jacobian
    field = VelocityField(FlowConfig(data_dim=5, hidden_dim=8, depth=1, time_features=2))
    sampler = _sampler(field)
    codes = sampler.scaler.inverse(x)
    labels = torch.arange(20) % 10
    got = sampler.log_likelihood(codes, labels, steps=2, exact=exact)
    expected = _log_normal(x) - torch.log(sampler.scaler.scale).sum()
    assert torch.allclose(got, expected, atol=1e-4)


def test_log_likelihood_of_a_linear_field_matches_the_closed_form():
    torch.manual_seed(2)
    matrix = 0.5 * torch.randn(4, 4)
    x1 = torch.randn(10, 4)
    # x1 = expm(A) x0, so log p(x1) = log N(expm(-A) x1) - tr A
    x0 = x1 @ torch.linalg.matrix_exp(-matrix).T
    expected = _log_normal(x0) - torch.trace(matrix)
    velocity = LinearField(matrix)
    exact = log_likelihood(lambda x, t: velocity(x, t), x1, steps=64, exact=True)
    assert torch.allclose(exact, expected, atol=2e-3), (exact - expected).abs().max()
    # Hutchinson's estimate: exact for a diagonal field (z^T D z = tr D for +-1 probes), a
    # seeded random estimate otherwise, and the global RNG is left as it was
    diagonal = LinearField(torch.diag(torch.tensor([0.3, -0.5, 0.8, 0.1])))
    x0_diagonal = x1 * torch.exp(-torch.tensor([0.3, -0.5, 0.8, 0.1]))
    hutchinson = log_likelihood(lambda x, t: diagonal(x, t), x1, steps=64)
    assert torch.allclose(hutchinson, _log_normal(x0_diagonal) - 0.7, atol=2e-3)
    state = torch.random.get_rng_state()
    first = log_likelihood(lambda x, t: velocity(x, t), x1, steps=8, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, log_likelihood(lambda x, t: velocity(x, t), x1, steps=8, seed=1))
    assert not torch.allclose(
        first, log_likelihood(lambda x, t: velocity(x, t), x1, steps=8, seed=2)
    )


# --- distillation on a 2-D Gaussian mixture -------------------------------------------------

# Two components, one per label, each a Gaussian with diagonal covariance. Along the straight
# path the marginal of x_t given the label is Gaussian, so the exact flow is linear:
# x1 = mean + std * x0 per dimension.
MEANS = torch.tensor([[-2.0, 0.5], [1.5, -1.0]])
STDS = torch.tensor([[0.5, 0.25], [0.3, 0.6]])


def _mixture(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 2, (count,), generator=generator)
    points = MEANS[labels] + STDS[labels] * torch.randn(count, 2, generator=generator)
    return points, labels


def test_distilled_generator_matches_its_teacher_on_a_gaussian_mixture():
    torch.manual_seed(0)
    config = FlowConfig(
        data_dim=2, conditional=True, num_classes=2, hidden_dim=16, depth=1, time_features=8
    )
    field = VelocityField(config)
    optimizer = torch.optim.Adam(field.parameters(), 1e-2)
    teacher_steps = 400
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / teacher_steps)
    data = torch.Generator().manual_seed(1)
    for _ in range(teacher_steps):
        codes, labels = _mixture(256, data)
        times = sample_times(256, "uniform", "cpu")
        loss = flow_matching_loss(field, codes, labels, times, torch.randn(256, 2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        decay.step()
    field.eval()
    identity = CodeScaler(2)
    teacher = FlowSampler(
        config, field, identity, None, FlowSampling(solver="midpoint", steps=16, guidance=1.0)
    )
    noise, targets, labels = teacher_pairs(teacher, 2048, seed=0)
    assert torch.equal(labels, torch.arange(2048) % 2)
    # the teacher is close to the exact flow
    exact_targets = MEANS[labels] + STDS[labels] * noise
    teacher_error = float((targets - exact_targets).pow(2).mean().sqrt())
    assert teacher_error < 0.1, teacher_error

    student_field = copy.deepcopy(field).train()
    optimizer = torch.optim.Adam(student_field.parameters(), 3e-3)
    batches = torch.Generator().manual_seed(2)
    with torch.no_grad():
        before = float(one_step_loss(student_field, noise, targets, labels))
    for _ in range(150):
        rows = torch.randint(0, 2048, (256,), generator=batches)
        loss = one_step_loss(student_field, noise[rows], targets[rows], labels[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    student_field.eval()
    student = FlowSampler(config, student_field, identity, None, ONE_STEP, one_step=True)
    with torch.no_grad():
        after = float(one_step_loss(student_field, noise, targets, labels))
    assert after < before / 20, (before, after)

    # fresh noise: the student's single step lands where the teacher's ODE does
    fresh = torch.randn(4000, 2, generator=torch.Generator().manual_seed(5))
    fresh_labels = torch.arange(4000) % 2
    one_step = student.generate_codes(fresh, fresh_labels)
    with torch.no_grad():
        by_hand = fresh + student_field(fresh, torch.tensor(0.0), fresh_labels)
    assert torch.allclose(one_step, by_hand, atol=1e-6)
    ode = teacher.generate_codes(fresh, fresh_labels)
    student_error = float((one_step - ode).pow(2).mean().sqrt())
    assert student_error < 0.05, student_error
    # and the one-step samples have each component's mean and covariance
    for component in range(2):
        points = one_step[fresh_labels == component]
        covariance = torch.cov(points.T)
        assert torch.allclose(points.mean(0), MEANS[component], atol=0.06), points.mean(0)
        assert torch.allclose(covariance.diagonal().sqrt(), STDS[component], atol=0.06), covariance
        assert abs(float(covariance[0, 1])) < 0.03, covariance
    # the undistilled field's one Euler step lands near each component's mean instead: the
    # checks above tell a distilled student from an undistilled one
    with torch.no_grad():
        naive = fresh + field(fresh, torch.tensor(0.0), fresh_labels)
    naive_spread = naive[fresh_labels == 0].std(0)
    assert (naive_spread - STDS[0]).abs().max() > 0.15, naive_spread
    # the one-step map inverts by fixed-point iteration
    recovered, error = student.invert_codes(one_step[:50], fresh_labels[:50])
    assert torch.allclose(recovered, fresh[:50], atol=1e-3) and float(error.max()) < 1e-6
