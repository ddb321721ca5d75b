"""Checks for chapter 08: the classification head with its loss, and an evaluation loop.

    check_classification_head(classification_loss)
        # (last_hidden_state (batch, seq, hidden), pooler: nn.Linear, classifier: nn.Linear,
        #  labels (batch,)) -> (logits (batch, num_labels), loss (0-d tensor))
    check_evaluation_loop(evaluate_accuracy)
        # (model, loader) -> accuracy over every example of the loader (a float in [0, 1])
    check_finetuning_loop(train_epoch)
        # (model, loader, optimizer, scheduler, max_grad_norm) -> list of per-batch losses

The head is compared with what `BertForSequenceClassification` computes (dropout aside):
``logits = classifier(tanh(pooler(h[:, 0])))`` and ``loss = cross_entropy(logits, labels)``.
Mistakes it names: mean or max pooling over all positions, the last position instead of [CLS],
every position classified, the pooler skipped, tanh missing or replaced, softmax applied before
`cross_entropy` (it applies log-softmax itself), `nll_loss` on raw logits, mean squared error, a
summed instead of averaged loss, probabilities returned as logits, (loss, logits) swapped, a loss
cut off from the graph (`.item()`, `.detach()`, `torch.no_grad()`).

The evaluation loop runs on a small BERT with heavy dropout and a loader of 8 + 8 + 8 + 3
examples. A hook on the classifier records, for every forward pass, whether the model was in
training mode and whether gradients were being tracked, so these are named exactly: dropout left
on (no `model.eval()`), gradients tracked (no `torch.no_grad()`), batches skipped (a `return`
inside the loop), the model's mode not restored afterwards; and by value: the mean of per-batch
accuracies (wrong when the last batch is smaller), a count or a percentage instead of a fraction,
a total taken as batches x batch size.

The fine-tuning loop is checked by its effects on a tiny classifier handed over in eval mode,
four batches, SGD and a warmup/decay schedule: hooks record the mode of every forward pass and
the learning rate of every optimizer step, and the weights afterwards are compared with the
reference's. Mistakes it names: no `model.train()`, no optimizer step or more than one per
batch, no `scheduler.step()` or one before `optimizer.step()`, gradients never zeroed, no
clipping (or clipping after the step, or to a fixed norm), losses returned as tensors.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader

from ..data.finetuning import ClassificationCollator
from ..model import BertForSequenceClassification
from . import Mistake, call_student, compare, diagnose, fail, passed, tiny_config

# ---------------------------------------------------------------------------------------------
# Exercise 1: the classification head and its loss
# ---------------------------------------------------------------------------------------------

HIDDEN, NUM_LABELS, BATCH, SEQ = 16, 3, 6, 9


def reference_classification_loss(
    last_hidden_state: torch.Tensor,
    pooler: nn.Linear,
    classifier: nn.Linear,
    labels: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What BertForSequenceClassification computes, dropout aside."""
    cls = last_hidden_state[:, 0]  # (batch, hidden): the [CLS] position
    pooled = torch.tanh(pooler(cls))  # (batch, hidden)
    logits = classifier(pooled)  # (batch, num_labels)
    return logits, F.cross_entropy(logits, labels)


def _head_inputs(generator: torch.Generator) -> tuple:
    """Random hidden states, a pooler and a classifier with O(1) pre-activations, labels."""
    pooler, classifier = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, NUM_LABELS)
    with torch.no_grad():
        for layer, scale in ((pooler, 1.5), (classifier, 2.0)):
            layer.weight.copy_(scale * torch.randn(layer.weight.shape, generator=generator))
            layer.weight.div_(HIDDEN**0.5)
            layer.bias.copy_(0.3 * torch.randn(layer.bias.shape, generator=generator))
    last_hidden_state = torch.randn(BATCH, SEQ, HIDDEN, generator=generator)
    labels = torch.randint(NUM_LABELS, (BATCH,), generator=generator)
    return last_hidden_state, pooler, classifier, labels


def _head(pool: str = "cls", activation=torch.tanh, use_pooler: bool = True) -> Callable:
    """The logits of a head that pools, activates or skips the pooler in one wrong way."""

    def logits_of(last_hidden_state, pooler, classifier):
        h = {
            "cls": lambda: last_hidden_state[:, 0],
            "mean": lambda: last_hidden_state.mean(1),
            "max": lambda: last_hidden_state.max(1).values,
            "last": lambda: last_hidden_state[:, -1],
        }[pool]()
        return classifier(activation(pooler(h)) if use_pooler else h)

    return logits_of


def _variant(
    logits_of: Callable | None = None, loss_of: Callable | None = None, swap: bool = False
) -> Callable:
    """The reference with its logits (`_head(...)`) or its loss replaced, or its outputs swapped."""

    def wrong(last_hidden_state, pooler, classifier, labels):
        logits = (logits_of or _head())(last_hidden_state, pooler, classifier)
        loss = (loss_of or F.cross_entropy)(logits, labels)
        return (loss, logits) if swap else (logits, loss)

    return wrong


def _one_hot(logits, labels):
    return F.one_hot(labels, logits.shape[-1]).to(logits.dtype)


def _returns_probabilities(last_hidden_state, pooler, classifier, labels):
    logits = _head()(last_hidden_state, pooler, classifier)
    return logits.softmax(-1), F.cross_entropy(logits, labels)


_CLS = "BERT reads the [CLS] vector only, the first position: `last_hidden_state[:, 0]`"
HEAD_MISTAKES = [
    Mistake(
        _variant(_head(pool="mean")),
        f"you averaged over all positions (mean pooling). {_CLS}.",
    ),
    Mistake(_variant(_head(pool="max")), f"you took a max over all positions. {_CLS}."),
    Mistake(
        _variant(_head(pool="last")),
        f"you took the last position, but [CLS] is the first one. {_CLS}.",
    ),
    Mistake(
        _variant(_head(use_pooler=False)),
        "the pooler is skipped: the classifier reads tanh(pooler(h_[CLS])), not h_[CLS] itself.",
    ),
    Mistake(
        _variant(_head(activation=lambda x: x)),
        "tanh is missing: the pooled vector is tanh(pooler(h_[CLS])), as in pretraining (NSP).",
    ),
    Mistake(
        _variant(_head(activation=torch.relu)),
        "the pooler's activation is tanh, not ReLU.",
    ),
    Mistake(
        _variant(_head(activation=F.gelu)),
        "the pooler's activation is tanh, not GELU (GELU is the feed-forward layers' one).",
    ),
    Mistake(
        _variant(_head(activation=torch.sigmoid)),
        "the pooler's activation is tanh, not a sigmoid.",
    ),
    Mistake(
        _variant(loss_of=lambda logits, labels: F.cross_entropy(logits.softmax(-1), labels)),
        "softmax is applied twice: F.cross_entropy takes raw logits and applies log-softmax "
        "itself. Pass the logits, not probabilities.",
    ),
    Mistake(
        _variant(loss_of=lambda logits, labels: F.nll_loss(logits, labels)),
        "nll_loss expects log-probabilities, and these are raw logits: use "
        "F.cross_entropy(logits, labels) (= nll_loss(log_softmax(logits), labels)).",
    ),
    Mistake(
        _variant(
            loss_of=lambda logits, labels: F.mse_loss(logits.softmax(-1), _one_hot(logits, labels))
        ),
        "this is a mean squared error against one-hot labels; classification uses the cross "
        "entropy, -log p(label): F.cross_entropy(logits, labels).",
    ),
    Mistake(
        _variant(loss_of=lambda logits, labels: F.mse_loss(logits, _one_hot(logits, labels))),
        "this is a mean squared error between logits and one-hot labels; classification uses "
        "the cross entropy, -log p(label): F.cross_entropy(logits, labels).",
    ),
    Mistake(
        _variant(loss_of=lambda logits, labels: F.cross_entropy(logits, labels, reduction="sum")),
        "the loss is summed over the batch; average it (cross_entropy's default, "
        "reduction='mean'), so the step size does not depend on the batch size.",
    ),
    Mistake(
        _returns_probabilities,
        "you return probabilities (after softmax) as the logits: return the raw scores "
        "classifier(pooled); softmax belongs to whoever wants probabilities.",
    ),
    Mistake(_variant(swap=True), "return (logits, loss), in that order (you return them swapped)."),
]


def check_classification_head(classification_loss: Callable) -> None:
    """Check `classification_loss(last_hidden_state, pooler, classifier, labels)
    -> (logits, loss)` against BertForSequenceClassification's head (without dropout)."""
    name = "classification_loss"
    _check_head_structure(name, classification_loss)
    compare(
        name,
        classification_loss,
        reference_classification_loss,
        _head_inputs,
        HEAD_MISTAKES,
        atol=1e-5,
        names=("logits", "loss"),
    )
    passed(name, "logits = classifier(tanh(pooler(h[:, 0]))), loss = cross_entropy(logits, labels)")


def _check_head_structure(name: str, classification_loss: Callable) -> None:
    """One call, to name the mistakes of shape and type before comparing values."""
    last_hidden_state, pooler, classifier, labels = _head_inputs(torch.Generator().manual_seed(0))
    result = call_student(name, classification_loss, last_hidden_state, pooler, classifier, labels)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        fail(name, f"return a tuple (logits, loss), got {type(result).__name__}")
    logits, loss = result
    if isinstance(logits, torch.Tensor) and isinstance(loss, torch.Tensor):
        if logits.dim() == 0 and loss.dim() == 2:
            fail(name, "return (logits, loss), in that order (you return them swapped).")
    if not isinstance(logits, torch.Tensor):
        fail(name, f"logits must be a tensor, got {type(logits).__name__}")
    if logits.shape == (BATCH, SEQ, NUM_LABELS):
        fail(
            name,
            f"your logits have shape {tuple(logits.shape)}: one prediction per position. "
            f"{_CLS}, so the logits are (batch, num_labels).",
        )
    if logits.shape != (BATCH, NUM_LABELS):
        fail(
            name,
            f"logits must have shape (batch, num_labels) = {(BATCH, NUM_LABELS)}, "
            f"got {tuple(logits.shape)}",
        )
    if not isinstance(loss, torch.Tensor):
        fail(
            name,
            f"the loss must be a tensor, got {type(loss).__name__}: do not call .item() on it, "
            "backward() needs the tensor.",
        )
    if loss.dim() != 0:
        fail(
            name,
            f"the loss must be one number (a 0-d tensor), got shape {tuple(loss.shape)}: "
            "average over the batch (cross_entropy's default reduction='mean').",
        )
    if not loss.requires_grad:
        fail(
            name,
            "the loss carries no gradient, so training could not learn from it: do not compute "
            "it under torch.no_grad() and do not .detach() it.",
        )


# ---------------------------------------------------------------------------------------------
# Exercise 2: the evaluation loop
# ---------------------------------------------------------------------------------------------

EVAL_BATCH, EVAL_SIZES = 8, (8, 8, 8, 3)  # a smaller last batch, as most datasets end with


def reference_evaluate_accuracy(model: nn.Module, loader) -> float:
    """Correct predictions / examples over the whole loader; eval mode, no gradients, and the
    model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(**batch).logits  # (batch, num_labels)
            correct += (logits.argmax(-1) == batch["labels"]).sum().item()
            total += batch["labels"].numel()
    model.train(was_training)
    return correct / total


def _random_examples(
    count: int, vocab_size: int, generator: torch.Generator, num_labels: int = 0
) -> list[dict[str, torch.Tensor]]:
    """`count` examples [CLS] ... [SEP] of 4 to 11 random ids, each labelled at random among
    `num_labels` classes, or 0 when num_labels is 0 (the caller sets the labels)."""
    examples = []
    for _ in range(count):
        length = int(torch.randint(4, 12, (), generator=generator))
        input_ids = torch.randint(5, vocab_size, (length,), generator=generator)
        input_ids[0], input_ids[-1] = 2, 3  # [CLS] ... [SEP]
        label = torch.randint(num_labels, (), generator=generator) if num_labels else 0
        examples.append(
            {
                "input_ids": input_ids,
                "token_type_ids": torch.zeros(length, dtype=torch.long),
                "labels": torch.as_tensor(label),
            }
        )
    return examples


def make_evaluation_setup(seed: int = 0) -> tuple[BertForSequenceClassification, DataLoader]:
    """A small BERT classifier with heavy dropout, and a loader of 27 labelled examples in
    batches of 8, 8, 8 and 3. Labels are chosen so that, in eval mode, the model gets 3 of 8
    right in the first two batches, 2 of 8 in the third and all 3 of the last batch: 11 / 27
    overall, while the mean of the per-batch accuracies is 0.5. The model starts in train mode."""
    generator = torch.Generator().manual_seed(seed)
    config = tiny_config(hidden_dropout_prob=0.5, attention_probs_dropout_prob=0.5, num_labels=3)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    with torch.no_grad():  # O(1) logits, so predictions vary from example to example
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator))
                parameter.div_(parameter.shape[1] ** 0.5)
    examples = _random_examples(sum(EVAL_SIZES), config.vocab_size, generator)
    collate = ClassificationCollator(pad_token_id=0)
    loader = DataLoader(examples, batch_size=EVAL_BATCH, shuffle=False, collate_fn=collate)
    model.eval()
    with torch.no_grad():  # predictions batch by batch, exactly as the loader will give them
        predictions = torch.cat([model(**batch).logits.argmax(-1) for batch in loader])
    for index, example in enumerate(examples):  # the loader reads these labels from now on
        right = index >= 24 or index % 3 == 0
        prediction = int(predictions[index])
        example["labels"] = torch.tensor(prediction if right else (prediction + 1) % 3)
    model.train()
    return model, loader


def _accuracy_of_batches(model, loader) -> list[tuple[int, int]]:
    """(correct, size) of each batch, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for batch in loader:
            correct = (model(**batch).logits.argmax(-1) == batch["labels"]).sum().item()
            out.append((correct, batch["labels"].numel()))
    model.train(was_training)
    return out


def check_evaluation_loop(evaluate_accuracy: Callable) -> None:
    """Check `evaluate_accuracy(model, loader) -> float`: the accuracy over all examples, in eval
    mode, without gradients, leaving the model in the mode it was in."""
    name = "evaluate_accuracy"
    model, loader = make_evaluation_setup()
    calls: list[tuple[bool, bool]] = []  # (training, grad enabled) of each forward pass

    def record(module, args):
        calls.append((module.training, torch.is_grad_enabled()))

    hook = model.classifier.register_forward_pre_hook(record)
    try:
        per_batch = _accuracy_of_batches(model, loader)
        calls.clear()
        value = _call_evaluate(name, evaluate_accuracy, model, loader)
        _diagnose_modes(name, calls, len(per_batch), model, was_training=True)
        correct, total = sum(c for c, _ in per_batch), sum(n for _, n in per_batch)
        _diagnose_value(name, value, per_batch)
        model.eval()  # a model already in eval mode must stay in eval mode
        calls.clear()
        _call_evaluate(name, evaluate_accuracy, model, loader)
        _diagnose_modes(name, calls, len(per_batch), model, was_training=False)
    finally:
        hook.remove()
    passed(
        name,
        f"{correct}/{total} = {correct / total:.3f} over batches of "
        f"{', '.join(str(n) for _, n in per_batch)}; eval mode, no gradients, mode restored",
    )


def _call_evaluate(name, evaluate_accuracy, model, loader):
    return call_student(name, evaluate_accuracy, model, loader, refuse=["evaluate"])


def _diagnose_modes(name, calls, num_batches, model, was_training: bool) -> None:
    if not calls:
        fail(name, "your function never ran the model: call model(**batch) on every batch.")
    if len(calls) < num_batches:
        fail(
            name,
            f"the model ran on {len(calls)} of the {num_batches} batches: go through the whole "
            "loader before returning (is the `return` inside the loop?).",
        )
    if any(training for training, _ in calls):
        fail(
            name,
            "the model was in training mode, so dropout dropped activations at random and the "
            "accuracy changes from run to run: call model.eval() before the loop.",
        )
    if any(grad for _, grad in calls):
        fail(
            name,
            "gradients were tracked during evaluation (memory and time spent for nothing): run "
            "the loop inside `with torch.no_grad():`.",
        )
    modes = {module.training for module in model.modules()}
    if was_training and modes != {True}:
        fail(
            name,
            "the model was in training mode before your function and is left in eval mode, so "
            "training would go on without dropout: remember `was_training = model.training` and "
            "call `model.train(was_training)` at the end.",
        )
    if not was_training and modes != {False}:
        fail(
            name,
            "the model was in eval mode before your function and is left in training mode: "
            "remember `was_training = model.training` and call `model.train(was_training)` at "
            "the end, rather than always model.train().",
        )


def _diagnose_value(name, value, per_batch) -> None:
    correct, total = sum(c for c, _ in per_batch), sum(n for _, n in per_batch)
    expected = correct / total
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            fail(name, f"return one number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    try:
        value = float(value)
    except (TypeError, ValueError):
        fail(name, f"return the accuracy as a float, got {type(value).__name__}")
    if abs(value - expected) < 1e-6:
        return
    mean_of_batches = sum(c / n for c, n in per_batch) / len(per_batch)
    wrong = [
        (
            mean_of_batches,
            f"you averaged the per-batch accuracies ({value:.3f}), but the last batch has only "
            f"{per_batch[-1][1]} examples, so it counts as much as a full one: add up correct "
            "predictions and examples over all batches, then divide once.",
        ),
        (correct, "return the fraction of correct predictions (correct / total), not the count."),
        (100 * expected, "return a fraction between 0 and 1, not a percentage."),
        (
            correct / (len(per_batch) * per_batch[0][1]),
            "you divided by (number of batches x batch size), but the last batch is smaller: "
            "count the examples (labels.numel() per batch) instead.",
        ),
        (
            per_batch[-1][0] / per_batch[-1][1],
            "this is the accuracy of the last batch only: accumulate over every batch.",
        ),
    ]
    for candidate, advice in wrong:
        if abs(value - candidate) < 1e-6:
            fail(name, advice)
    fail(
        name,
        f"expected {correct}/{total} = {expected:.4f}, got {value:.4f}. Predictions are "
        "logits.argmax(-1), compared with batch['labels'].",
    )


# ---------------------------------------------------------------------------------------------
# Exercise 3: the fine-tuning loop
# ---------------------------------------------------------------------------------------------

LOOP_BATCHES, LOOP_LR, LOOP_MAX_GRAD_NORM, LOOP_WARMUP = 4, 0.5, 0.3, 1


def reference_train_epoch(
    model: nn.Module, loader, optimizer: torch.optim.Optimizer, scheduler, max_grad_norm: float
) -> list[float]:
    """One pass over `loader`: for each batch a clipped optimizer step, then a scheduler step.
    Returns the loss of each batch (floats, before its update)."""
    model.train()
    losses = []
    for batch in loader:
        loss = model(**batch).loss
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def _loop_variant(train_mode=True, zero_grad=True, clip=True, schedule="after-step"):
    """The loop with one thing changed (the reference is the default)."""

    def train_epoch(model, loader, optimizer, scheduler, max_grad_norm):
        if train_mode:
            model.train()
        losses = []
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            if schedule == "before-step":
                scheduler.step()
            optimizer.step()
            if schedule == "after-step":
                scheduler.step()
            if zero_grad:
                optimizer.zero_grad()
            losses.append(loss.item())
        return losses

    return train_epoch


_ZERO_GRAD = (
    "the gradients were never zeroed, so each batch's gradients pile onto the previous ones' "
    "(PyTorch *adds* to .grad): call optimizer.zero_grad() once per batch."
)
_NOT_CLIPPED = (
    "the update was not clipped to max_grad_norm: call clip_grad_norm_(model.parameters(), "
    "max_grad_norm) between loss.backward() and optimizer.step() (after the step is too late, "
    "and a fixed norm such as 1.0 is not the argument)."
)
LOOP_MISTAKES = [
    Mistake(_loop_variant(zero_grad=False), _ZERO_GRAD),
    Mistake(_loop_variant(clip=False), _NOT_CLIPPED),
]


def _loop_setup(seed: int):
    """A tiny classifier (dropout on, handed over in eval mode), its batches, SGD and a
    linear warmup/decay schedule over exactly those batches."""
    config = tiny_config(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2, num_labels=3)
    model = BertForSequenceClassification(config).eval()
    generator = torch.Generator().manual_seed(seed)
    examples = _random_examples(LOOP_BATCHES * 4, config.vocab_size, generator, num_labels=3)
    collate = ClassificationCollator(pad_token_id=0)
    loader = [collate(examples[i : i + 4]) for i in range(0, len(examples), 4)]
    optimizer = torch.optim.SGD(model.parameters(), lr=LOOP_LR)
    total = len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / LOOP_WARMUP, (total - step) / (total - LOOP_WARMUP)),
    )
    return model, loader, optimizer, scheduler


def _run_loop(train_epoch: Callable, seed: int = 11) -> dict:
    """Run `train_epoch` once on a fresh setup; record what it did."""
    record = {"modes": [], "lrs": [], "grad_norms": []}

    def before_step(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        record["lrs"].append(optimizer.param_groups[0]["lr"])
        record["grad_norms"].append(
            float(sum(g.norm() ** 2 for g in grads if g is not None)) ** 0.5
        )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, loader, optimizer, scheduler = _loop_setup(seed)
        hooks = [
            model.classifier.register_forward_pre_hook(
                lambda module, args: record["modes"].append(module.training)
            ),
            register_optimizer_step_pre_hook(before_step),
        ]
        try:
            record["losses"] = train_epoch(model, loader, optimizer, scheduler, LOOP_MAX_GRAD_NORM)
        finally:
            for hook in hooks:
                hook.remove()
    record["weights"] = [p.detach().clone() for p in model.parameters()]
    return record


def _same_weights(a: dict, b: dict) -> bool:
    return all(
        torch.allclose(p, q, atol=1e-6, rtol=0)
        for p, q in zip(a["weights"], b["weights"], strict=True)
    )


def check_finetuning_loop(train_epoch: Callable) -> None:
    """Check `train_epoch(model, loader, optimizer, scheduler, max_grad_norm) -> list of losses`
    by its effects: training mode, one clipped step and one scheduler step per batch, gradients
    zeroed, the same weights as the reference afterwards."""
    name = "train_epoch"
    got = call_student(name, _run_loop, train_epoch, refuse=["training_step"])
    expected = _run_loop(reference_train_epoch)
    lrs = [round(lr, 9) for lr in got["lrs"]]
    expected_lrs = [round(lr, 9) for lr in expected["lrs"]]
    diagnoses = [
        (not got["modes"], "the model never ran: call model(**batch) for every batch."),
        (
            not all(got["modes"]),
            "the model was in eval mode (dropout off) while training: call model.train() "
            "before the loop; the model may come from an evaluation that left it in eval mode.",
        ),
        (not lrs, "optimizer.step() never ran: call it once per batch, after loss.backward()."),
        (
            len(lrs) != LOOP_BATCHES,
            f"optimizer.step() ran {len(lrs)} times for {LOOP_BATCHES} batches: one step per "
            "batch.",
        ),
        (
            len(set(lrs)) == 1 < len(set(expected_lrs)),
            "the learning rate never changed: call scheduler.step() after every optimizer.step(), "
            "so warmup and decay happen.",
        ),
        (
            lrs[:-1] == expected_lrs[1:],
            "scheduler.step() ran before optimizer.step(): each step then uses the next step's "
            "learning rate (the first one is skipped). Call it right after optimizer.step().",
        ),
        (
            lrs != expected_lrs,
            f"the learning rates at each step were {lrs}; expected {expected_lrs}: call "
            "scheduler.step() once per batch, right after optimizer.step().",
        ),
        (max(got["grad_norms"], default=0.0) > LOOP_MAX_GRAD_NORM * 1.001, _NOT_CLIPPED),
        (
            not all(isinstance(x, float) for x in got["losses"] or [None]),
            "return a list with one float per batch, loss.item(): a tensor keeps its graph alive.",
        ),
    ]
    diagnose(name, diagnoses)
    if not _same_weights(got, expected):
        for mistake in LOOP_MISTAKES:
            if _same_weights(got, _run_loop(mistake.wrong)):
                fail(name, mistake.advice)
        fail(
            name,
            "the weights after the epoch differ from the reference: for each batch, "
            "loss.backward(), clip, optimizer.step(), scheduler.step(), optimizer.zero_grad().",
        )
    passed(
        name,
        f"{LOOP_BATCHES} steps in training mode, learning rates {expected_lrs}, clipped, "
        "gradients zeroed",
    )
