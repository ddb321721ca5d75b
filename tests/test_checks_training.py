"""The chapter 07 checks pass bertmini's schedule and a correct training step, and name each
typical mistake."""

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertmini.checks import CheckFailed
from bertmini.checks.training import (
    check_lr_schedule,
    check_sparse_mlm_loss,
    check_training_step,
    reference_sparse_mlm_loss,
    reference_training_step,
)
from bertmini.train import linear_warmup_decay, loss_weights, weighted_loss

# ---------------------------------------------------------------------------------------------
# The learning-rate schedule
# ---------------------------------------------------------------------------------------------


def student_schedule(step, warmup_steps, total_steps):
    """A correct answer written differently from bertmini's."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = total_steps - step
    return remaining / (total_steps - warmup_steps)


def test_schedule_passes_the_reference_and_a_student_version(capsys):
    check_lr_schedule(student_schedule)
    assert capsys.readouterr().out.count("✅ lr_multiplier: correct") == 1
    with pytest.raises(CheckFailed, match="bertmini's own linear_warmup_decay, which refuses"):
        check_lr_schedule(linear_warmup_decay)


def _warmup(rule):
    """A schedule with the right decay and the given warmup rule."""

    def schedule(step, warmup, total):
        if step < warmup:
            return rule(step, warmup)
        return (total - step) / (total - warmup)

    return schedule


def _decay(rule):
    """A schedule with the right warmup and the given decay rule."""

    def schedule(step, warmup, total):
        if step < warmup:
            return (step + 1) / warmup
        return rule(step, warmup, total)

    return schedule


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (_warmup(lambda s, w: s / w), "step 0 gets a learning rate of 0"),
        (_decay(lambda s, w, t: (t - 1 - s) / (t - 1 - w)), "the last step"),
        (_decay(lambda s, w, t: max(0.0, (t - 1 - s) / (t - w))), "one step early"),
        (_decay(lambda s, w, t: 1.0), "stays at its peak"),
        (lambda s, w, t: (t - s) / t, "there is no warmup"),
        (_decay(lambda s, w, t: (t - s) / t), "divide by the length of the decay"),
        (
            _decay(lambda s, w, t: 0.5 * (1 + math.cos(math.pi * (s - w) / (t - w)))),
            "cosine",
        ),
        (_warmup(lambda s, w: ((s + 1) / w) ** 2), "rise linearly"),
        (_warmup(lambda s, w: (s + 1) // w), "integer division"),
    ],
)
def test_schedule_names_the_mistake(wrong, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        check_lr_schedule(wrong)


def test_schedule_division_by_zero_without_warmup_is_explained():
    def schedule(step, warmup, total):  # fine with a warmup, divides by zero without one
        return min((step + 1) / warmup, (total - step) / (total - warmup))

    with pytest.raises(CheckFailed, match="warmup_steps=0"):
        check_lr_schedule(schedule)


def test_schedule_unknown_mistake_shows_the_first_wrong_step():
    with pytest.raises(CheckFailed, match=r"step \d+ should get"):
        check_lr_schedule(lambda s, w, t: 0.5)


def test_schedule_rejects_a_non_number():
    with pytest.raises(CheckFailed, match="expected a number"):
        check_lr_schedule(lambda s, w, t: "fast")


def test_schedule_lets_not_implemented_through():
    def unsolved(step, warmup, total):
        raise NotImplementedError("exercise")

    with pytest.raises(NotImplementedError):
        check_lr_schedule(unsolved)


# ---------------------------------------------------------------------------------------------
# The training step, with gradient accumulation and the schedule
# ---------------------------------------------------------------------------------------------


def student_step(model, micro_batches, optimizer, scheduler, max_grad_norm):
    """A correct answer written differently from the reference: counts the step's labelled
    tokens and examples itself, weights mlm_loss and nsp_loss separately, zeroes first."""
    model.train()
    optimizer.zero_grad()
    tokens = sum(int((b["labels"] != -100).sum()) for b in micro_batches)
    examples = sum(len(b["next_sentence_label"]) for b in micro_batches)
    total = 0.0
    for batch in micro_batches:
        out = model(**batch)
        share = (batch["labels"] != -100).sum() / tokens
        loss = out.mlm_loss * share + out.nsp_loss * len(batch["next_sentence_label"]) / examples
        loss.backward()
        total += loss.item()
    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return total


def test_training_step_passes_the_reference_and_a_student_version(capsys):
    check_training_step(reference_training_step)
    check_training_step(student_step)
    assert capsys.readouterr().out.count("✅ training_step: correct") == 2


def test_training_step_check_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    check_training_step(reference_training_step)
    assert torch.equal(torch.get_rng_state(), before)


def make_step(no_grad=False, as_tensor=False, own_optimizer=False, order="backward-step"):
    """The training step as a student might write it, with one choice made (the mistakes the
    check's own list does not hold; tests/test_checks_mistakes.py feeds that list)."""

    def step(model, micro_batches, optimizer, scheduler, max_grad_norm):
        if own_optimizer:  # ignores the optimizer it is given
            optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        model.train()
        total = 0.0
        for batch, weights in zip(micro_batches, loss_weights(micro_batches), strict=True):
            with torch.no_grad() if no_grad else contextlib.nullcontext():
                out = model(**batch)
            loss = weighted_loss(out, weights)
            if order == "step-first":
                optimizer.step()
            loss.backward()
            total = total + (loss if as_tensor else loss.item())
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        if order == "zero-first":
            optimizer.zero_grad()
        if order == "sgd-by-hand":  # right for SGD only
            with torch.no_grad():
                for p in model.parameters():
                    p -= optimizer.param_groups[0]["lr"] * p.grad
        elif order != "step-first":
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        return total

    return step


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (make_step(no_grad=True), "no_grad"),
        (make_step(order="step-first"), "between a forward pass and its backward"),
        (make_step(order="zero-first"), "did not change"),
        (make_step(as_tensor=True), "Python float"),
        (make_step(own_optimizer=True), "step the optimizer you are given"),
        (make_step(order="sgd-by-hand"), "with AdamW"),
    ],
)
def test_training_step_names_the_mistake(wrong, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        check_training_step(wrong)


def test_training_step_unknown_mistake_is_still_caught():
    def halved(model, micro_batches, optimizer, scheduler, max_grad_norm):
        return reference_training_step(
            model, micro_batches, optimizer, scheduler, max_grad_norm / 2
        )

    with pytest.raises(
        CheckFailed, match=r"after step 1 \(with clipping\) differs by up to .*\n   expected row"
    ):
        check_training_step(halved)


def test_training_step_lets_not_implemented_through():
    def unsolved(model, micro_batches, optimizer, scheduler, max_grad_norm):
        raise NotImplementedError("exercise")

    with pytest.raises(NotImplementedError):
        check_training_step(unsolved)


# ---------------------------------------------------------------------------------------------
# The sparse MLM loss
# ---------------------------------------------------------------------------------------------


def student_mlm_loss(rows="labelled", reduction="mean", bias=True, gelu=True):
    """The sparse MLM loss as a student would write it, with one choice made."""

    def sparse_mlm_loss(last_hidden_state, labels, head):
        if rows == "labelled":
            labelled = labels != -100
            hidden, targets = last_hidden_state[labelled], labels[labelled]
        else:  # every position: the head's work is ~1/0.15 times larger
            hidden, targets = last_hidden_state.flatten(0, 1), labels.flatten()
        h = head.transform(hidden)
        h = head.norm(F.gelu(h) if gelu else h)
        logits = h @ head.decoder_weight.T + (head.bias if bias else 0)
        log_probs = logits.log_softmax(dim=-1)
        real = targets != -100
        picked = log_probs[real].gather(1, targets[real][:, None]).squeeze(1)
        return {"mean": -picked.mean(), "sum": -picked.sum()}[reduction]

    return sparse_mlm_loss


def test_sparse_mlm_loss_passes_a_student_version(capsys):
    check_sparse_mlm_loss(student_mlm_loss())
    assert capsys.readouterr().out.count("✅ sparse_mlm_loss: correct") == 1


def test_sparse_mlm_loss_refuses_bertminis_head():
    def via_head(last_hidden_state, labels, head):
        labelled = labels != -100
        log_probs = head(last_hidden_state[labelled]).log_softmax(-1)
        return -log_probs.gather(1, labels[labelled][:, None]).mean()

    with pytest.raises(CheckFailed, match="bertmini's own MaskedLMHead, which refuses"):
        check_sparse_mlm_loss(via_head)


@pytest.mark.parametrize(
    "shortcut",
    [
        lambda logits, targets: F.cross_entropy(logits, targets),
        lambda logits, targets: nn.CrossEntropyLoss()(logits, targets),
        lambda logits, targets: F.nll_loss(logits.log_softmax(-1), targets),
    ],
    ids=["F.cross_entropy", "nn.CrossEntropyLoss", "F.nll_loss"],
)
def test_sparse_mlm_loss_refuses_pytorchs_cross_entropy(shortcut):
    """The exercise writes the cross-entropy: PyTorch's refuses inside the check only."""

    def with_shortcut(last_hidden_state, labels, head):
        labelled = labels != -100
        h = head.norm(F.gelu(head.transform(last_hidden_state[labelled])))
        return shortcut(h @ head.decoder_weight.T + head.bias, labels[labelled])

    with pytest.raises(CheckFailed, match="PyTorch's own cross_entropy, which refuses"):
        check_sparse_mlm_loss(with_shortcut)
    logits, targets = torch.randn(3, 5), torch.tensor([0, 4, 2])  # and works again afterwards
    torch.testing.assert_close(shortcut(logits, targets), F.cross_entropy(logits, targets))


def test_sparse_mlm_loss_refuses_the_reference_which_calls_cross_entropy():
    with pytest.raises(CheckFailed, match="PyTorch's own cross_entropy, which refuses"):
        check_sparse_mlm_loss(reference_sparse_mlm_loss)


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_mlm_loss(rows="all"), "the head ran on 40 positions, but only"),
        (student_mlm_loss(reduction="sum"), "summed"),
        (student_mlm_loss(bias=False), "bias is missing"),
        (student_mlm_loss(gelu=False), "GELU is missing"),
        (lambda h, y, head: student_mlm_loss()(h, y, head).detach(), "no gradient"),
        (lambda h, y, head: student_mlm_loss()(h, y, head).item(), "0-d tensor"),
    ],
)
def test_sparse_mlm_loss_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_sparse_mlm_loss(wrong)


def test_sparse_mlm_loss_label_minus_100_as_an_index_is_explained():
    def unselected(last_hidden_state, labels, head):
        h = head.norm(F.gelu(head.transform(last_hidden_state)))
        log_probs = (h @ head.decoder_weight.T + head.bias).log_softmax(-1)
        return -log_probs.gather(-1, labels[..., None]).mean()

    with pytest.raises(CheckFailed, match="the label -100 reached the loss"):
        check_sparse_mlm_loss(unselected)


def test_training_step_refuses_bertminis_training_step():
    from bertmini.train import training_step

    def via_bertmini(model, micro_batches, optimizer, scheduler, max_grad_norm):
        model.train()
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        metrics = training_step(model, micro_batches, optimizer, scaler, "fp32", max_grad_norm)
        scheduler.step()
        return float(metrics["loss"])

    with pytest.raises(CheckFailed, match="bertmini's own training_step, which refuses"):
        check_training_step(via_bertmini)
