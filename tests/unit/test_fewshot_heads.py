"""Head notation, reproducible draws and batched head training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zspace.errors import ZspaceError
from zspace.fewshot.batched import HeadModule, HeadTraining, initial_head_weights, train_heads
from zspace.fewshot.draws import draw_labelled, draw_many
from zspace.fewshot.heads import DEFAULT_HEADS, parse_head, parse_heads


def test_default_heads_parse_and_print_back():
    specs = parse_heads(list(DEFAULT_HEADS))
    assert [str(s) for s in specs] == list(DEFAULT_HEADS)
    deep = specs[-1]
    assert deep.hidden == (("sigmoid", 64), ("sigmoid", 64))
    assert deep.layer_dims(784) == [(784, 64), (64, 64), (64, 10)]
    assert specs[0].hidden == () and specs[0].layer_dims(64) == [(64, 10)]


@pytest.mark.parametrize(
    "spec",
    [
        "( GELU , 16 )->(softmax,10)",
        "(tanh,8)->(elu,8)->(softmax,10)",
        "(leaky_relu,4)->(softmax,10)",
        "(silu,3)->(softplus,3)->(identity,5)->(softmax,10)",
    ],
)
def test_any_common_activation_is_accepted(spec):
    parsed = parse_head(spec)
    assert parsed.num_classes == 10 and len(parsed.hidden) >= 1


@pytest.mark.parametrize(
    "spec, complaint",
    [
        ("(relu,32)", "last layer must be (softmax,10)"),
        ("(relu,32)->(softmax,5)", "5 units but there are 10 classes"),
        ("(swishy,32)->(softmax,10)", "unknown activation 'swishy'"),
        ("(relu,thirty)->(softmax,10)", "not a whole number"),
        ("(relu,0)->(softmax,10)", "must be at least 1"),
        ("relu,32->(softmax,10)", "is not (activation,width)"),
        ("(softmax,10)->(softmax,10)", "softmax may only be the last layer"),
        ("", "empty head spec"),
    ],
)
def test_bad_specs_say_what_is_wrong_and_the_notation(spec, complaint):
    with pytest.raises(ZspaceError) as caught:
        parse_head(spec)
    message = str(caught.value)
    assert complaint in message
    assert "(activation,width)" in message and "\n" not in message


def test_draws_are_reproducible_and_balanced_on_request():
    labels = torch.arange(1000) % 10
    first = draw_labelled(labels, count=50, seed=3, draw=2)
    assert torch.equal(first, draw_labelled(labels, count=50, seed=3, draw=2))
    assert not torch.equal(first, draw_labelled(labels, count=50, seed=3, draw=3))
    assert len(set(first.tolist())) == 50
    balanced = draw_labelled(labels, per_class=5, seed=0)
    assert torch.bincount(labels[balanced], minlength=10).tolist() == [5] * 10
    many = draw_many(labels, 4, count=20, seed=3)
    assert many.shape == (4, 20) and torch.equal(
        many[2], draw_labelled(labels, count=20, seed=3, draw=2)
    )
    with pytest.raises(ZspaceError):
        draw_labelled(labels, per_class=200)


def test_batched_training_equals_training_each_head_alone():
    torch.manual_seed(0)
    spec = parse_head("(sigmoid,16)->(tanh,8)->(softmax,10)")
    inputs = torch.randn(5, 30, 12)
    labels = torch.randint(0, 10, (5, 30))
    seeds = [11, 12, 13, 14, 15]
    training = HeadTraining(steps=60, learning_rate=0.01, weight_decay=1e-3)
    heads = train_heads(spec, inputs, labels, seeds, training)
    test_inputs = torch.randn(40, 12)
    batched_logits = heads.logits(test_inputs)  # shared-input path
    assert torch.allclose(
        batched_logits[1], heads.logits(test_inputs.expand(5, 40, 12))[1], atol=1e-5
    )
    for index in (0, 3):
        alone = HeadModule(spec, 12).load_initial_weights(
            initial_head_weights(spec, 12, seeds[index])
        )
        optimizer = torch.optim.Adam(alone.parameters(), lr=0.01, weight_decay=1e-3)
        for _ in range(training.steps):
            loss = F.cross_entropy(alone(inputs[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            expected = alone(test_inputs)
        assert torch.allclose(batched_logits[index], expected, atol=1e-4), index
        # and training moved the head away from its start
        start = HeadModule(spec, 12).load_initial_weights(
            initial_head_weights(spec, 12, seeds[index])
        )
        with torch.no_grad():
            assert not torch.allclose(start(test_inputs), expected, atol=1e-2)
