"""Checks for chapter 07: the learning-rate schedule, the training step, the sparse MLM loss.

    check_lr_schedule(lr_multiplier)
        # (step, warmup_steps, total_steps) -> float, the multiplier of the peak learning rate
    check_training_step(training_step)
        # (model, micro_batches, optimizer, scheduler, max_grad_norm) -> float, the step's loss
    check_sparse_mlm_loss(sparse_mlm_loss)
        # (last_hidden_state (batch, seq, hidden), labels (batch, seq), head: MaskedLMHead)
        #  -> loss, a 0-d tensor: the head, the tied decoder and a written-out cross-entropy
        #     on the labelled positions only

`check_lr_schedule` compares the student's schedule with `bertmini.train.linear_warmup_decay`
at every step of a few (warmup, total) settings, no warmup included. Mistakes it names: step 0
at a learning rate of 0 (warmup off by one), no warmup, no decay, a decay that reaches 0 at the
last step instead of just after it, a decay divided by the total length instead of the length
of the decay, a cosine decay, a warmup that is not linear, integer division.

`check_training_step` builds identical tiny BERTs (dropout on, handed over in eval mode) and
runs two steps of the student's function and of the reference, each over two micro-batches of
different sizes, with the same batches and dropout masks and a schedule that halves the
learning rate at every step; it compares the returned losses and the weights after each step,
once with clipping active and once with it inactive (where the size of the accumulated
gradient shows). It uses plain SGD, whose update is the clipped gradient times the learning
rate, so every mistake changes the weights (Adam's update is nearly blind to a uniform
rescaling of the gradients); then AdamW, to see that the optimizer it is given does the update.
bertmini's own `training_step` refuses to run meanwhile. Mistakes it names: no `model.train()`,
the forward pass under `torch.no_grad()`, micro-batch losses summed, weighted equally or all by
examples (the MLM loss is a mean over labelled tokens), `zero_grad()` inside the loop,
`optimizer.step()` per micro-batch or between a forward pass and its backward, clipping inside
the loop, after the step, per parameter, by value or at a hard-coded threshold, the scheduler
stepped before the optimizer, never or per micro-batch, gradients never zeroed, weights never
updated, the last micro-batch's loss returned, a loss returned as a tensor, an update by hand.

`check_sparse_mlm_loss` compares the loss with the reference while bertmini's `MaskedLMHead` and
PyTorch's `F.cross_entropy`/`F.nll_loss` refuse to run (the student writes the transform, the
tied decoder and the cross-entropy), watches the head's transform (it must see only the
labelled rows), and runs one head whose logits reach 120. Mistakes it names: the head run on
every position (the same loss, six times the work), the label -100 used as an index, the mean
over all positions, a summed loss, a lost minus sign, the (n, n) matrix log_probs[:, targets],
logsumexp over the wrong axis, softmax before the log-softmax, log(softmax) that overflows or
underflows at large logits, the decoder's bias, the transform's dense layer, GELU or LayerNorm
missing, reordered or replaced, positions and labels selected in different orders, a loss cut
from the graph.
"""

import contextlib
import functools
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..guard import refuse_if_checked
from ..model import IGNORE_INDEX, BertConfig, BertForPreTraining, MaskedLMHead
from ..train import linear_warmup_decay, loss_weights, weighted_loss
from . import (
    CheckFailed,
    Mistake,
    call_student,
    compare,
    difference,
    fail,
    passed,
    tiny_config,
)

# ---------------------------------------------------------------------------------------------
# Exercise 1: the learning-rate schedule
# ---------------------------------------------------------------------------------------------

# (warmup_steps, total_steps): a typical run, short ones whose steps can be counted by hand,
# no warmup at all, and warmup over half of the run.
SCHEDULES = ((10, 100), (4, 12), (1, 5), (0, 8), (3, 6), (50, 1000))


def reference_lr_multiplier(step: int, warmup_steps: int, total_steps: int) -> float:
    """bertmini's schedule: `bertmini.train.linear_warmup_decay`."""
    return linear_warmup_decay(step, warmup_steps, total_steps)


def _decay_over_total(step, warmup, total):
    if step < warmup:
        return (step + 1) / warmup
    return (total - step) / total


def _cosine(step, warmup, total):
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _wrap(warmup_rule, decay_rule):
    def schedule(step, warmup, total):
        if step < warmup:
            return warmup_rule(step, warmup, total)
        return decay_rule(step, warmup, total)

    return schedule


_linear_warmup = _wrap(lambda s, w, t: (s + 1) / w, lambda s, w, t: 0.0)
_linear_decay = _wrap(lambda s, w, t: 0.0, lambda s, w, t: (t - s) / (t - w))

# (wrong schedule, advice), tried in this order; the first that matches the student's values
# at every checked step is named.
SCHEDULE_MISTAKES: tuple[tuple[Callable, str], ...] = (
    (
        _wrap(lambda s, w, t: s / w, lambda s, w, t: (t - s) / (t - w)),
        "step 0 gets a learning rate of 0, a wasted step: steps are 0-based, so the warmup "
        "multiplier is (step + 1) / warmup_steps (step warmup_steps - 1 then gets the full rate).",
    ),
    (
        _wrap(lambda s, w, t: (s + 1) / w, lambda s, w, t: (t - 1 - s) / (t - 1 - w)),
        "the last step (step total_steps - 1) gets a learning rate of 0, a wasted step: the "
        "decay should reach 0 just *after* the last step, (total_steps - step) / "
        "(total_steps - warmup_steps).",
    ),
    (
        _wrap(lambda s, w, t: (s + 1) / w, lambda s, w, t: (t - 1 - s) / (t - w)),
        "the decay is one step early: the last step gets 0. Use (total_steps - step) / "
        "(total_steps - warmup_steps), which is 1 at step warmup_steps and 0 only at step "
        "total_steps, just after the run.",
    ),
    (
        _wrap(lambda s, w, t: (s + 1) / w, lambda s, w, t: 1.0),
        "after the warmup your learning rate stays at its peak: it should then fall linearly "
        "to 0, (total_steps - step) / (total_steps - warmup_steps).",
    ),
    (
        lambda s, w, t: (t - s) / t,
        "there is no warmup: the first warmup_steps steps should rise linearly, "
        "(step + 1) / warmup_steps, before the decay starts.",
    ),
    (
        _decay_over_total,
        "after the warmup you divide by total_steps; divide by the length of the decay, "
        "total_steps - warmup_steps, so that the decay starts at 1 (the peak) and ends at 0.",
    ),
    (
        _cosine,
        "that is a cosine decay (a fine schedule, used by many later models), but this exercise "
        "asks for BERT's linear decay: (total_steps - step) / (total_steps - warmup_steps).",
    ),
    (
        _wrap(lambda s, w, t: ((s + 1) / w) ** 2, lambda s, w, t: (t - s) / (t - w)),
        "your warmup rises as a square: it should rise linearly, (step + 1) / warmup_steps.",
    ),
    (_linear_warmup, "your schedule is 0 after the warmup: it should decay linearly from 1 to 0."),
    (_linear_decay, "your schedule is 0 during the warmup: it should rise as (step + 1) / warmup."),
)


def _schedule_values(fn: Callable, warmup: int, total: int) -> list[float]:
    return [float(fn(step, warmup, total)) for step in range(total)]


def check_lr_schedule(lr_multiplier: Callable) -> None:
    """Check `lr_multiplier(step, warmup_steps, total_steps) -> float` against
    `bertmini.train.linear_warmup_decay` at every step 0 .. total_steps - 1."""
    name = "lr_multiplier"
    for warmup, total in SCHEDULES:
        expected = _schedule_values(reference_lr_multiplier, warmup, total)
        got = []
        for step in range(total):
            try:
                value = call_student(
                    f"{name}(step={step}, warmup_steps={warmup}, total_steps={total})",
                    lr_multiplier,
                    step,
                    warmup,
                    total,
                    refuse=["linear_warmup_decay"],
                )
            except CheckFailed as failure:
                if isinstance(failure.__cause__, ZeroDivisionError):
                    fail(
                        name,
                        f"division by zero at step={step}, warmup_steps={warmup}, "
                        f"total_steps={total}. With warmup_steps=0 there is no warmup: step 0 "
                        "already gets the full rate, (total_steps - step) / (total_steps - 0).",
                    )
                raise
            try:
                got.append(float(value))
            except (TypeError, ValueError):
                fail(name, f"expected a number, got {type(value).__name__} {value!r}")
        if all(abs(g - e) < 1e-9 for g, e in zip(got, expected, strict=True)):
            continue
        for wrong, advice in SCHEDULE_MISTAKES:
            try:
                candidate = _schedule_values(wrong, warmup, total)
            except ZeroDivisionError:
                continue
            if all(abs(g - c) < 1e-9 for g, c in zip(got, candidate, strict=True)):
                fail(name, advice)
        differing = [g for g, e in zip(got, expected, strict=True) if abs(g - e) >= 1e-9]
        if all(g == int(g) for g in differing):
            fail(
                name,
                "where your multipliers differ they are whole numbers: integer division (//) or "
                "int() rounds the fractions away. Use /.",
            )
        step = next(s for s in range(total) if abs(got[s] - expected[s]) >= 1e-9)
        fail(
            name,
            f"with warmup_steps={warmup}, total_steps={total}: step {step} should get "
            f"{expected[step]:.4g}, yours gives {got[step]:.4g}. Expected for steps "
            f"0..{total - 1}: {_preview(expected)}; yours: {_preview(got)}.",
        )
    passed(name, f"matches bertmini's schedule on {len(SCHEDULES)} (warmup, total) settings")


def _preview(values: list[float], limit: int = 8) -> str:
    shown = ", ".join(f"{v:.3g}" for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


# ---------------------------------------------------------------------------------------------
# Exercise 2: the training step, with gradient accumulation and the schedule
# ---------------------------------------------------------------------------------------------

VOCAB_SIZE = 60
# Below the tiny model's gradient norm (about 1.5) and its largest entries (about 0.25): both
# clip_grad_norm_ and the wrong clip_grad_value_ change the update.
MAX_GRAD_NORM = 0.1
NO_CLIP = 1e6  # far above it: the size of the accumulated gradient shows in the update
SGD_LR = 0.5
MICRO_BATCH_SIZES = (3, 5)  # micro-batches of different sizes and numbers of labelled tokens


def reference_training_step(
    model: nn.Module,
    micro_batches: list[dict],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
) -> float:
    """One optimizer step over several micro-batches (gradient accumulation); returns the
    step's loss before the update: the MLM loss averaged over all the step's labelled tokens
    plus the NSP loss averaged over all its examples (`bertmini.train.loss_weights`)."""
    model.train()
    step_loss = 0.0
    for batch, weights in zip(micro_batches, loss_weights(micro_batches), strict=True):
        loss = weighted_loss(model(**batch), weights)  # this micro-batch's share
        loss.backward()  # .grad += the gradient of that share
        step_loss += loss.item()
    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return step_loss


def _tiny_config() -> BertConfig:
    # Dropout on: a step without model.train() differs.
    return tiny_config(
        vocab_size=VOCAB_SIZE, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2
    )


def _make_batch(generator: torch.Generator, batch: int = 6, seq: int = 12) -> dict:
    """A padded pretraining batch of random ids: [CLS] ... [SEP] ... [SEP] [PAD]..."""
    input_ids = torch.randint(5, VOCAB_SIZE, (batch, seq), generator=generator)
    lengths = torch.randint(seq // 2, seq + 1, (batch,), generator=generator)
    positions = torch.arange(seq)[None, :]
    attention_mask = (positions < lengths[:, None]).long()
    input_ids[:, 0] = 2
    input_ids[positions == lengths[:, None] - 1] = 3
    input_ids[attention_mask == 0] = 0
    token_type_ids = ((positions >= lengths[:, None] // 2) & (attention_mask == 1)).long()
    chosen = (torch.rand(batch, seq, generator=generator) < 0.3) & (input_ids > 4)
    chosen[:, 1] = True  # at least one label per row
    labels = torch.where(chosen, input_ids, -100)
    masked = torch.where(chosen, torch.full_like(input_ids, 4), input_ids)
    return {
        "input_ids": masked,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "next_sentence_label": torch.randint(0, 2, (batch,), generator=generator),
    }


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=SGD_LR)


def _adamw(model):
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)


def _run(step_fn, make_optimizer, max_grad_norm: float, seed: int = 7, steps: int = 2):
    """`steps` steps of `step_fn` on a fresh tiny BERT, each over two micro-batches, with a
    schedule that halves the learning rate at every step. Returns (losses, weights after each
    step).

    Everything random is seeded here (weights, batches, dropout masks), so two functions that
    compute the same thing give the same numbers; the caller's random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # the check names a scheduler stepped too early: PyTorch's warning would repeat it
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(seed)
        model = BertForPreTraining(_tiny_config())
        model.eval()  # as a model often is after an evaluation: the step must switch it back
        optimizer = make_optimizer(model)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5**step)
        generator = torch.Generator().manual_seed(seed + 1)
        losses, weights = [], []
        for i in range(steps):
            micro_batches = [_make_batch(generator, size) for size in MICRO_BATCH_SIZES]
            torch.manual_seed(seed + 100 + i)  # the same dropout masks for every function
            losses.append(step_fn(model, micro_batches, optimizer, scheduler, max_grad_norm))
            weights.append([p.detach().clone() for p in model.parameters()])
    return losses, weights


def _trace(step_fn, make_optimizer=_sgd) -> tuple[list, list]:
    """Two steps with clipping active, then two where it is not (there the size of the
    accumulated gradient shows): (the four losses, the weights after each step)."""
    clipped, unclipped = (_run(step_fn, make_optimizer, norm) for norm in (MAX_GRAD_NORM, NO_CLIP))
    return clipped[0] + unclipped[0], clipped[1] + unclipped[1]


def _share(out, weights, n, weighting):
    """A micro-batch's loss as it is back-propagated, weighted one way or another."""
    if weighting == "tokens":  # right: MLM by labelled tokens, NSP by examples
        return weighted_loss(out, weights)
    if weighting == "equal":
        return out.loss / n
    if weighting == "examples":
        return out.loss * weights["examples"]
    return out.loss  # "summed"


def _clip(parameters, threshold, how):
    """Clip the gradients now, the way `how` says ("none", "each", "after-step": not here)."""
    parameters = list(parameters)
    if how == "global":
        nn.utils.clip_grad_norm_(parameters, threshold)
    elif how == "per-parameter":
        for p in parameters:
            nn.utils.clip_grad_norm_([p], threshold)
    elif how == "value":
        nn.utils.clip_grad_value_(parameters, threshold)


def _variant(**choices):
    """The training step with one choice made, right or wrong (the reference is the default):
    train_mode, weighting, clip, max_norm, zero, schedule, step_each, returned."""
    c = dict(train_mode=True, weighting="tokens", clip="global", max_norm=None, zero="end")
    c |= dict(schedule="after", step_each=False, returned="step") | choices

    def step(model, micro_batches, optimizer, scheduler, max_grad_norm):
        if c["train_mode"]:
            model.train()
        threshold = c["max_norm"] or max_grad_norm
        step_loss, last = _accumulate(model, micro_batches, optimizer, scheduler, threshold, c)
        _clip(model.parameters(), threshold, c["clip"])
        if c["schedule"] == "before":
            scheduler.step()
        if not c["step_each"]:
            optimizer.step()
        if c["schedule"] == "after":
            scheduler.step()
        if c["clip"] == "after-step":
            _clip(model.parameters(), threshold, "global")
        if c["zero"] == "end":
            optimizer.zero_grad()
        return step_loss if c["returned"] == "step" else last

    return step


def _accumulate(model, micro_batches, optimizer, scheduler, threshold, c) -> tuple[float, float]:
    """The loop over the micro-batches of `_variant`: (the step's loss, the last out.loss)."""
    step_loss, last = 0.0, 0.0
    for batch, weights in zip(micro_batches, loss_weights(micro_batches), strict=True):
        if c["zero"] == "each":
            optimizer.zero_grad()
        out = model(**batch)
        loss = _share(out, weights, len(micro_batches), c["weighting"])
        loss.backward()
        step_loss, last = step_loss + loss.item(), out.loss.item()
        if c["clip"] == "each":
            _clip(model.parameters(), threshold, "global")
        if c["step_each"]:
            optimizer.step()
        if c["schedule"] == "each":
            scheduler.step()
    return step_loss, last


STEP_MISTAKES: tuple[tuple[Callable, str], ...] = (
    (
        _variant(train_mode=False),
        "the model ran in eval mode (no dropout): call model.train() at the start of the step; "
        "the model may come from an evaluation that left it in eval mode.",
    ),
    (
        _variant(weighting="summed"),
        "you back-propagated each micro-batch's whole loss, so the accumulated gradient is the "
        "*sum* over the micro-batches, len(micro_batches) times too large. Back-propagate each "
        "micro-batch's share of the step's mean loss instead.",
    ),
    (
        _variant(weighting="equal"),
        "you weighted every micro-batch by 1 / len(micro_batches), but they hold different "
        "numbers of labelled tokens and examples. The step's MLM loss is the mean over *all* its "
        "labelled tokens: weight each micro-batch's mlm_loss by its share of them, and its "
        "nsp_loss by its share of the step's examples.",
    ),
    (
        _variant(weighting="examples"),
        "you weighted the whole loss by each micro-batch's share of the examples: that is right "
        "for nsp_loss (a mean over examples) but mlm_loss is a mean over labelled tokens, so "
        "weight it by the micro-batch's share of the step's labelled tokens.",
    ),
    (
        _variant(zero="each"),
        "optimizer.zero_grad() inside the loop erases the earlier micro-batches' gradients: "
        "only the last one's reach the update. Zero once per step, after optimizer.step().",
    ),
    (
        _variant(step_each=True),
        "optimizer.step() ran once per micro-batch: with accumulation the micro-batches' "
        "gradients add up in .grad and the optimizer steps once, after the loop.",
    ),
    (
        _variant(clip="each"),
        "you clipped inside the loop, a partial sum of the gradients: clip once, after all the "
        "micro-batches, just before optimizer.step().",
    ),
    (
        _variant(clip="none"),
        "the update was not clipped: call torch.nn.utils.clip_grad_norm_(model.parameters(), "
        "max_grad_norm) after the loop and before optimizer.step() (clipping after the step is "
        "too late: the update has already been made).",
    ),
    (
        _variant(clip="per-parameter"),
        "you clipped each parameter's gradient separately: clip the *global* norm, all "
        "gradients together, with one call clip_grad_norm_(model.parameters(), max_grad_norm).",
    ),
    (
        _variant(clip="value"),
        "clip_grad_value_ clips each number separately: clip the global norm with "
        "clip_grad_norm_(model.parameters(), max_grad_norm).",
    ),
    (
        _variant(max_norm=1.0),
        "the gradients were clipped to norm 1.0: use the max_grad_norm argument.",
    ),
    (
        _variant(schedule="before"),
        "scheduler.step() came before optimizer.step(), so the first update already used the "
        "second step's learning rate: step the optimizer, then the scheduler.",
    ),
    (
        _variant(schedule="never"),
        "the learning rate never changed: call scheduler.step() once per step, after "
        "optimizer.step() (and step the optimizer you are given: the scheduler drives it).",
    ),
    (
        _variant(schedule="each"),
        "scheduler.step() ran once per micro-batch: the schedule counts optimizer steps, so "
        "call it once per step, after optimizer.step().",
    ),
    (
        _variant(zero="never"),
        "the gradients were never zeroed, so the second step's gradients still contain the "
        "first step's (PyTorch *adds* to .grad): call optimizer.zero_grad() after "
        "optimizer.step().",
    ),
    (
        _variant(returned="last"),
        "the update is right, but you returned the last micro-batch's loss: return the step's "
        "loss, the sum of the micro-batches' weighted shares (each share's .item()).",
    ),
)


def _same(got: tuple[list, list], expected: tuple[list, list], atol: float = 1e-6) -> bool:
    return all(
        isinstance(x, float) and abs(x - y) < 1e-5 for x, y in zip(got[0], expected[0], strict=True)
    ) and all(
        torch.allclose(p, q, atol=atol, rtol=0)
        for wa, wb in zip(got[1], expected[1], strict=True)
        for p, q in zip(wa, wb, strict=True)
    )


def _student_trace(name, training_step, make_optimizer=_sgd) -> tuple[list[float], list]:
    """The student's trace; the losses must be Python numbers."""
    try:
        losses, weights = call_student(
            name, _trace, training_step, make_optimizer, refuse=["training_step"]
        )
    except CheckFailed as failure:
        error = failure.__cause__
        if isinstance(error, RuntimeError) and (
            "does not require grad" in str(error) or "inference tensor" in str(error)
        ):
            fail(
                name,
                "loss.backward() found no graph: the forward pass ran under torch.no_grad() "
                "(or torch.inference_mode()). Training needs the graph: run the forward pass "
                "normally (no_grad is for evaluation).",
            )
        if isinstance(error, RuntimeError) and "modified by an inplace operation" in str(error):
            fail(
                name,
                "backward() found weights changed since the forward pass: optimizer.step() ran "
                "between a forward pass and its backward(). Step once, after the loop over the "
                "micro-batches and the clipping.",
            )
        raise
    if any(isinstance(x, torch.Tensor) for x in losses):
        fail(
            name,
            "return the loss as a Python float (.item()): a tensor keeps its graph (and, on a "
            "GPU, its memory) alive.",
        )
    if not all(isinstance(x, (float, int)) and not isinstance(x, bool) for x in losses):
        fail(name, f"expected the loss as a float, got {type(losses[0]).__name__} {losses[0]!r}")
    return [float(x) for x in losses], weights


@functools.cache
def _mistake_trace(index: int) -> tuple[list, list]:
    """The trace of known mistake `index` (-1: a step that does nothing), computed once: the
    traces are seeded, so each is the same every time, and a diagnosis compares with many."""
    return _trace(STEP_MISTAKES[index][0] if index >= 0 else lambda *args: 0.0)


def _explain_step(name: str, got, expected) -> None:
    """Fail, naming the mistake that gives the student's numbers, or the first step that
    differs."""
    unchanged = _mistake_trace(-1)[1][0]
    if all(torch.equal(p, q) for w in got[1] for p, q in zip(w, unchanged, strict=True)):
        fail(
            name,
            "the weights did not change: optimizer.step() must come after loss.backward() "
            "(it uses the gradients backward() computes), and optimizer.zero_grad() after "
            "optimizer.step() (zeroing before the step leaves it nothing to do).",
        )
    for index, (_, advice) in enumerate(STEP_MISTAKES):
        if _same(got, _mistake_trace(index)):
            fail(name, advice)
    for i, (loss, expected_loss) in enumerate(zip(got[0], expected[0], strict=True)):
        when = f"step {i % 2 + 1} ({'with' if i < 2 else 'without'} clipping)"
        if abs(loss - expected_loss) >= 1e-5:
            fail(name, f"the returned loss at {when} is {loss:.5f}; expected {expected_loss:.5f}")
        parameter_names = [n for n, _ in BertForPreTraining(_tiny_config()).named_parameters()]
        for parameter, p, q in zip(parameter_names, got[1][i], expected[1][i], strict=True):
            gap = difference(p, q, 1e-6, f"{parameter} after {when}")
            if gap:
                fail(
                    name,
                    f"{gap}\n   Per micro-batch: forward, weighted loss, backward; then clip, "
                    "optimizer.step(), scheduler.step(), optimizer.zero_grad().",
                )


def check_training_step(training_step: Callable) -> None:
    """Check `training_step(model, micro_batches, optimizer, scheduler, max_grad_norm) -> float`
    (the step's loss before the update) against the reference: two steps of two micro-batches
    with clipping active and two without, with SGD, then with AdamW."""
    name = "training_step"
    got = _student_trace(name, training_step)
    expected = _trace(reference_training_step)
    if not _same(got, expected):
        _explain_step(name, got, expected)
    if not _same(
        _student_trace(name, training_step, _adamw), _trace(reference_training_step, _adamw)
    ):
        fail(
            name,
            "right with SGD but not with AdamW: update the weights with optimizer.step() (the "
            "optimizer you are given, whatever it is), not by hand, exactly once per step.",
        )
    passed(name, "same losses and weights as the reference over 4 SGD and 4 AdamW steps")


# ---------------------------------------------------------------------------------------------
# Exercise 3: the sparse MLM loss
# ---------------------------------------------------------------------------------------------

MLM_BATCH, MLM_SEQ = 4, 10


def reference_sparse_mlm_loss(
    last_hidden_state: torch.Tensor, labels: torch.Tensor, head: MaskedLMHead
) -> torch.Tensor:
    """The MLM loss computed only where there is a label, as BertForPreTraining does.

    last_hidden_state: (batch, seq, hidden); labels: (batch, seq), the original id at the chosen
    positions and -100 elsewhere; head: a MaskedLMHead (transform, norm, tied decoder_weight,
    bias). Returns the mean cross-entropy over the labelled positions (a 0-d tensor).
    """
    labelled = labels != IGNORE_INDEX  # (batch, seq) bool
    hidden = last_hidden_state[labelled]  # (labelled, hidden)
    transformed = head.norm(F.gelu(head.transform(hidden)))  # (labelled, hidden)
    logits = F.linear(transformed, head.decoder_weight, head.bias)  # (labelled, vocab)
    return F.cross_entropy(logits, labels[labelled])


def _mlm_inputs(generator: torch.Generator) -> tuple:
    """(last_hidden_state, labels, head): O(1) values, about 30% of the positions labelled, at
    least one per row, and a head whose weights are far from their initial values."""
    config = tiny_config(vocab_size=VOCAB_SIZE)
    word_embeddings = nn.Embedding(VOCAB_SIZE, config.hidden_size)
    head = MaskedLMHead(config, word_embeddings)
    with torch.no_grad():
        for parameter in [*head.parameters(), word_embeddings.weight]:
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.copy_(noise / parameter.shape[-1] ** 0.5 if parameter.dim() == 2 else noise)
    last_hidden_state = torch.randn(MLM_BATCH, MLM_SEQ, config.hidden_size, generator=generator)
    ids = torch.randint(5, VOCAB_SIZE, (MLM_BATCH, MLM_SEQ), generator=generator)
    chosen = torch.rand(MLM_BATCH, MLM_SEQ, generator=generator) < 0.3
    chosen[:, 1] = True
    return last_hidden_state.requires_grad_(), torch.where(chosen, ids, IGNORE_INDEX), head


def _mlm_variant(
    rows="labelled", steps="dense gelu norm", bias=True, reduction="mean", loss="log_softmax"
):
    """The sparse MLM loss with one thing changed (the reference is the default)."""

    def loss_fn(last_hidden_state, labels, head):
        labelled = labels != IGNORE_INDEX
        hidden, targets = last_hidden_state[labelled], labels[labelled]
        if rows == "transposed":  # positions taken in another order than their labels
            hidden = last_hidden_state.transpose(0, 1)[labelled.T]
        layers = {"dense": head.transform, "gelu": F.gelu, "norm": head.norm, "relu": F.relu}
        layers["tanh_gelu"] = lambda h: F.gelu(h, approximate="tanh")
        for step in steps.split():
            hidden = layers[step](hidden)
        logits = F.linear(hidden, head.decoder_weight, head.bias if bias else None)
        log_probs = {
            "log_softmax": lambda z: z - z.logsumexp(-1, keepdim=True),
            "softmax first": lambda z: z.softmax(-1) - z.softmax(-1).logsumexp(-1, keepdim=True),
            "log of softmax": lambda z: (z.exp() / z.exp().sum(-1, keepdim=True)).log(),
            "batch axis": lambda z: z - z.logsumexp(0, keepdim=True),
        }[loss](logits)
        if reduction == "all pairs":  # log_probs[:, targets]: every row at every target
            return -log_probs[:, targets].mean()
        picked = log_probs.gather(1, targets[:, None]).squeeze(1)  # (labelled,)
        return {
            "mean": -picked.mean(),
            "no minus": picked.mean(),
            "sum": -picked.sum(),
            "all positions": -picked.sum() / labels.numel(),
        }[reduction]

    return loss_fn


_UNSTABLE = Mistake(
    _mlm_variant(loss="log of softmax"),
    "your loss is inf or NaN where a logit is large (here about 120): exp() overflowed, or a "
    "probability underflowed to 0 before its log. Compute log p = z - logsumexp(z) "
    "(torch.logsumexp subtracts the largest logit first), never log(exp(z) / sum exp(z)).",
)
MLM_MISTAKES = [
    Mistake(
        _mlm_variant(reduction="all positions"),
        "you averaged over every position, labelled or not: the loss is the mean over the "
        "labelled positions only.",
    ),
    Mistake(
        _mlm_variant(reduction="sum"),
        "the loss is summed over the labelled positions; average it, so that the step size "
        "does not depend on how many tokens were masked.",
    ),
    Mistake(
        _mlm_variant(reduction="no minus"),
        "your loss is negative: it is the mean log-probability of the right tokens. The "
        "cross-entropy is its negative, -mean(log p[target]).",
    ),
    Mistake(
        _mlm_variant(reduction="all pairs"),
        "log_probs[:, targets] is a (labelled, labelled) matrix: every row at every row's "
        "target. Take one entry per row, row i at targets[i]: log_probs.gather(1, "
        "targets[:, None]) or log_probs[torch.arange(n), targets].",
    ),
    Mistake(
        _mlm_variant(loss="batch axis"),
        "you normalised over the positions (dim=0): each row's logits are a distribution over "
        "the vocabulary, so take logsumexp over the last axis (dim=-1).",
    ),
    Mistake(
        _mlm_variant(loss="softmax first"),
        "softmax is applied before the log-softmax: the cross-entropy starts from the raw "
        "logits, log p = z - logsumexp(z).",
    ),
    Mistake(
        _mlm_variant(bias=False),
        "the decoder's bias is missing: logits = h @ head.decoder_weight.T + head.bias.",
    ),
    Mistake(
        _mlm_variant(steps=""),
        "the head's transform is missing: before the tied decoder, each vector goes through "
        "the dense layer head.transform, then GELU, then the LayerNorm head.norm.",
    ),
    Mistake(_mlm_variant(steps="dense norm"), "the GELU is missing: norm(gelu(transform(h)))."),
    Mistake(
        _mlm_variant(steps="dense gelu"), "the LayerNorm is missing: norm(gelu(transform(h)))."
    ),
    Mistake(
        _mlm_variant(steps="dense norm gelu"),
        "LayerNorm and GELU are in the wrong order: head.norm(F.gelu(head.transform(h))).",
    ),
    Mistake(
        _mlm_variant(steps="dense relu norm"),
        "the transform uses ReLU; BERT's uses the exact GELU, F.gelu.",
    ),
    Mistake(
        _mlm_variant(steps="dense tanh_gelu norm"),
        "the transform uses the tanh approximation of GELU; BERT uses the exact F.gelu.",
    ),
    Mistake(
        _mlm_variant(rows="transposed"),
        "the selected positions and their labels are not in the same order: select both with "
        "the same boolean mask, last_hidden_state[labelled] and labels[labelled].",
    ),
    _UNSTABLE,
]

# The exercise writes the cross-entropy itself: PyTorch's refuses inside the student's function
# (the reference and the mistakes, run outside it, still use it).
TORCH_CROSS_ENTROPIES = ("cross_entropy", "nll_loss")


@contextlib.contextmanager
def _torch_cross_entropy_guarded():
    """Within this block, F.cross_entropy and F.nll_loss (and nn.CrossEntropyLoss, which calls
    them) refuse to run while the sparse MLM loss check is on."""

    def guarded(original: Callable) -> Callable:
        def loss(*args, **kwargs):
            refuse_if_checked("cross_entropy", owner="PyTorch")
            return original(*args, **kwargs)

        return loss

    originals = {name: getattr(F, name) for name in TORCH_CROSS_ENTROPIES}
    for name, original in originals.items():
        setattr(F, name, guarded(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(F, name, original)


def _large_logit_inputs(generator: torch.Generator) -> tuple:
    """`_mlm_inputs` with one vocabulary entry's bias at 120, as large as a confident model's
    logit can get: exp(120) overflows float32 and exp(-120) underflows to 0."""
    last_hidden_state, labels, head = _mlm_inputs(generator)
    with torch.no_grad():
        head.bias[0] += 120.0  # id 0 is never a label (labels are ids >= 5)
    return last_hidden_state, labels, head


def _call_mlm_loss(name: str, sparse_mlm_loss: Callable, inputs: tuple) -> tuple:
    """(the student's loss, the numbers of rows each call of head.transform saw)."""
    rows_seen: list[int] = []
    head = inputs[2]
    hook = head.transform.register_forward_pre_hook(
        lambda module, args: rows_seen.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])
    )
    try:
        loss = call_student(name, sparse_mlm_loss, *inputs, refuse=MLM_REFUSED)
    except CheckFailed as failure:
        if "out of bounds" in str(failure.__cause__) and "-100" in str(failure.__cause__):
            fail(
                name,
                "the label -100 reached the loss as an index: the unlabelled positions must "
                "not. Select the labelled ones first (labels != -100), hidden states and "
                "labels with the same mask.",
            )
        raise
    finally:
        hook.remove()
    return loss, rows_seen


MLM_REFUSED = ("MaskedLMHead", "cross_entropy")


def check_sparse_mlm_loss(sparse_mlm_loss: Callable) -> None:
    """Check `sparse_mlm_loss(last_hidden_state, labels, head) -> loss`: the head runs only on
    the labelled positions, through the tied decoder, and the cross-entropy, written out,
    averages over those positions."""
    name = "sparse_mlm_loss"
    with _torch_cross_entropy_guarded():
        inputs = _mlm_inputs(torch.Generator().manual_seed(3))
        loss, rows_seen = _call_mlm_loss(name, sparse_mlm_loss, inputs)
        last_hidden_state, labels, head = inputs
        num_labelled = int((labels != IGNORE_INDEX).sum())
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            fail(name, f"return the loss as a 0-d tensor (one number, with its graph), got {shape}")
        if not loss.requires_grad:
            fail(
                name,
                "the loss carries no gradient: do not compute it under torch.no_grad() and do "
                "not .detach() or .item() it, or pretraining could not learn from it.",
            )
        if rows_seen and max(rows_seen) > num_labelled:
            fail(
                name,
                f"the head ran on {max(rows_seen)} positions, but only {num_labelled} carry a "
                "label: select the labelled positions first (last_hidden_state[labels != "
                "-100]), then run the transform and the vocabulary-sized decoder on those "
                "alone: the same loss for about a sixth of the work when 15% are masked.",
            )
        compare(name, sparse_mlm_loss, reference_sparse_mlm_loss, _mlm_inputs, MLM_MISTAKES,
                refuse=MLM_REFUSED)  # fmt: skip
        large, _ = _call_mlm_loss(name, sparse_mlm_loss, _large_logit_inputs(torch.Generator()))
        if not torch.isfinite(large):
            fail(name, _UNSTABLE.advice)
    loss.backward()
    if last_hidden_state.grad is None or head.decoder_weight.grad is None:
        fail(
            name,
            "the gradient does not reach the hidden states and the tied decoder: compute the "
            "loss from last_hidden_state and head.decoder_weight themselves (no detach).",
        )
    passed(name, f"head run on the {num_labelled} labelled positions of {labels.numel()}, "
           "tied decoder, mean cross-entropy, stable at large logits")  # fmt: skip
