"""Checks for chapter 07: the learning-rate schedule, the training step, the sparse MLM loss.

    check_lr_schedule(lr_multiplier)
        # (step, warmup_steps, total_steps) -> float, the multiplier of the peak learning rate
    check_training_step(training_step)
        # (model, batch, optimizer, max_grad_norm) -> float, the loss before the update
    check_sparse_mlm_loss(sparse_mlm_loss)
        # (last_hidden_state (batch, seq, hidden), labels (batch, seq), head: MaskedLMHead)
        #  -> loss, a 0-d tensor: the head and the tied decoder run on labelled positions only

`check_lr_schedule` compares the student's schedule with `bertmini.train.linear_warmup_decay`
at every step of a few (warmup, total) settings, no warmup included. Mistakes it names: step 0
at a learning rate of 0 (warmup off by one), no warmup, no decay, a decay that reaches 0 at the
last step instead of just after it, a decay divided by the total length instead of the length
of the decay, a cosine decay, a warmup that is not linear, integer division.

`check_training_step` builds two identical tiny BERTs (dropout on, handed over in eval mode),
runs two steps of the student's function on one and of the reference on the other, with the
same batches and the same dropout masks, and compares the returned losses and the updated
weights after each step. It uses plain SGD, whose update is the clipped gradient times the
learning rate, so every mistake changes the weights (Adam's update is nearly blind to a
uniform rescaling of the gradients, which would hide a missing clip); then it runs AdamW once to
see that the function works with the optimizer pretraining uses. Mistakes it names: no
`model.train()`, the forward pass under `torch.no_grad()`, only the MLM loss back-propagated,
no clipping or clipping after `optimizer.step()`, clipping each parameter (or each value)
separately, a hard-coded clipping threshold, gradients never zeroed, weights never updated
(`optimizer.step()` before `backward()`, or the gradients zeroed before the step), a loss
returned as a tensor.

`check_sparse_mlm_loss` compares the loss with the reference (bertmini's `MaskedLMHead`
refuses to run meanwhile, so the student writes the transform and the tied decoder) and watches
the head's transform: it must see only the labelled rows. Mistakes it names: the head run on
every position (the same loss, six times the work), cross-entropy meeting the label -100, the
mean over all positions, a summed loss, softmax before cross-entropy, the decoder's bias, the
transform's dense layer, GELU or LayerNorm missing, reordered or replaced, positions and labels
selected in different orders, a loss cut from the graph.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..model import IGNORE_INDEX, BertConfig, BertForPreTraining, MaskedLMHead
from ..train import linear_warmup_decay
from . import CheckFailed, Mistake, call_student, compare, fail, passed, tiny_config

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
# Exercise 2: the training step
# ---------------------------------------------------------------------------------------------

VOCAB_SIZE = 60
MAX_GRAD_NORM = 0.3  # below the tiny model's gradient norm (about 2): clipping is active
SGD_LR = 0.5


def reference_training_step(
    model: nn.Module, batch: dict, optimizer: torch.optim.Optimizer, max_grad_norm: float
) -> float:
    """One optimizer step on one batch; returns the loss before the update."""
    model.train()
    out = model(**batch)
    out.loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    return out.loss.item()


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


def _run(step_fn, make_optimizer, seed: int, max_grad_norm: float = MAX_GRAD_NORM, steps=2):
    """Two steps of `step_fn` on a fresh tiny BERT. Returns (losses, weights after each step).

    Everything random is seeded here (weights, batches, dropout masks), so two functions that
    compute the same thing give the same numbers; the caller's random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForPreTraining(_tiny_config())
        model.eval()  # as a model often is after an evaluation: the step must switch it back
        optimizer = make_optimizer(model)
        generator = torch.Generator().manual_seed(seed + 1)
        batches = [_make_batch(generator) for _ in range(steps)]
        losses, weights = [], []
        for i, batch in enumerate(batches):
            torch.manual_seed(seed + 100 + i)  # the same dropout masks for every function
            losses.append(step_fn(model, batch, optimizer, max_grad_norm))
            weights.append([p.detach().clone() for p in model.parameters()])
    return losses, weights


def _variant(
    train_mode=True,
    loss="loss",
    clip="global",
    max_norm=None,
    zero_grad=True,
    order="backward-step",
    as_float=True,
):
    """The training step with one choice made, right or wrong (the reference is the default)."""

    def step(model, batch, optimizer, max_grad_norm):
        if train_mode:
            model.train()
        out = model(**batch)
        threshold = max_norm if max_norm is not None else max_grad_norm
        if order == "step-backward":
            optimizer.step()
            getattr(out, loss).backward()
        else:
            getattr(out, loss).backward()
            if order == "zero-step":
                optimizer.zero_grad()
            if clip == "global":
                nn.utils.clip_grad_norm_(model.parameters(), threshold)
            elif clip == "per-parameter":
                for p in model.parameters():
                    nn.utils.clip_grad_norm_([p], threshold)
            elif clip == "value":
                nn.utils.clip_grad_value_(model.parameters(), threshold)
            optimizer.step()
            if clip == "after-step":
                nn.utils.clip_grad_norm_(model.parameters(), threshold)
        if zero_grad:
            optimizer.zero_grad()
        return out.loss.item() if as_float else out.loss

    return step


STEP_MISTAKES: tuple[tuple[Callable, str], ...] = (
    (
        _variant(train_mode=False),
        "the model ran in eval mode (no dropout): call model.train() at the start of the step; "
        "the model may come from an evaluation that left it in eval mode.",
    ),
    (
        _variant(loss="mlm_loss"),
        "only the MLM loss was back-propagated: use out.loss, which is out.mlm_loss + "
        "out.nsp_loss, so the NSP head and the pooler learn too.",
    ),
    (
        _variant(loss="nsp_loss"),
        "only the NSP loss was back-propagated: use out.loss = out.mlm_loss + out.nsp_loss.",
    ),
    (
        _variant(clip="none"),
        "the update was not clipped: call torch.nn.utils.clip_grad_norm_(model.parameters(), "
        "max_grad_norm) after loss.backward() and before optimizer.step() (clipping after the "
        "step is too late: the update has already been made).",
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
        _variant(zero_grad=False),
        "the gradients were never zeroed, so the second step's gradients still contain the "
        "first step's (PyTorch *adds* to .grad): call optimizer.zero_grad() after "
        "optimizer.step() (or before loss.backward()).",
    ),
)


def _same(a_losses, a_weights, b_losses, b_weights, atol: float = 1e-6) -> bool:
    return all(
        isinstance(x, float) and abs(x - y) < 1e-5 for x, y in zip(a_losses, b_losses, strict=True)
    ) and all(
        torch.allclose(p, q, atol=atol, rtol=0)
        for wa, wb in zip(a_weights, b_weights, strict=True)
        for p, q in zip(wa, wb, strict=True)
    )


def _call_student(name, training_step, make_optimizer, seed):
    try:
        return call_student(
            name, _run, training_step, make_optimizer, seed, refuse=["training_step"]
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
        raise


def check_training_step(training_step: Callable) -> None:
    """Check `training_step(model, batch, optimizer, max_grad_norm) -> float` (the loss before
    the update) against the reference, over two steps with SGD and two with AdamW."""
    name = "training_step"
    seed = 7
    losses, weights = _call_student(name, training_step, _sgd, seed)
    expected_losses, expected_weights = _run(reference_training_step, _sgd, seed)
    initial = _run(lambda *args: 0.0, _sgd, seed)[1][0]  # weights never updated

    if isinstance(losses[0], torch.Tensor):
        fail(
            name,
            "return the loss as a Python float, loss.item(): a tensor keeps its graph (and, on "
            "a GPU, its memory) alive.",
        )
    if not all(isinstance(x, (float, int)) and not isinstance(x, bool) for x in losses):
        fail(name, f"expected the loss as a float, got {type(losses[0]).__name__} {losses[0]!r}")
    losses = [float(x) for x in losses]
    if not _same(losses, weights, expected_losses, expected_weights):
        if all(torch.equal(p, q) for w in weights for p, q in zip(w, initial, strict=True)):
            fail(
                name,
                "the weights did not change: optimizer.step() must come after loss.backward() "
                "(it uses the gradients backward() computes), and optimizer.zero_grad() after "
                "optimizer.step() (zeroing before the step leaves it nothing to do).",
            )
        for wrong, advice in STEP_MISTAKES:
            wrong_losses, wrong_weights = _run(wrong, _sgd, seed)
            if _same(losses, weights, wrong_losses, wrong_weights):
                fail(name, advice)
        first_bad = next(
            i
            for i in range(2)
            if abs(losses[i] - expected_losses[i]) >= 1e-5
            or not all(
                torch.allclose(p, q, atol=1e-6, rtol=0)
                for p, q in zip(weights[i], expected_weights[i], strict=True)
            )
        )
        got_loss, expected_loss = losses[first_bad], expected_losses[first_bad]
        what = (
            f"the returned loss ({got_loss:.5f}, expected {expected_loss:.5f})"
            if abs(losses[first_bad] - expected_losses[first_bad]) >= 1e-5
            else "the updated weights"
        )
        fail(
            name,
            f"{what} after step {first_bad + 1} differ from the reference. The order is: "
            "model.train(); out = model(**batch); out.loss.backward(); clip_grad_norm_; "
            "optimizer.step(); optimizer.zero_grad(); return out.loss.item().",
        )

    adam_losses, adam_weights = _call_student(name, training_step, _adamw, seed)
    if not _same(
        [float(x) for x in adam_losses], adam_weights, *_run(reference_training_step, _adamw, seed)
    ):
        fail(
            name,
            "right with SGD but not with AdamW: use the optimizer you are given (do not make "
            "your own) and call its step() exactly once.",
        )
    passed(name, "same losses and weights as the reference over two SGD and two AdamW steps")


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


def _mlm_variant(rows="labelled", steps="dense gelu norm", bias=True, reduction="mean"):
    """The sparse MLM loss with one thing changed (the reference is the default)."""

    def loss_fn(last_hidden_state, labels, head):
        labelled = labels != IGNORE_INDEX
        hidden = last_hidden_state[labelled]
        if rows == "transposed":  # positions taken in another order than their labels
            hidden = last_hidden_state.transpose(0, 1)[labelled.T]
        layers = {"dense": head.transform, "gelu": F.gelu, "norm": head.norm, "relu": F.relu}
        layers["tanh_gelu"] = lambda h: F.gelu(h, approximate="tanh")
        for step in steps.split():
            hidden = layers[step](hidden)
        logits = F.linear(hidden, head.decoder_weight, head.bias if bias else None)
        if reduction == "softmax first":
            return F.cross_entropy(logits.softmax(-1), labels[labelled])
        total = F.cross_entropy(logits, labels[labelled], reduction="sum")
        return {
            "mean": total / labelled.sum(),
            "sum": total,
            "all positions": total / labels.numel(),
        }[reduction]

    return loss_fn


MLM_MISTAKES = [
    Mistake(
        _mlm_variant(reduction="all positions"),
        "you averaged over every position, labelled or not: the loss is the mean over the "
        "labelled positions only (cross_entropy's default once you pass just those).",
    ),
    Mistake(
        _mlm_variant(reduction="sum"),
        "the loss is summed over the labelled positions; average it (cross_entropy's default), "
        "so the step size does not depend on how many tokens were masked.",
    ),
    Mistake(
        _mlm_variant(reduction="softmax first"),
        "softmax is applied twice: cross_entropy takes raw logits and applies log-softmax "
        "itself. Pass the logits.",
    ),
    Mistake(
        _mlm_variant(bias=False),
        "the decoder's bias is missing: logits = F.linear(h, head.decoder_weight, head.bias).",
    ),
    Mistake(
        _mlm_variant(steps=""),
        "the head's transform is missing: before the tied decoder, each vector goes through "
        "head.norm(F.gelu(head.transform(h))).",
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
]


def check_sparse_mlm_loss(sparse_mlm_loss: Callable) -> None:
    """Check `sparse_mlm_loss(last_hidden_state, labels, head) -> loss`: the head runs only on
    the labelled positions, through the tied decoder, and the loss ignores the rest."""
    name = "sparse_mlm_loss"
    last_hidden_state, labels, head = _mlm_inputs(torch.Generator().manual_seed(3))
    rows_seen: list[int] = []
    hook = head.transform.register_forward_pre_hook(
        lambda module, args: rows_seen.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])
    )
    try:
        loss = call_student(
            name, sparse_mlm_loss, last_hidden_state, labels, head, refuse=["MaskedLMHead"]
        )
    except CheckFailed as failure:
        if "out of bounds" in str(failure.__cause__) and "-100" in str(failure.__cause__):
            fail(
                name,
                "cross_entropy met the label -100: the unlabelled positions must not reach it. "
                "Select the labelled ones first (labels != -100), or pass ignore_index=-100.",
            )
        raise
    finally:
        hook.remove()
    num_labelled = int((labels != IGNORE_INDEX).sum())
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        fail(name, f"return the loss as a 0-d tensor (one number, with its graph), got {shape}")
    if not loss.requires_grad:
        fail(
            name,
            "the loss carries no gradient: do not compute it under torch.no_grad() and do not "
            ".detach() or .item() it, or pretraining could not learn from it.",
        )
    if rows_seen and max(rows_seen) > num_labelled:
        fail(
            name,
            f"the head ran on {max(rows_seen)} positions, but only {num_labelled} carry a label: "
            "select the labelled positions first (last_hidden_state[labels != -100]), then run "
            "the transform and the vocabulary-sized decoder on those alone: the same loss for "
            "about a sixth of the work when 15% of the tokens are masked.",
        )
    compare(
        name,
        sparse_mlm_loss,
        reference_sparse_mlm_loss,
        _mlm_inputs,
        MLM_MISTAKES,
        atol=1e-5,
        refuse=["MaskedLMHead"],
    )
    loss.backward()
    if last_hidden_state.grad is None or head.decoder_weight.grad is None:
        fail(
            name,
            "the gradient does not reach the hidden states and the tied decoder: compute the "
            "loss from last_hidden_state and head.decoder_weight themselves (no detach).",
        )
    passed(
        name,
        f"head run on the {num_labelled} labelled positions of {labels.numel()}, tied decoder, "
        "mean cross-entropy",
    )
