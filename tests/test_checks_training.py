"""The chapter 07 checks pass bertmini's schedule and a correct training step, and name each
typical mistake."""

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
from bertmini.train import linear_warmup_decay

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
# The training step
# ---------------------------------------------------------------------------------------------


def student_step(model, batch, optimizer, max_grad_norm):
    """A correct answer: zeroes the gradients first instead of last."""
    model.train()
    optimizer.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def test_training_step_passes_the_reference_and_a_student_version(capsys):
    check_training_step(reference_training_step)
    check_training_step(student_step)
    assert capsys.readouterr().out.count("✅ training_step: correct") == 2


def test_training_step_check_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    check_training_step(reference_training_step)
    assert torch.equal(torch.get_rng_state(), before)


def make_step(
    train_mode=True,
    no_grad=False,
    loss="loss",
    clip="global",
    max_norm=None,
    zero_grad=True,
    order="backward-step",
    as_tensor=False,
    own_optimizer=False,
):
    """The training step as a student might write it, with one choice made."""

    def step(model, batch, optimizer, max_grad_norm):
        if own_optimizer:  # ignores the optimizer it is given
            optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        if train_mode:
            model.train()
        if no_grad:
            with torch.no_grad():
                out = model(**batch)
        else:
            out = model(**batch)
        threshold = max_grad_norm if max_norm is None else max_norm
        if order == "step-first":
            optimizer.step()
            getattr(out, loss).backward()
            nn.utils.clip_grad_norm_(model.parameters(), threshold)
        else:
            getattr(out, loss).backward()
            if order == "zero-first":
                optimizer.zero_grad()
            if clip == "global":
                nn.utils.clip_grad_norm_(model.parameters(), threshold)
            elif clip == "value":
                nn.utils.clip_grad_value_(model.parameters(), threshold)
            elif clip == "each":
                for parameter in model.parameters():
                    nn.utils.clip_grad_norm_(parameter, threshold)
            optimizer.step()
            if clip == "after":
                nn.utils.clip_grad_norm_(model.parameters(), threshold)
        if zero_grad:
            optimizer.zero_grad()
        return out.loss if as_tensor else out.loss.item()

    return step


@pytest.mark.parametrize(
    "wrong, phrase",
    [
        (make_step(train_mode=False), r"model\.train\(\)"),
        (make_step(no_grad=True), "no_grad"),
        (make_step(loss="mlm_loss"), "only the MLM loss"),
        (make_step(clip="none"), "not clipped"),
        (make_step(clip="after"), "not clipped"),
        (make_step(clip="value"), "clip_grad_value_"),
        (make_step(clip="each"), "each parameter"),
        (make_step(max_norm=1.0), "max_grad_norm argument"),
        (make_step(zero_grad=False), "never zeroed"),
        (make_step(order="step-first"), "did not change"),
        (make_step(order="zero-first"), "did not change"),
        (make_step(as_tensor=True), "Python float"),
        (make_step(own_optimizer=True), "with AdamW"),
    ],
)
def test_training_step_names_the_mistake(wrong, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        check_training_step(wrong)


def test_training_step_unknown_mistake_is_still_caught():
    def halved(model, batch, optimizer, max_grad_norm):
        return reference_training_step(model, batch, optimizer, max_grad_norm / 2)

    with pytest.raises(CheckFailed, match="differ from the reference"):
        check_training_step(halved)


def test_training_step_lets_not_implemented_through():
    def unsolved(model, batch, optimizer, max_grad_norm):
        raise NotImplementedError("exercise")

    with pytest.raises(NotImplementedError):
        check_training_step(unsolved)


# ---------------------------------------------------------------------------------------------
# The sparse MLM loss
# ---------------------------------------------------------------------------------------------


def student_mlm_loss(rows="labelled", ignore=True, reduction="mean", bias=True, gelu=True):
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
        if not ignore:
            return F.cross_entropy(logits, targets, ignore_index=12345)
        loss = F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum")
        return {"mean": loss / (targets != -100).sum(), "sum": loss}[reduction]

    return sparse_mlm_loss


def test_sparse_mlm_loss_passes_a_student_version(capsys):
    check_sparse_mlm_loss(student_mlm_loss())
    check_sparse_mlm_loss(reference_sparse_mlm_loss)
    assert capsys.readouterr().out.count("✅ sparse_mlm_loss: correct") == 2


def test_sparse_mlm_loss_refuses_bertminis_head():
    def via_head(last_hidden_state, labels, head):
        labelled = labels != -100
        return F.cross_entropy(head(last_hidden_state[labelled]), labels[labelled])

    with pytest.raises(CheckFailed, match="bertmini's own MaskedLMHead, which refuses"):
        check_sparse_mlm_loss(via_head)


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_mlm_loss(rows="all"), "the head ran on 40 positions, but only"),
        (student_mlm_loss(rows="all", ignore=False), "met the label -100"),
        (student_mlm_loss(reduction="sum"), "summed"),
        (student_mlm_loss(bias=False), "bias is missing"),
        (student_mlm_loss(gelu=False), "GELU is missing"),
        (lambda h, y, head: reference_sparse_mlm_loss(h, y, head).detach(), "no gradient"),
        (lambda h, y, head: reference_sparse_mlm_loss(h, y, head).item(), "0-d tensor"),
    ],
)
def test_sparse_mlm_loss_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_sparse_mlm_loss(wrong)


def test_training_step_refuses_bertminis_training_step():
    from bertmini.train import training_step

    def via_bertmini(model, batch, optimizer, max_grad_norm):
        model.train()
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        return float(
            training_step(model, [batch], optimizer, scaler, "fp32", max_grad_norm)["loss"]
        )

    with pytest.raises(CheckFailed, match="bertmini's own training_step, which refuses"):
        check_training_step(via_bertmini)
