"""The chapter 05 checks accept the reference and name the typical mistakes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertmini.checks import CheckFailed
from bertmini.checks.bert import check_embeddings, check_mlm_head
from bertmini.model import MaskedLMHead

pytestmark = pytest.mark.usefixtures("seeded")


# --- Embeddings -----------------------------------------------------------------------------


def solution_embed(embeddings, input_ids, segment_ids):
    positions = torch.arange(input_ids.size(1))
    x = (
        embeddings.word(input_ids)
        + embeddings.segment(segment_ids)
        + embeddings.position(positions)
    )
    return embeddings.dropout(embeddings.norm(x))


def make_embed(first=0, segment=True, norm=True, dropout="after"):
    def embed(embeddings, input_ids, segment_ids):
        positions = torch.arange(first, first + input_ids.size(1))
        x = embeddings.word(input_ids) + embeddings.position(positions)
        if segment:
            x = x + embeddings.segment(segment_ids)
        if dropout == "before":
            x = embeddings.dropout(x)
        if norm:
            x = embeddings.norm(x)
        return embeddings.dropout(x) if dropout == "after" else x

    return embed


def test_embed_reference_passes(capsys):
    check_embeddings(solution_embed)
    assert "✅ embed: correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "student, words",
    [
        (make_embed(first=1), "position ids start at 1"),
        (make_embed(segment=False), "segment embeddings are missing"),
        (make_embed(norm=False), "LayerNorm is missing"),
        (make_embed(dropout=None), "dropout is missing"),
        (make_embed(dropout="before"), "dropout must come after the LayerNorm"),
    ],
)
def test_embed_mistakes_are_named(student, words):
    with pytest.raises(CheckFailed, match=words):
        check_embeddings(student)


def test_embed_stub_lets_not_implemented_through():
    def stub(embeddings, input_ids, segment_ids):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_embeddings(stub)


# --- MLM head -------------------------------------------------------------------------------


class Head(nn.Module):
    """A correct head, and through its flags the typical wrong ones."""

    untied = False
    with_bias = True
    use_bias = True
    norm_first = False

    def __init__(self, config, word_embeddings):
        super().__init__()
        hidden, vocab = config.hidden_size, config.vocab_size
        self.transform = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        if self.untied:
            self.decoder_weight = nn.Parameter(torch.randn(vocab, hidden) * 0.02)
        else:
            self.decoder_weight = word_embeddings.weight
        if self.with_bias:
            self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden):
        h = self.transform(hidden)
        h = F.gelu(self.norm(h)) if self.norm_first else self.norm(F.gelu(h))
        return F.linear(h, self.decoder_weight, self.bias if self.use_bias else None)


def variant(**flags):
    return type("WrongHead", (Head,), flags)


def test_mlm_head_reference_passes(capsys):
    check_mlm_head(Head)
    assert "✅ MaskedLMHead: correct" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="bertmini's own MaskedLMHead, which refuses"):
        check_mlm_head(MaskedLMHead)


@pytest.mark.parametrize(
    "student, words",
    [
        (variant(untied=True), "new matrix, not tied"),
        (variant(with_bias=False), "output bias is missing"),
        (variant(use_bias=False), "bias is never added"),
        (variant(norm_first=True), "wrong order"),
    ],
)
def test_mlm_head_mistakes_are_named(student, words):
    with pytest.raises(CheckFailed, match=words):
        check_mlm_head(student)


def test_mlm_head_copy_of_embeddings_is_not_tied():
    class Copied(Head):
        def __init__(self, config, word_embeddings):
            super().__init__(config, word_embeddings)
            self.decoder_weight = nn.Parameter(word_embeddings.weight.detach().clone())

    with pytest.raises(CheckFailed, match="not tied"):
        check_mlm_head(Copied)


def test_mlm_head_stub_lets_not_implemented_through():
    class Stub(nn.Module):
        def __init__(self, config, word_embeddings):
            super().__init__()
            raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_mlm_head(Stub)
