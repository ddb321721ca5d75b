"""The chapter 09 checks pass correct answers (the reference and other correct ways to write
them), name each typical mistake, and let an unsolved exercise's NotImplementedError through."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertmini.checks import CheckFailed
from bertmini.checks.analysis import (
    check_attention_entropy,
    check_probe,
    make_entropy_inputs,
    reference_attention_entropy,
    reference_train_probe,
)


def stub(*args, **kwargs):
    raise NotImplementedError("exercise: replace this line with your code")


# --- attention entropy -------------------------------------------------------------------------


def student_entropy(
    log=torch.log, clamp=True, query_axis=False, reduce="mean", pad_queries=False, sign=-1
):
    """Attention entropy as a student would write it, with one choice made (right or wrong)."""

    def attention_entropy(weights, attention_mask):
        logp = log(weights.clamp_min(1e-12)) if clamp else log(weights)
        entropy = sign * (weights * logp).sum(dim=-2 if query_axis else -1)  # (b, h, q)
        real = torch.ones_like(attention_mask) if pad_queries else attention_mask
        real = real[:, None, :].float()
        if reduce == "mean":
            return (entropy * real).sum(dim=(0, 2)) / real.sum(dim=(0, 2))
        if reduce == "sum":
            return (entropy * real).sum(dim=(0, 2))
        if reduce == "per-sentence":
            return ((entropy * real).sum(dim=2) / real.sum(dim=2)).mean(dim=0)
        if reduce == "no-batch-mean":
            return (entropy * real).sum(dim=2) / real.sum(dim=2)  # (batch, heads)
        raise ValueError(reduce)

    return attention_entropy


def test_entropy_inputs_are_like_a_padded_bert_batch():
    weights, mask = make_entropy_inputs(torch.Generator().manual_seed(0))
    assert not torch.isnan(weights).any()
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:3]))
    padded_keys = ~mask.bool()[:, None, None, :].expand_as(weights)
    assert padded_keys.any() and (weights[padded_keys] == 0).all()
    assert (weights[:, -1].max(dim=-1).values == 1).all()  # the one-hot head
    entropy = reference_attention_entropy(weights, mask)
    assert entropy[-1] == 0 and (entropy[:-1] > 0).all()
    assert (entropy <= math.log(weights.shape[-1])).all()


def test_entropy_of_uniform_rows_is_log_n():
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    weights = mask[:, None, None, :].float().expand(2, 3, 4, 4)
    weights = weights / weights.sum(-1, keepdim=True)
    # 4 real queries with log 4, 2 real queries with log 2: the mean over the 6 real queries
    expected = (4 * math.log(4) + 2 * math.log(2)) / 6
    torch.testing.assert_close(
        reference_attention_entropy(weights, mask), torch.full((3,), expected)
    )


def test_entropy_correct_answers_pass(capsys):
    check_attention_entropy(reference_attention_entropy)
    check_attention_entropy(student_entropy())
    check_attention_entropy(
        lambda w, m: (-torch.special.xlogy(w, w).sum(-1) * m[:, None, :]).sum((0, 2)) / m.sum()
    )
    assert capsys.readouterr().out.count("✅") == 3


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_entropy(log=torch.log2), "bits"),
        (student_entropy(clamp=False), "NaN"),
        (student_entropy(pad_queries=True), "padding included"),
        (student_entropy(query_axis=True), "query axis"),
        # the same total as padding included: sum_{q,k} -p log p does not depend on the order
        (student_entropy(query_axis=True, pad_queries=True), "padding included"),
        (student_entropy(reduce="sum"), "summed the entropies over the queries"),
        (student_entropy(reduce="per-sentence"), "each sentence first"),
        (student_entropy(reduce="no-batch-mean"), "average over the batch too"),
        (student_entropy(sign=1), "negative"),
    ],
)
def test_entropy_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_attention_entropy(wrong)


def test_entropy_in_place_change_is_named():
    def in_place(weights, attention_mask):
        weights.clamp_(min=1e-12)
        return reference_attention_entropy(weights, attention_mask)

    with pytest.raises(CheckFailed, match="in place"):
        check_attention_entropy(in_place)


def test_entropy_stub_raises_not_implemented():
    with pytest.raises(NotImplementedError):
        check_attention_entropy(stub)


# --- probing classifier --------------------------------------------------------------------------


def student_probe(
    detach=True,
    fit_on="train",
    score_on="test",
    num_classes=None,
    optimizer="adam",
    count=False,
    step=True,
    zero_grad=True,
):
    """A probe as a student would write it, with one choice made (right or wrong)."""

    def train_probe(features_train, labels_train, features_test, labels_test, steps, lr):
        if detach:
            features_train, features_test = features_train.detach(), features_test.detach()
        x, y = {
            "train": (features_train, labels_train),
            "test": (features_test, labels_test),
            "both": (
                torch.cat([features_train, features_test]),
                torch.cat([labels_train, labels_test]),
            ),
        }[fit_on]
        classes = num_classes or int(labels_train.max()) + 1
        probe = nn.Linear(x.shape[1], classes)
        if optimizer == "adam":
            opt = torch.optim.Adam(probe.parameters(), lr=lr)
        else:
            opt = torch.optim.SGD(probe.parameters(), lr=lr)
        for _ in range(steps):
            loss = F.cross_entropy(probe(x), y)
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            if step:
                opt.step()
        sx, sy = (features_test, labels_test) if score_on == "test" else (x, y)
        with torch.no_grad():
            right = (probe(sx).argmax(-1) == sy).float()
        return right.sum().item() if count else right.mean()  # a 0-dim tensor is fine too

    return train_probe


def test_probe_correct_answers_pass(capsys):
    check_probe(reference_train_probe)
    check_probe(student_probe())
    check_probe(student_probe(optimizer="sgd"))
    out = capsys.readouterr().out
    assert out.count("✅") == 3


def test_probe_check_is_deterministic_and_leaves_the_rng_alone(capsys):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    check_probe(reference_train_probe)
    check_probe(reference_train_probe)
    assert torch.equal(torch.rand(3), expected)
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first == second


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_probe(detach=False), "detach"),
        (student_probe(score_on="train"), "measured the accuracy on the training set"),
        (student_probe(fit_on="test"), "trained on the test set"),
        (student_probe(fit_on="both"), "training and test points together"),
        (student_probe(num_classes=2), "one output per class"),
        (student_probe(count=True), "fraction"),
        (student_probe(step=False), "did not learn"),
        (student_probe(zero_grad=False), "gradients accumulate across steps"),
        (student_probe(zero_grad=False, optimizer="sgd"), "optimizer.zero_grad\\(\\)"),
    ],
)
def test_probe_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_probe(wrong)


def test_probe_in_place_change_is_named():
    def standardise_in_place(features_train, labels_train, features_test, labels_test, steps, lr):
        with torch.no_grad():
            features_train.sub_(features_train.mean(0))
        return reference_train_probe(
            features_train, labels_train, features_test, labels_test, steps, lr
        )

    with pytest.raises(CheckFailed, match="in place"):
        check_probe(standardise_in_place)


def test_probe_stub_raises_not_implemented():
    with pytest.raises(NotImplementedError):
        check_probe(stub)
