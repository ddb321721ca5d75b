"""Checks for chapters 00 and 01: softmax, scaled dot-product attention, multi-head attention.

Each check runs the student's function next to bertmini's reference on fresh random inputs and,
when the answers differ, recomputes the usual wrong answers (no 1/sqrt(d_k), softmax over the
wrong axis, the mask applied after the softmax, heads split without a transpose, ...) to say
which one the student made. While the student's function runs, bertmini's own version refuses to
run, and in the softmax check so does PyTorch's (chapter 00 asks for it built from exp and sum).

    check_softmax(softmax)                                        # softmax(scores, dim=-1)
    check_scaled_dot_product_attention(scaled_dot_product_attention)  # (q, k, v, mask) -> (out, w)
    check_multi_head_attention(multi_head_attention)
        # (x, w_qkv, b_qkv, w_out, b_out, num_heads, mask) -> out (batch, seq, hidden)
"""

import contextlib
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..attention import MultiHeadAttention, scaled_dot_product_attention
from ..guard import refuse_if_checked
from . import Mistake, call_student, compare, fail, passed

# ---------------------------------------------------------------------------------------------
# softmax (the warm-up exercise of chapter 00)


def _reference_softmax(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.softmax(scores, dim=dim)


def _softmax_inputs(generator: torch.Generator) -> tuple:
    return (torch.randn(3, 4, 5, generator=generator) * 3,)


def _softmax_over(scores: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax written out (so that it runs inside the check, where torch.softmax refuses)."""
    exponentials = (scores - scores.amax(dim=dim, keepdim=True)).exp()
    return exponentials / exponentials.sum(dim=dim, keepdim=True)


_SOFTMAX_MISTAKES = [
    Mistake(
        lambda s, dim=-1: _softmax_over(s, dim=0),
        "you normalised over the first axis (dim=0): each row of the last axis must sum to 1, "
        "so sum over `dim` (the last axis by default), e.g. `.sum(dim=dim, keepdim=True)`.",
    ),
    Mistake(
        lambda s, dim=-1: _softmax_over(s, dim=-2),
        "you normalised over the wrong axis (dim=-2): sum the exponentials over `dim`, "
        "the last axis by default.",
    ),
    Mistake(
        lambda s, dim=-1: s.exp(),
        "you forgot to divide by the sum: softmax(x)_i = exp(x_i) / sum_j exp(x_j).",
    ),
    Mistake(
        lambda s, dim=-1: s / s.sum(dim=dim, keepdim=True),
        "you divided the raw scores by their sum; take exp() first so every weight is positive.",
    ),
    Mistake(
        lambda s, dim=-1: s.exp() / s.exp().sum(),
        "you divided by the sum over the whole tensor; divide by the sum along `dim` only "
        "(`keepdim=True` keeps the shape broadcastable).",
    ),
]


# Chapter 00 asks for softmax built from exp and sum, so while the student's softmax runs,
# PyTorch's own refuses (the reference and the mistakes, run outside, still use it).
TORCH_SOFTMAXES = tuple(
    (owner, name)
    for owner in (torch, F, torch.Tensor, torch.special)
    for name in ("softmax", "log_softmax")
)


@contextlib.contextmanager
def _torch_softmax_guarded():
    """Within this block, PyTorch's softmaxes refuse to run while the softmax check is on."""

    def guarded(original: Callable) -> Callable:
        def softmax(*args, **kwargs):
            refuse_if_checked("softmax", owner="PyTorch")
            return original(*args, **kwargs)

        return softmax

    originals = [(owner, name, vars(owner).get(name)) for owner, name in TORCH_SOFTMAXES]
    for owner, name, _ in originals:
        setattr(owner, name, guarded(getattr(owner, name)))
    try:
        yield
    finally:
        for owner, name, original in originals:
            if original is None:  # inherited (Tensor.softmax comes from the C base class)
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def check_softmax(softmax: Callable) -> None:
    """Check `softmax(scores, dim=-1)`: exp, then divide by the sum along `dim`.

    Also checks that large scores (hundreds) do not overflow into inf/NaN. PyTorch's softmax
    refuses to run inside the student's function: the exercise is to build it.
    """
    name = "softmax"
    with _torch_softmax_guarded():
        compare(
            name, softmax, _reference_softmax, _softmax_inputs, _SOFTMAX_MISTAKES, refuse=[name]
        )
        large = torch.tensor([[500.0, 498.0, 100.0], [-300.0, -301.0, -800.0]])
        got = call_student(name, softmax, large, refuse=[name])
        if isinstance(got, torch.Tensor) and torch.isfinite(got[0]).all() and got[1].isnan().all():
            fail(
                name,
                "the row [-300, -301, -800] gave NaN: you subtracted the maximum of the whole "
                "tensor (500), so that row's exponentials all underflow to 0 and 0/0 = NaN. "
                "Subtract each row's own maximum: scores.max(dim=dim, keepdim=True).values.",
            )
        if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
            fail(
                name,
                "exp() overflowed on large scores (exp(500) is inf in float32) and gave inf/NaN. "
                "Subtract the row maximum first: softmax(x) = softmax(x - max(x)), the same "
                "numbers but exp() never sees anything above 0.",
            )
        compare(
            name,
            softmax,
            _reference_softmax,
            lambda g: (torch.randn(4, 6, generator=g) * 200,),
            _SOFTMAX_MISTAKES,
            refuse=[name],
        )
    passed(name, "rows sum to 1, and large scores do not overflow")


# ---------------------------------------------------------------------------------------------
# scaled dot-product attention


def _mask_scores(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return scores
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)


def _no_scaling(q, k, v, mask=None):
    weights = _mask_scores(q @ k.transpose(-2, -1), mask).softmax(-1)
    return weights @ v, weights


def _scaled_by_d_k(q, k, v, mask=None):
    weights = _mask_scores(q @ k.transpose(-2, -1) / q.size(-1), mask).softmax(-1)
    return weights @ v, weights


def _softmax_over_queries(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    weights = _mask_scores(scores, mask).softmax(-2)
    return weights @ v, weights


def _mask_after_softmax(q, k, v, mask=None):
    weights = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights


def _mask_polarity_flipped(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    weights = _mask_scores(scores, None if mask is None else ~mask).softmax(-1)
    return weights @ v, weights


def _mask_multiplied(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores * mask
    weights = scores.softmax(-1)
    return weights @ v, weights


def _sdpa_inputs_maker(with_mask: bool) -> Callable:
    def make(generator: torch.Generator) -> tuple:
        # seq_q != seq_k and d_k != d_v, so that a swapped axis shows up in the shapes or values
        batch, heads, seq_q, seq_k, d_k, d_v = 2, 3, 4, 6, 16, 5
        q = torch.randn(batch, heads, seq_q, d_k, generator=generator)
        k = torch.randn(batch, heads, seq_k, d_k, generator=generator)
        v = torch.randn(batch, heads, seq_k, d_v, generator=generator)
        if not with_mask:
            return q, k, v, None
        lengths = torch.tensor([seq_k - 1, seq_k - 3])  # 1 and 3 padding keys at the end
        mask = (torch.arange(seq_k)[None, :] < lengths[:, None])[:, None, None, :]
        return q, k, v, mask  # mask: (batch, 1, 1, seq_k), True = real key

    return make


_SDPA_MISTAKES = [
    Mistake(
        _no_scaling,
        "you forgot to divide the scores by sqrt(d_k): without it the scores grow with the "
        "head size and the softmax saturates. Use `q @ k.transpose(-2, -1) / math.sqrt(d_k)`.",
    ),
    Mistake(
        _scaled_by_d_k,
        "you divided the scores by d_k; divide by sqrt(d_k), which is what brings the variance "
        "of the dot products back to 1.",
    ),
    Mistake(
        _softmax_over_queries,
        "the softmax runs over the wrong axis (dim=-2, the queries): each query's weights over "
        "the keys must sum to 1, so use softmax(dim=-1).",
    ),
    Mistake(
        _mask_after_softmax,
        "the mask is applied after the softmax: zeroing weights afterwards leaves rows that no "
        "longer sum to 1. Fill the masked scores with a huge negative number (or -inf) *before* "
        "the softmax, e.g. `scores.masked_fill(~mask, float('-inf'))`.",
    ),
    Mistake(
        _mask_polarity_flipped,
        "the mask polarity is flipped: True means 'may attend' (a real token), False means "
        "padding. Mask out where the mask is False: `scores.masked_fill(~mask, ...)`.",
    ),
    Mistake(
        _mask_multiplied,
        "the masked scores became 0 (multiplied by the mask, or filled with 0): a score of 0 "
        "still gets exp(0) = 1 of weight. Masked scores must become -inf (or a huge negative "
        "number such as torch.finfo(scores.dtype).min) before the softmax.",
    ),
]


def check_scaled_dot_product_attention(attention: Callable) -> None:
    """Check `attention(q, k, v, mask=None) -> (output, weights)` without and with a mask.

    q (..., seq_q, d_k), k (..., seq_k, d_k), v (..., seq_k, d_v); mask bool broadcastable to
    (..., seq_q, seq_k), True = may attend. output (..., seq_q, d_v), weights (..., seq_q, seq_k).
    """
    name = "scaled_dot_product_attention"
    for with_mask in (False, True):
        compare(
            name,
            attention,
            scaled_dot_product_attention,
            _sdpa_inputs_maker(with_mask),
            _SDPA_MISTAKES,
            refuse=[name],
            names=("output", "weights"),
        )
    passed(name, "output and weights match, with and without a padding mask")


# ---------------------------------------------------------------------------------------------
# multi-head attention


def _reference_multi_head(x, w_qkv, b_qkv, w_out, b_out, num_heads, mask=None):
    """bertmini's MultiHeadAttention with these weights loaded (the fast path)."""
    hidden = x.size(-1)
    module = MultiHeadAttention(hidden, num_heads).eval()
    with torch.no_grad():
        module.qkv.weight.copy_(w_qkv)
        module.qkv.bias.copy_(b_qkv)
        module.out.weight.copy_(w_out)
        module.out.bias.copy_(b_out)
        output, _ = module(x, mask)
    return output


def _multi_head_variant(
    split_heads: str = "correct",
    scale: str = "head_size",
    merge_heads: str = "correct",
    qkv_layout: str = "blocks",
    project_out: bool = True,
    qkv_bias: bool = True,
) -> Callable:
    """A multi-head attention with one step done wrong (the rest written as the reference)."""

    def forward(x, w_qkv, b_qkv, w_out, b_out, num_heads, mask=None):
        batch, seq, hidden = x.shape
        head_size = hidden // num_heads
        qkv = x @ w_qkv.T + (b_qkv if qkv_bias else 0)  # (batch, seq, 3*hidden)
        if qkv_layout == "blocks":
            q, k, v = qkv.split(hidden, dim=-1)
        else:  # interleaved: [q0 k0 v0 q1 k1 v1 ...]
            q, k, v = qkv.view(batch, seq, hidden, 3).unbind(-1)

        def split(t):  # (batch, seq, hidden) -> (batch, heads, seq, head_size)
            if split_heads == "no_transpose":
                return t.reshape(batch, num_heads, seq, head_size)
            return t.view(batch, seq, num_heads, head_size).transpose(1, 2)

        q, k, v = split(q), split(k), split(v)
        divisor = {"head_size": math.sqrt(head_size), "hidden": math.sqrt(hidden), "none": 1.0}
        scores = _mask_scores(q @ k.transpose(-2, -1) / divisor[scale], mask)
        context = scores.softmax(-1) @ v  # (batch, heads, seq, head_size)
        if merge_heads == "no_transpose":
            context = context.reshape(batch, seq, hidden)
        else:
            context = context.transpose(1, 2).reshape(batch, seq, hidden)
        return context @ w_out.T + b_out if project_out else context

    return forward


def _multi_head_inputs(generator: torch.Generator) -> tuple:
    batch, seq, hidden, num_heads = 2, 5, 16, 4
    x = torch.randn(batch, seq, hidden, generator=generator)
    w_qkv = torch.randn(3 * hidden, hidden, generator=generator) / math.sqrt(hidden)
    b_qkv = torch.randn(3 * hidden, generator=generator) * 0.1
    w_out = torch.randn(hidden, hidden, generator=generator) / math.sqrt(hidden)
    b_out = torch.randn(hidden, generator=generator) * 0.1
    attention_mask = torch.tensor([[1] * seq, [1] * (seq - 2) + [0] * 2])
    mask = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, seq), True = real key
    return x, w_qkv, b_qkv, w_out, b_out, num_heads, mask


_MULTI_HEAD_MISTAKES = [
    Mistake(
        _multi_head_variant(split_heads="no_transpose"),
        "the heads are split wrongly: reshaping (batch, seq, hidden) straight to "
        "(batch, heads, seq, head_size) mixes tokens. View it as (batch, seq, heads, head_size) "
        "first, then `.transpose(1, 2)`.",
    ),
    Mistake(
        _multi_head_variant(merge_heads="no_transpose"),
        "the heads are merged wrongly: transpose (batch, heads, seq, head_size) back to "
        "(batch, seq, heads, head_size) before reshaping to (batch, seq, hidden).",
    ),
    Mistake(
        _multi_head_variant(scale="hidden"),
        "you divided the scores by sqrt(hidden); each head has its own d_k = hidden / num_heads, "
        "so divide by sqrt(head_size).",
    ),
    Mistake(
        _multi_head_variant(scale="none"),
        "you forgot to divide the scores by sqrt(head_size).",
    ),
    Mistake(
        _multi_head_variant(qkv_layout="interleaved"),
        "q, k and v are taken from the wrong columns: the fused projection gives "
        "(batch, seq, 3*hidden) whose first `hidden` columns are q, the next k, the last v "
        "(`qkv.split(hidden, dim=-1)` or `.chunk(3, dim=-1)`).",
    ),
    Mistake(
        _multi_head_variant(qkv_bias=False),
        "the q, k, v bias is missing: the fused projection is x @ w_qkv.T + b_qkv.",
    ),
    Mistake(
        _multi_head_variant(project_out=False),
        "you forgot the output projection: after merging the heads, apply `w_out` and `b_out`.",
    ),
    Mistake(
        lambda *args: _multi_head_variant()(*args[:-1], None),
        "the padding mask is ignored: pass it on to the attention so padding keys get weight 0.",
    ),
]


def check_multi_head_attention(multi_head_attention: Callable) -> None:
    """Check `multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, num_heads, mask)`.

    x (batch, seq, hidden); w_qkv (3*hidden, hidden), b_qkv (3*hidden,); w_out (hidden, hidden),
    b_out (hidden,); mask bool (batch, 1, 1, seq), True = real key. Must return the output
    (batch, seq, hidden) of `bertmini.attention.MultiHeadAttention` holding those weights.
    """
    compare(
        "multi_head_attention",
        multi_head_attention,
        _reference_multi_head,
        _multi_head_inputs,
        _MULTI_HEAD_MISTAKES,
        atol=1e-4,
        refuse=["MultiHeadAttention"],
    )
    passed(
        "multi_head_attention",
        "same output as bertmini.attention.MultiHeadAttention with your weights",
    )
