"""Checks cannot be fooled by calling bertmini's (or PyTorch's) own piece, and fail in one block.

Each check's own test file shows that bertmini's piece, called from the student's function, is
refused; this file tests the mechanism itself and the shape of a failure.
"""

import pytest
import torch
import torch.nn.functional as F

from bertmini import guard
from bertmini.attention import scaled_dot_product_attention
from bertmini.checks import CheckFailed, call_student, difference
from bertmini.checks.attention import check_softmax
from bertmini.checks.bert import check_embeddings
from bertmini.checks.encoders import check_encoder_layer


def test_a_guarded_piece_refuses_only_inside_its_check():
    q = torch.randn(1, 2, 3, 4)
    with guard.checking("scaled_dot_product_attention"):
        with pytest.raises(guard.BuildItYourself, match="own scaled_dot_product_attention"):
            scaled_dot_product_attention(q, q, q)
    output, _ = scaled_dot_product_attention(q, q, q)  # works again afterwards
    assert output.shape == (1, 2, 3, 4)


@pytest.mark.parametrize(
    "shortcut",
    [
        lambda scores, dim=-1: torch.softmax(scores, dim=dim),
        lambda scores, dim=-1: F.softmax(scores, dim=dim),
        lambda scores, dim=-1: scores.softmax(dim),
        lambda scores, dim=-1: torch.nn.Softmax(dim)(scores),
        lambda scores, dim=-1: scores.log_softmax(dim).exp(),
        lambda scores, dim=-1: torch.special.softmax(scores, dim),
    ],
    ids=["torch.softmax", "F.softmax", "Tensor.softmax", "nn.Softmax", "log_softmax", "special"],
)
def test_softmax_check_refuses_pytorch_softmax(shortcut):
    """Chapter 00 forbids PyTorch's softmax in the softmax exercise: the check enforces it."""
    with pytest.raises(CheckFailed, match="PyTorch's own softmax, which refuses"):
        check_softmax(shortcut)
    scores = torch.randn(2, 3)  # and every softmax is PyTorch's own again afterwards
    assert torch.allclose(shortcut(scores), scores.exp() / scores.exp().sum(-1, keepdim=True))
    assert "softmax" not in vars(torch.Tensor) and "log_softmax" not in vars(torch.Tensor)


def test_embeddings_check_refuses_calling_the_module():
    with pytest.raises(CheckFailed, match="bertmini's own Embeddings, which refuses"):
        check_embeddings(lambda embeddings, ids, segments: embeddings(ids, segments))


def test_a_value_failure_is_one_block_without_a_chained_traceback():
    def wrong(layer, x, mask):
        return x * 2

    with pytest.raises(CheckFailed) as failure:
        check_encoder_layer(wrong)
    error = failure.value
    assert error.__cause__ is None and error.__suppress_context__
    shown = error._render_traceback_()  # what a notebook shows
    assert shown == [str(error)] and "Traceback" not in "".join(shown)
    assert "differs by up to" in str(error) and "expected row" in str(error)


def test_the_students_own_error_keeps_its_traceback():
    def buggy(layer, x, mask):
        return x @ torch.ones(3, 3)  # (.., 16) @ (3, 3): a shape error in the student's code

    with pytest.raises(CheckFailed, match="raised RuntimeError") as failure:
        check_encoder_layer(buggy)
    shown = "".join(failure.value._render_traceback_())
    assert "Traceback" in shown and "in buggy" in shown and "x @ torch.ones(3, 3)" in shown
    assert "call_student" not in shown  # the student's frames, not the check's


def test_not_implemented_passes_through():
    def stub():
        raise NotImplementedError("exercise")

    with pytest.raises(NotImplementedError):
        call_student("stub", stub)


def test_a_difference_names_the_element_the_place_and_a_row():
    expected = (torch.zeros(2, 3), torch.zeros(2, 4))
    got = (torch.zeros(2, 3), torch.zeros(2, 4))
    got[1][1, 2] = 0.5
    message = difference(got, expected, atol=1e-5)
    assert "element 1 of your tuple" in message
    assert "up to 0.5" in message and "[1, 2]" in message
    assert "expected row [0.0000, 0.0000, 0.0000, 0.0000]" in message
    assert "your row     [0.0000, 0.0000, 0.5000, 0.0000]" in message
    assert difference(expected, expected, atol=1e-5) is None


def test_a_difference_never_shows_two_identical_shapes():
    """'expected tensor of shape (2, 5, 16); got tensor of shape (2, 5, 16)' explains nothing."""
    expected = torch.zeros(2, 5, 16)
    for got in (torch.ones(2, 5, 16), torch.full((2, 5, 16), float("nan"))):
        message = difference(got, expected, atol=1e-5)
        assert "(2, 5, 16)" not in message and "differs by up to" in message
    assert "has shape (2, 5, 8); expected (2, 5, 16)" in difference(
        torch.zeros(2, 5, 8), expected, 1e-5
    )


def test_a_tuple_element_is_named_by_what_it_is():
    from bertmini.checks.attention import check_scaled_dot_product_attention

    def scaled_weights(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / q.size(-1) ** 0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1)
        return weights @ v, weights * 1.5  # the output is right, the weights returned are not

    with pytest.raises(CheckFailed, match=r"your weights \(element 1 of your tuple\) differs"):
        check_scaled_dot_product_attention(scaled_weights)
