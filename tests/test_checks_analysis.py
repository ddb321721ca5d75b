"""The chapter 09 checks pass correct answers (the reference and other correct ways to write
them), name each typical mistake, and let an unsolved exercise's NotImplementedError through."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertmini.checks import CheckFailed
from bertmini.checks.analysis import (
    ROLES,
    check_attention_entropy,
    check_head_roles,
    check_probe,
    make_entropy_inputs,
    make_roles_inputs,
    reference_attention_entropy,
    reference_head_roles,
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


# --- heads with a role -------------------------------------------------------------------------


def student_roles(attentions, batch, tokenizer):
    """A correct answer written differently: a loop over layers, diagonals by torch.diagonal."""
    real = batch["attention_mask"].bool()  # (batch, seq)
    ids = batch["input_ids"]
    per_layer = {role: [] for role in ROLES}
    for weights in attentions:  # (batch, heads, q, k)
        for role, token in (("[CLS]", tokenizer.cls_token_id), ("[SEP]", tokenizer.sep_token_id)):
            keys = ((ids == token) & real)[:, None, None, :].float()  # (batch, 1, 1, k)
            valid = real & (keys.squeeze(1).squeeze(1).sum(-1, keepdim=True) > 0)  # (b, q)
            mass = (weights * keys).sum(-1)  # (batch, heads, q)
            per_layer[role].append((mass * valid[:, None]).sum((0, 2)) / valid.sum())
        for role, offset in (("previous", -1), ("next", 1)):
            mass = torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1)  # (b, h, seq - 1)
            queries = real[:, 1:] if offset == -1 else real[:, :-1]
            keys = real[:, :-1] if offset == -1 else real[:, 1:]
            valid = (queries & keys)[:, None].float()
            per_layer[role].append((mass * valid).sum((0, 2)) / valid[:, 0].sum())
    return {role: torch.stack(values) for role, values in per_layer.items()}


def test_roles_inputs_are_like_a_padded_bert_batch():
    attentions, batch, tokenizer = make_roles_inputs(torch.Generator().manual_seed(0))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    assert ((ids == tokenizer.sep_token_id).sum(1) == 2).all() and (mask == 0).any()
    for weights in attentions:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:3]))
        assert (weights * (1 - mask)[:, None, None, :] == 0).all()  # padded keys get nothing
    roles = reference_head_roles(attentions, batch, tokenizer)
    assert roles["previous"][:, 0].min() > 0.5 and roles["[SEP]"][:, -1].min() > 0.5


def test_roles_of_a_previous_token_head_and_a_uniform_head():
    """One previous-token head scores 1 on 'previous'; a uniform head 1/n on every single key."""
    seq = 5
    batch = {"input_ids": torch.tensor([[2, 7, 3, 8, 3]]), "attention_mask": torch.ones(1, seq)}
    previous = torch.eye(seq).roll(-1, dims=1)  # row i on key i - 1 (row 0 on the last key)
    previous[0] = torch.eye(seq)[0]  # [CLS] reads itself
    uniform = torch.full((seq, seq), 1 / seq)
    weights = torch.stack([previous, uniform])[None]  # (1, 2 heads, q, k)
    tokenizer = SimpleNamespace(cls_token_id=2, sep_token_id=3)
    roles = reference_head_roles((weights,), batch, tokenizer)
    torch.testing.assert_close(roles["previous"], torch.tensor([[1.0, 1 / seq]]))
    torch.testing.assert_close(roles["[SEP]"][0, 1], torch.tensor(2 / seq))  # two [SEP]
    torch.testing.assert_close(roles["next"][0, 0], torch.tensor(0.0))


def test_roles_correct_answers_pass(capsys):
    check_head_roles(reference_head_roles)
    check_head_roles(student_roles)
    assert capsys.readouterr().out.count("✅ head_roles: correct") == 2


def test_roles_wrong_return_types_are_named():
    with pytest.raises(CheckFailed, match="return a dict with the keys"):
        check_head_roles(lambda a, b, t: [reference_head_roles(a, b, t)[r] for r in ROLES])
    with pytest.raises(CheckFailed, match="one score per \\(layer, head\\)"):
        check_head_roles(lambda a, b, t: {r: v.T for r, v in reference_head_roles(a, b, t).items()})


def test_roles_unknown_mistake_shows_the_largest_difference():
    def doubled_cls(attentions, batch, tokenizer):
        roles = reference_head_roles(attentions, batch, tokenizer)
        return {**roles, "[CLS]": roles["[CLS]"] * 2}

    with pytest.raises(CheckFailed, match="your '\\[CLS\\]' scores differs by up to") as failure:
        check_head_roles(doubled_cls)
    assert "expected row" in str(failure.value)


def test_roles_in_place_change_is_named():
    def in_place(attentions, batch, tokenizer):
        attentions[0].mul_(1.0 + 1e-3)
        return reference_head_roles(attentions, batch, tokenizer)

    with pytest.raises(CheckFailed, match="in place"):
        check_head_roles(in_place)


def test_roles_stub_raises_not_implemented():
    with pytest.raises(NotImplementedError):
        check_head_roles(stub)


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
