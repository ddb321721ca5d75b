"""Checks for chapter 09: attention entropy per head, heads with a role, a linear probe.

    check_attention_entropy(attention_entropy)
        # (weights (batch, heads, q, k), attention_mask (batch, seq)) -> (heads,) nats
    check_head_roles(head_roles)
        # (attentions: per layer (batch, heads, q, k), batch, tokenizer)
        #  -> {"[CLS]", "[SEP]", "previous", "next": (layers, heads)}
    check_probe(train_probe)
        # (features_train, labels_train, features_test, labels_test, steps, lr) -> test accuracy

`check_attention_entropy` compares the student's function with the reference on random padded
batches (a row of exact zeros wherever a key is padding, and one head of exact one-hot rows) and
names the usual mistakes: log base 2 (bits, not nats), NaN from 0 * log 0, padded queries
averaged in, the entropy taken over the query axis, a sum instead of a mean over the queries,
a mean of per-sentence means, a lost minus sign, or a result per sentence instead of per head.

`check_head_roles` compares the student's scores with the reference on random padded batches of
sentence pairs (two [SEP] each; one head leans on the previous token, one on [SEP]) and names:
padded queries averaged in, queries without such a key counted as 0, a padding position taken as
the last token's next one, previous and next swapped, the attention *from* [CLS]/[SEP] instead of
to them, only the first [SEP], a mean of per-sentence means, a sum instead of a mean; and a result
that is not a dict of (layers, heads) tensors, or weights changed in place. bertmini has no
head-role function of its own, so there is nothing to refuse.

`check_probe` cannot compare numbers with a reference (optimisers and initialisations differ),
so it runs the student's probe on small synthetic data sets whose right answer is known and far
from every wrong one:

* separable data with 2 and then 3 classes: a probe that trains must reach >= 90% test accuracy
  (a probe with two outputs hard-coded cannot pass the 3-class set);
* random labels that a linear map can memorise (40 points in 64 dimensions): test accuracy must
  stay near chance (<= 65%), since nothing carries over from training to test points;
* a *flipped* set, where the test labels follow the opposite rule to the training labels: a
  probe trained on the training set only scores near 0%; one that trained on the test set, or
  measured accuracy on the training set, scores near 100%; one trained on both, near 50%;
* a set whose training labels follow a rule and whose test labels are random tells those two
  leaks apart (accuracy on the training set is high there, on the test set is not).

The features are leaf tensors that require gradients: after the call their `.grad` must still be
None (the probe must not backpropagate into the representation it measures), and their values
must be unchanged. Every call runs under a fixed torch seed, restored afterwards. A hook on every
optimizer step records the gradient norm the step sees: as the loss falls it must shrink, so a
probe that never calls `optimizer.zero_grad()` (its gradients pile up and the norm grows) is
named even though it may still reach a good accuracy.
"""

import math
from collections.abc import Callable
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from . import CheckFailed, Mistake, call_student, compare, difference, fail, passed

# ---------------------------------------------------------------------------------------------
# Exercise 1: attention entropy
# ---------------------------------------------------------------------------------------------


def reference_attention_entropy(weights: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean entropy (nats) of each head's attention rows, over the real query positions.

    weights: (batch, heads, q, k), rows summing to 1, exact zeros at padded keys;
    attention_mask: (batch, seq) with 1 = real token, 0 = padding (seq = q = k).
    Returns (heads,): for each head, the mean over every real query of every sentence of
    H = -sum_j p_j log p_j, with 0 log 0 = 0.
    """
    plogp = torch.where(weights > 0, weights * weights.clamp_min(1e-30).log(), 0.0)
    entropy = -plogp.sum(dim=-1)  # (batch, heads, q)
    real = attention_mask[:, None, :].to(entropy.dtype)  # (batch, 1, q)
    return (entropy * real).sum(dim=(0, 2)) / real.sum()


def _row_entropy(weights: Tensor, dim: int = -1) -> Tensor:
    return -torch.where(weights > 0, weights * weights.clamp_min(1e-30).log(), 0.0).sum(dim=dim)


def _real(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    return attention_mask[:, None, :].to(dtype)  # (batch, 1, q)


def make_entropy_inputs(
    generator: torch.Generator, batch: int = 4, heads: int = 4, seq: int = 9
) -> tuple[Tensor, Tensor]:
    """A padded batch of attention weights as a BERT layer makes them.

    Sentence lengths differ (the first is full length, the others are padded). Padded keys get
    weight exactly 0 (their score is -inf before the softmax); padded *queries* still have a
    normal row over the real keys, as in bertmini and Hugging Face. Heads range from broad to
    sharp; the last head puts all of each row on the previous real token (one-hot rows).
    Returns (weights (batch, heads, seq, seq), attention_mask (batch, seq) int64).
    """
    lengths = torch.randint(3, seq, (batch,), generator=generator)
    lengths[0] = seq
    attention_mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()  # (batch, seq)
    temperature = torch.tensor([0.3, 1.0, 4.0, 1.0])[:heads].view(1, heads, 1, 1)
    scores = torch.randn(batch, heads, seq, seq, generator=generator) * temperature
    # One-hot rows on the previous real token (the last real one, for padded queries).
    target = torch.minimum((torch.arange(seq) - 1).clamp(min=0), lengths[:, None] - 1)
    previous = target[:, :, None] == torch.arange(seq)  # (batch, q, k)
    scores[:, -1] = torch.where(previous, 0.0, float("-inf"))
    keys = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, seq)
    scores = scores.masked_fill(~keys, float("-inf"))
    return torch.softmax(scores, dim=-1), attention_mask


_ENTROPY_MISTAKES = [
    Mistake(
        lambda w, m: reference_attention_entropy(w, m) / math.log(2),
        "your entropies are in bits (log base 2): use the natural log (`torch.log`), so that a "
        "uniform row over n tokens has entropy log(n) nats.",
    ),
    Mistake(
        lambda w, m: -reference_attention_entropy(w, m),
        "your entropies are negative: H = -sum_j p_j log p_j (log p <= 0, so the minus sign "
        "makes H >= 0).",
    ),
    Mistake(
        lambda w, m: _row_entropy(w).mean(dim=(0, 2)),
        "you averaged over every query position, padding included: padded queries are not "
        "words, yet their rows still look like real attention. Sum -p log p over the keys "
        "(dim=-1), then average over the positions where attention_mask is 1 (multiply by "
        "the mask, divide by its sum).",
    ),
    Mistake(
        lambda w, m: (_row_entropy(w, dim=-2) * _real(m, w.dtype)).sum(dim=(0, 2)) / m.sum(),
        "you summed over the query axis (dim=-2): each *row* (one query, all keys) is a "
        "probability distribution, so sum -p log p over the keys, the last axis (dim=-1).",
    ),
    Mistake(
        lambda w, m: (_row_entropy(w) * _real(m, w.dtype)).sum(dim=(0, 2)),
        "you summed the entropies over the queries: take the mean over the real query "
        "positions (divide by the number of real tokens, attention_mask.sum()).",
    ),
    Mistake(
        lambda w, m: (_row_entropy(w) * _real(m, w.dtype)).sum(dim=2).mean(dim=0),
        "you summed the entropies over each sentence's queries (then averaged over the batch): "
        "take the mean over the real query positions instead.",
    ),
    Mistake(
        lambda w, m: (
            (_row_entropy(w) * _real(m, w.dtype)).sum(dim=2) / m.sum(dim=1, keepdim=True)
        ).mean(dim=0),
        "you averaged each sentence first, then the sentences: short sentences then weigh as "
        "much as long ones. Average over all real query positions of the batch at once: "
        "(entropy * mask).sum over batch and queries, divided by mask.sum().",
    ),
]


def check_attention_entropy(attention_entropy_fn: Callable) -> None:
    """Check `attention_entropy(weights, attention_mask) -> (heads,)` against the reference."""
    name = "attention_entropy"
    weights, attention_mask = make_entropy_inputs(torch.Generator().manual_seed(99))
    batch, heads = weights.shape[:2]
    original = weights.clone()
    got = call_student(name, attention_entropy_fn, weights, attention_mask)
    if not torch.equal(weights, original):
        fail(name, "your function changed `weights` in place; compute on a copy.")
    if not isinstance(got, Tensor):
        fail(name, f"return a tensor of shape ({heads},), got {type(got).__name__}")
    if got.shape == (batch, heads):
        fail(
            name,
            f"you returned one value per sentence and head {tuple(got.shape)}: average over "
            f"the batch too, to get one mean entropy per head ({heads},).",
        )
    if got.shape != (heads,):
        fail(name, f"expected shape ({heads},), one value per head, got {tuple(got.shape)}")
    if torch.isnan(got).any():
        fail(
            name,
            "your result has NaN: padded keys have weight exactly 0, and 0 * log(0) = "
            "0 * -inf = NaN in floating point. By definition 0 log 0 = 0: use "
            "`torch.where(p > 0, p * p.log(), 0.0)` or `p * p.clamp_min(1e-12).log()`.",
        )
    compare(
        name,
        attention_entropy_fn,
        reference_attention_entropy,
        make_entropy_inputs,
        _ENTROPY_MISTAKES,
        atol=1e-4,
    )
    passed(name, f"{heads} heads, from {float(got.min()):.2f} to {float(got.max()):.2f} nats")


# ---------------------------------------------------------------------------------------------
# Exercise 2: a probing classifier
# ---------------------------------------------------------------------------------------------


def reference_train_probe(
    features_train: Tensor,
    labels_train: Tensor,
    features_test: Tensor,
    labels_test: Tensor,
    steps: int = 200,
    lr: float = 0.05,
) -> float:
    """Logistic regression on frozen features: train on the training set, score the test set.

    features_*: (n, dim) float; labels_*: (n,) int64 class ids. Full-batch Adam for `steps`
    steps on the cross-entropy of an nn.Linear(dim, num_classes). Returns the test accuracy.
    """
    features_train, features_test = features_train.detach(), features_test.detach()
    num_classes = int(labels_train.max()) + 1
    probe = nn.Linear(features_train.shape[1], num_classes)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(probe(features_train), labels_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predictions = probe(features_test).argmax(dim=-1)
    return (predictions == labels_test).float().mean().item()


def _clusters(generator, num_classes, dim, n, spread=1.0):
    """Gaussian clusters around fixed, well separated centres: (features, labels)."""
    centres = torch.eye(dim)[:num_classes] * 4.0  # pairwise distance 5.7 standard deviations
    labels = torch.arange(n) % num_classes
    labels = labels[torch.randperm(n, generator=generator)]
    features = centres[labels] + spread * torch.randn(n, dim, generator=generator)
    return features, labels


def probe_datasets() -> dict[str, tuple[Tensor, Tensor, Tensor, Tensor]]:
    """The synthetic sets of `check_probe`: name -> (features_train, labels_train,
    features_test, labels_test). Fixed seeds: the same tensors every time."""
    g = torch.Generator().manual_seed(2024)
    sets = {}
    for name, classes in (("separable-2", 2), ("separable-3", 3)):
        x_train, y_train = _clusters(g, classes, 16, 150)
        x_test, y_test = _clusters(g, classes, 16, 300)
        sets[name] = (x_train, y_train, x_test, y_test)
    # Random labels: 40 points in 64 dimensions can always be separated, but nothing transfers.
    sets["random"] = (
        torch.randn(40, 64, generator=g),
        torch.randint(2, (40,), generator=g),
        torch.randn(400, 64, generator=g),
        torch.randint(2, (400,), generator=g),
    )
    # Flipped: the test labels follow the opposite rule to the training labels.
    x_train, x_test = torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g)
    sets["flipped"] = (x_train, (x_train[:, 0] < 0).long(), x_test, (x_test[:, 0] > 0).long())
    # Learnable training labels, random test labels (far too many test points to memorise).
    x_train, x_test = torch.randn(300, 4, generator=g), torch.randn(2000, 4, generator=g)
    sets["random-test"] = (
        x_train,
        (x_train[:, 0] > 0).long(),
        x_test,
        torch.randint(2, (2000,), generator=g),
    )
    return sets


def _run_probe(name: str, train_probe_fn: Callable, data, steps: int, lr: float) -> float:
    x_train, y_train, x_test, y_test = (t.clone() for t in data)
    x_train.requires_grad_(True)
    x_test.requires_grad_(True)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        # Tiny matrices: one thread is faster, and much faster on a busy machine.
        torch.set_num_threads(1)
        hook = register_optimizer_step_pre_hook(_record_gradient_norm)
        _gradient_norms.clear()
        try:
            result = call_student(
                name, train_probe_fn, x_train, y_train.clone(), x_test, y_test.clone(), steps, lr
            )
        except CheckFailed as failure:
            error = failure.__cause__
            if isinstance(error, IndexError) and "out of bounds" in str(error):
                fail(
                    name,
                    f"cross_entropy says '{error}': a label is >= the number of outputs of your "
                    "nn.Linear. Give it one output per class, num_classes = "
                    "labels_train.max() + 1, not a fixed 2.",
                )
            raise
        finally:
            hook.remove()
            torch.set_num_threads(threads)
    _diagnose_gradient_norms(name, list(_gradient_norms))
    if x_train.grad is not None or x_test.grad is not None:
        fail(
            name,
            "gradients flowed into the features (`features.grad` is set): a probe measures a "
            "frozen representation, so `.detach()` the features before training on them; only "
            "the probe's own weights may learn.",
        )
    if not (torch.equal(x_train.detach(), data[0]) and torch.equal(x_test.detach(), data[2])):
        fail(name, "your function changed the features in place; leave them as they are.")
    if isinstance(result, Tensor):
        if result.numel() != 1:
            fail(
                name,
                f"return one number (the test accuracy), got a tensor of shape "
                f"{tuple(result.shape)}",
            )
        result = result.item()
    if not isinstance(result, (int, float)) or isinstance(result, bool):
        fail(name, f"return the test accuracy as a float, got {type(result).__name__}")
    result = float(result)
    if not 0.0 <= result <= 1.0:
        fail(
            name,
            f"you returned {result:g}: the accuracy is the *fraction* of test points classified "
            "right, between 0 and 1 (a mean, not a count).",
        )
    return result


_gradient_norms: list[float] = []  # the gradient norm seen by each optimizer step of a probe


def _record_gradient_norm(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
    _gradient_norms.append(float(sum(g.norm() ** 2 for g in grads if g is not None) ** 0.5))


def _diagnose_gradient_norms(name: str, norms: list[float]) -> None:
    """On the probe's data the loss falls, so each step's gradient shrinks. Gradients that are
    never zeroed add up instead: the last step then sees more than the first."""
    if len(norms) >= 20 and norms[-1] > norms[0]:
        fail(
            name,
            f"the gradient your optimizer steps on grew from {norms[0]:.3g} (first step) to "
            f"{norms[-1]:.3g} (last step) while the loss fell: the gradients accumulate "
            "across steps. PyTorch *adds* each backward() to .grad, so call "
            "optimizer.zero_grad() in every step, before loss.backward().",
        )


def check_probe(train_probe_fn: Callable, steps: int = 200, lr: float = 0.05) -> None:
    """Check `train_probe(features_train, labels_train, features_test, labels_test, steps, lr)`
    -> test accuracy, on synthetic sets whose right answer is known (see the module docstring)."""
    name = "train_probe"
    sets = probe_datasets()
    accuracy = {
        key: _run_probe(name, train_probe_fn, data, steps, lr) for key, data in sets.items()
    }

    if accuracy["separable-2"] < 0.9:
        fail(
            name,
            f"on two well separated clusters your probe scored {accuracy['separable-2']:.0%} on "
            "the test points (a trained linear probe gets ~100%): it did not learn. In each of "
            "the `steps` steps: loss = cross_entropy(probe(features_train), labels_train); "
            "optimizer.zero_grad(); loss.backward(); optimizer.step(). Predict with argmax.",
        )
    if accuracy["separable-3"] < 0.9:
        fail(
            name,
            f"with 3 classes your probe scored {accuracy['separable-3']:.0%} (2 classes: "
            f"{accuracy['separable-2']:.0%}): give nn.Linear one output per class, "
            "num_classes = labels_train.max() + 1, not a fixed 2.",
        )
    if accuracy["flipped"] > 0.3:
        if accuracy["flipped"] < 0.7:
            fail(
                name,
                f"on a set whose test labels follow the opposite rule to its training labels, "
                f"you scored {accuracy['flipped']:.0%}, as if trained on training and test "
                "points together. Train on features_train/labels_train only: the test set is "
                "for measuring, never for fitting.",
            )
        if accuracy["random-test"] > 0.8:
            fail(
                name,
                f"you measured the accuracy on the training set: with random test labels you "
                f"scored {accuracy['random-test']:.0%} (the test set gives ~50%). A probe is "
                "judged on points it never saw: predict features_test, compare with labels_test.",
            )
        fail(
            name,
            f"you trained on the test set: where the test labels follow the opposite rule to "
            f"the training labels you scored {accuracy['flipped']:.0%} (training on the "
            "training set gives ~0%). Fit the probe on features_train/labels_train, then only "
            "predict features_test.",
        )
    if accuracy["random"] > 0.65 or accuracy["random-test"] > 0.65:
        fail(
            name,
            f"on random labels you scored {max(accuracy['random'], accuracy['random-test']):.0%}"
            " instead of ~50%: measure accuracy on the test set only, with a probe fitted on "
            "the training set only.",
        )
    passed(
        name,
        f"separable data {accuracy['separable-3']:.0%} (3 classes), random labels "
        f"{accuracy['random']:.0%} (chance 50%), flipped rule {accuracy['flipped']:.0%}",
    )


# ---------------------------------------------------------------------------------------------
# Exercise 2: heads with a role
# ---------------------------------------------------------------------------------------------

ROLES = ("[CLS]", "[SEP]", "previous", "next")
CLS_ID, SEP_ID, PAD_ID = 2, 3, 0


def _role_keys(input_ids: Tensor, tokenizer, previous=-1, next_=1) -> dict[str, Tensor]:
    """{role: (batch, q, k) bool}: the keys that count as the role's, for each query."""
    batch, seq = input_ids.shape
    column = lambda token_id: (input_ids == token_id)[:, None, :].expand(-1, seq, -1)  # noqa: E731
    offset = lambda k: torch.ones(seq - abs(k)).diag(k).bool().expand(batch, -1, -1)  # noqa: E731
    return {
        "[CLS]": column(tokenizer.cls_token_id),
        "[SEP]": column(tokenizer.sep_token_id),
        "previous": offset(previous),
        "next": offset(next_),
    }


def _roles(attentions, batch, tokenizer, **mistake) -> dict[str, Tensor]:
    """`reference_head_roles`, or (with a keyword) one of the ways it goes wrong."""
    weights = torch.stack(attentions, dim=1)  # (batch, layers, heads, q, k)
    if mistake.get("from_role"):  # the role token's own row instead of its column
        weights = weights.transpose(-1, -2)
    ids, real = batch["input_ids"], batch["attention_mask"].bool()  # (batch, seq)
    if mistake.get("first_sep"):  # only the first [SEP] of each sentence
        ids = torch.where((ids == SEP_ID).cumsum(1) > 1, PAD_ID, ids)
    flip = -1 if mistake.get("swapped") else 1
    roles = {}
    for role, keys in _role_keys(ids, tokenizer, -flip, flip).items():
        keys = keys if mistake.get("padded_keys") else keys & real[:, None, :]
        has_key = keys.any(-1) if not mistake.get("every_query") else torch.ones_like(real)
        valid = (has_key & (real | bool(mistake.get("padded_queries")))).float()  # (batch, q)
        mass = (weights * keys[:, None, None].float()).sum(-1)  # (batch, layers, heads, q)
        total = (mass * valid[:, None, None]).sum(-1)  # (batch, layers, heads)
        if mistake.get("per_sentence"):
            roles[role] = (total / valid.sum(-1).clamp(min=1)[:, None, None]).mean(0)
        else:
            roles[role] = total.sum(0) / (1 if mistake.get("summed") else valid.sum())
    return roles


def reference_head_roles(attentions, batch: dict, tokenizer) -> dict[str, Tensor]:
    """For each head, the mean attention mass a real query puts on each role's keys.

    attentions: a tuple with one (batch, heads, q, k) tensor per layer; batch: input_ids and
    attention_mask (batch, seq); tokenizer: gives cls_token_id and sep_token_id.
    Returns {"[CLS]", "[SEP]", "previous", "next": (layers, heads)}: the weight on [CLS], on
    any [SEP], on the token just before, just after, averaged over the real queries that have
    such a real key (the first token has no previous one; the last real token no next one).
    """
    return _roles(attentions, batch, tokenizer)


def make_roles_inputs(generator: torch.Generator, batch=4, seq=9, layers=2, heads=3) -> tuple:
    """(attentions, batch, tokenizer) like a padded BERT batch of sentence pairs: [CLS] A [SEP]
    B [SEP] [PAD]...; padded keys get weight 0. Heads range from broad to sharp, and in each
    layer one head leans on the previous token and one on [SEP]."""
    lengths = torch.randint(5, seq + 1, (batch,), generator=generator)
    lengths[0] = seq
    positions = torch.arange(seq)[None, :]
    real = positions < lengths[:, None]  # (batch, seq)
    ids = torch.randint(5, 30, (batch, seq), generator=generator)
    ids[:, 0] = CLS_ID
    ids[(positions == lengths[:, None] // 2) | (positions == lengths[:, None] - 1)] = SEP_ID
    ids[~real] = PAD_ID
    attentions = []
    for _ in range(layers):
        scores = torch.randn(batch, heads, seq, seq, generator=generator)
        scores *= torch.tensor([0.5, 2.0, 1.0, 1.0])[:heads].view(1, heads, 1, 1)
        scores[:, 0] += 3.0 * torch.ones(seq - 1).diag(-1)  # leans on the previous token
        scores[:, -1] += 3.0 * (ids == SEP_ID)[:, None, :]  # leans on [SEP]
        scores = scores.masked_fill(~real[:, None, None, :], float("-inf"))
        attentions.append(torch.softmax(scores, dim=-1))
    mask = real.long()
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    tokenizer = SimpleNamespace(cls_token_id=CLS_ID, sep_token_id=SEP_ID)
    return tuple(attentions), inputs, tokenizer


def _role_mistake(advice: str, **choice) -> Mistake:
    return Mistake(lambda a, b, t: _roles(a, b, t, **choice), advice)


ROLE_MISTAKES = [
    _role_mistake(
        "padded queries counted in your mean: their rows look like attention but they are not "
        "words. Average only over queries where attention_mask is 1.",
        padded_queries=True,
    ),
    _role_mistake(
        "you averaged over every real query, also those that have no such key (the first "
        "token has no previous one, the last real token no next one), which counts them as 0. "
        "Average over the real queries that have a real key of that role.",
        every_query=True,
    ),
    _role_mistake(
        "a padding position counted as a key: the last real token of a padded sentence has no "
        "next *real* token. Keep only real keys (attention_mask 1) before deciding which "
        "queries have a key of that role.",
        padded_keys=True,
    ),
    _role_mistake(
        "previous and next are swapped: query i's previous token is key i - 1, which is the "
        "diagonal just *below* the main one (row i, column i - 1).",
        swapped=True,
    ),
    _role_mistake(
        "you measured the attention *from* [CLS]/[SEP] (their rows) instead of *to* them: the "
        "role's keys are columns (last axis), for every query row.",
        from_role=True,
    ),
    _role_mistake(
        "only the first [SEP] of each sentence counted: a pair has two, and the role is the "
        "weight on either (input_ids == sep_token_id marks both).",
        first_sep=True,
    ),
    _role_mistake(
        "you averaged each sentence first, then the sentences: short sentences then weigh as "
        "much as long ones. Average over all valid queries of the batch at once.",
        per_sentence=True,
    ),
    _role_mistake(
        "you summed the masses over the queries: divide by the number of valid queries to get "
        "a mean share between 0 and 1.",
        summed=True,
    ),
]


def _roles_result(name: str, got, heads_shape: tuple) -> dict[str, Tensor]:
    """The student's result, if it is a dict of (layers, heads) tensors with the four roles."""
    if not isinstance(got, dict) or set(got) != set(ROLES):
        keys = sorted(got) if isinstance(got, dict) else type(got).__name__
        fail(name, f"return a dict with the keys {list(ROLES)}; got {keys}")
    for role in ROLES:
        if not isinstance(got[role], Tensor) or tuple(got[role].shape) != heads_shape:
            shape = tuple(got[role].shape) if isinstance(got[role], Tensor) else got[role]
            fail(name, f"{role!r}: expected one score per (layer, head), {heads_shape}; got "
                 f"{shape}")  # fmt: skip
    return got


def check_head_roles(head_roles_fn: Callable) -> None:
    """Check `head_roles(attentions, batch, tokenizer) -> {role: (layers, heads)}` against the
    reference on random padded batches with two [SEP] each."""
    name = "head_roles"
    for trial in range(3):
        inputs = make_roles_inputs(torch.Generator().manual_seed(40 + trial))
        originals = [a.clone() for a in inputs[0]]
        got = call_student(name, head_roles_fn, *inputs)
        if not all(torch.equal(a, o) for a, o in zip(inputs[0], originals, strict=True)):
            fail(name, "your function changed the attention weights in place; use a copy.")
        expected = reference_head_roles(*inputs)
        got = _roles_result(name, got, tuple(expected["[CLS]"].shape))
        if all(difference(got[r], expected[r], 1e-5) is None for r in ROLES):
            continue
        for mistake in ROLE_MISTAKES:
            wrong = mistake.wrong(*inputs)
            if all(difference(got[r], wrong[r], 1e-5) is None for r in ROLES):
                fail(name, mistake.advice)
        role = next(r for r in ROLES if difference(got[r], expected[r], 1e-5))
        fail(name, difference(got[role], expected[role], 1e-5, f"your {role!r} scores") + "\n"
             "   Per role: the keys that count, only real ones; the queries that have one, only "
             "real ones; the mean weight on those keys over those queries.")  # fmt: skip
    passed(name, f"{len(ROLES)} roles for every head, on 3 padded batches")
