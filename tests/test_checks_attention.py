"""The attention checks pass the reference, name each typical mistake, and let stubs through."""

import math

import pytest
import torch

from bertmini.attention import MultiHeadAttention
from bertmini.checks import CheckFailed
from bertmini.checks.attention import (
    check_multi_head_attention,
    check_scaled_dot_product_attention,
    check_softmax,
)

pytestmark = pytest.mark.usefixtures("seeded")


# --- softmax ------------------------------------------------------------------------------------


def good_softmax(scores, dim=-1):
    shifted = scores - scores.max(dim=dim, keepdim=True).values
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def test_softmax_reference_passes(capsys):
    check_softmax(good_softmax)
    assert capsys.readouterr().out.count("✅") == 1


@pytest.mark.parametrize(
    "wrong, words",
    [
        (lambda s, dim=-1: s.exp() / s.exp().sum(dim=0, keepdim=True), "dim=0"),
        (lambda s, dim=-1: s.exp(), "forgot to divide by the sum"),
        (lambda s, dim=-1: s.exp() / s.exp().sum(), "whole tensor"),
        (lambda s, dim=-1: s.exp() / s.exp().sum(dim=dim, keepdim=True), "overflow"),
    ],
)
def test_softmax_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_softmax(wrong)


def test_softmax_stub_raises_not_implemented(stub):
    with pytest.raises(NotImplementedError):
        check_softmax(stub)


# --- scaled dot-product attention --------------------------------------------------------------


def student_attention(scale="sqrt", softmax_dim=-1, mask_mode="before"):
    """Attention as a student would write it, with one step chosen."""

    def attention(q, k, v, mask=None):
        d_k = q.shape[-1]
        scores = q @ k.transpose(-2, -1)
        scores = scores / {"sqrt": math.sqrt(d_k), "d_k": d_k, "none": 1}[scale]
        if mask is not None and mask_mode == "before":
            scores = scores.masked_fill(mask == 0, float("-inf"))
        if mask is not None and mask_mode == "flipped":
            scores = scores.masked_fill(mask, float("-inf"))
        if mask is not None and mask_mode == "multiply":
            scores = scores * mask
        weights = torch.softmax(scores, dim=softmax_dim)
        if mask is not None and mask_mode == "after":
            weights = weights.masked_fill(~mask, 0.0)
        return weights @ v, weights

    return attention


def test_attention_reference_passes(capsys):
    check_scaled_dot_product_attention(student_attention())  # -inf instead of finfo.min
    assert capsys.readouterr().out.count("✅") == 1


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_attention(scale="none"), "forgot to divide the scores by sqrt"),
        (student_attention(scale="d_k"), "divided the scores by d_k"),
        (student_attention(softmax_dim=-2), "wrong axis"),
        (student_attention(mask_mode="after"), "after the softmax"),
        (student_attention(mask_mode="flipped"), "polarity"),
        (student_attention(mask_mode="multiply"), "multiplied by the mask"),
        (lambda q, k, v, mask=None: student_attention()(q, k, v, mask)[0], "expected a tuple"),
    ],
)
def test_attention_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_scaled_dot_product_attention(wrong)


def test_attention_stub_raises_not_implemented(stub):
    with pytest.raises(NotImplementedError):
        check_scaled_dot_product_attention(stub)


# --- multi-head attention ----------------------------------------------------------------------


def student_multi_head(split="good", scale="head", merge="good", chunks="good", out=True):
    def multi_head_attention(x, w_qkv, b_qkv, w_out, b_out, num_heads, mask=None):
        batch, seq, hidden = x.shape
        head_size = hidden // num_heads
        qkv = torch.nn.functional.linear(x, w_qkv, b_qkv)
        if chunks == "good":
            q, k, v = qkv.chunk(3, dim=-1)
        else:
            q, k, v = qkv[..., 0::3], qkv[..., 1::3], qkv[..., 2::3]

        def heads(t):
            if split == "good":
                return t.view(batch, seq, num_heads, head_size).transpose(1, 2)
            return t.reshape(batch, num_heads, seq, head_size)

        q, k, v = heads(q), heads(k), heads(v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_size if scale == "head" else hidden)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        context = scores.softmax(dim=-1) @ v
        if merge == "good":
            context = context.transpose(1, 2)
        context = context.reshape(batch, seq, hidden)
        return torch.nn.functional.linear(context, w_out, b_out) if out else context

    return multi_head_attention


def test_multi_head_reference_passes(capsys):
    check_multi_head_attention(student_multi_head())
    assert "✅" in capsys.readouterr().out


def test_multi_head_module_weights_are_refused():
    """A function that loads the weights into bertmini's own module builds nothing: refused."""

    def via_module(x, w_qkv, b_qkv, w_out, b_out, num_heads, mask=None):
        module = MultiHeadAttention(x.shape[-1], num_heads)
        module.load_state_dict(
            {"qkv.weight": w_qkv, "qkv.bias": b_qkv, "out.weight": w_out, "out.bias": b_out}
        )
        return module(x, mask, need_weights=True)[0]

    with pytest.raises(CheckFailed, match="bertmini's own MultiHeadAttention, which refuses"):
        check_multi_head_attention(via_module)


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_multi_head(split="reshape"), "heads are split wrongly"),
        (student_multi_head(merge="reshape"), "heads are merged wrongly"),
        (student_multi_head(scale="hidden"), r"sqrt\(hidden\)"),
        (student_multi_head(chunks="interleaved"), "wrong columns"),
        (student_multi_head(out=False), "output projection"),
        (
            lambda x, w, b, wo, bo, h, mask=None: student_multi_head()(x, w, b, wo, bo, h, None),
            "mask is ignored",
        ),
    ],
)
def test_multi_head_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_multi_head_attention(wrong)


def test_multi_head_crash_is_reported():
    def crashes(x, w_qkv, b_qkv, w_out, b_out, num_heads, mask=None):
        return x @ w_qkv  # (hidden) @ (3*hidden, hidden): wrong orientation

    with pytest.raises(CheckFailed, match="raised RuntimeError"):
        check_multi_head_attention(crashes)


def test_multi_head_stub_raises_not_implemented(stub):
    with pytest.raises(NotImplementedError):
        check_multi_head_attention(stub)


def test_softmax_with_the_global_maximum_is_named():
    def global_max(scores, dim=-1):
        exponentials = (scores - scores.max()).exp()  # the whole tensor's max, not each row's
        return exponentials / exponentials.sum(dim=dim, keepdim=True)

    with pytest.raises(CheckFailed, match="maximum of the whole tensor"):
        check_softmax(global_max)


def test_attention_check_refuses_bertminis_attention():
    def via_bertmini(q, k, v, mask=None):
        from bertmini.attention import scaled_dot_product_attention

        return scaled_dot_product_attention(q, k, v, mask)

    with pytest.raises(CheckFailed, match="bertmini's own scaled_dot_product_attention, which"):
        check_scaled_dot_product_attention(via_bertmini)
