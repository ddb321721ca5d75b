"""Checks for chapter 05: the embedding layer and the MLM head with tied weights.

`check_embeddings` compares a student's `embed(embeddings, input_ids, segment_ids)` with the
forward pass of a `bertmini.model.Embeddings` (word + segment + position, LayerNorm, dropout).
`check_mlm_head` builds the student's `MaskedLMHead`-like class next to bertmini's, checks that
its decoder *is* the word-embedding matrix and that it has an output bias, copies the remaining
weights over, and compares the logits.
"""

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..model import BertConfig, Embeddings, MaskedLMHead
from . import Mistake, call_student, compare, diagnose, fail, passed, tiny_config


def _small_config() -> BertConfig:
    # More positions than words, so that a mix-up of the two still runs and can be named.
    return tiny_config(vocab_size=40, max_position_embeddings=64, hidden_dropout_prob=0.5)


def _randomise(module: nn.Module, generator: torch.Generator) -> None:
    """O(1) weights everywhere, LayerNorm weights away from the identity."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.3 * noise)
            elif parameter.dim() == 2 and "transform" in name:
                parameter.copy_(1.5 * noise / parameter.shape[1] ** 0.5)
            else:
                parameter.copy_(noise if parameter.dim() == 2 else 0.3 * noise)


# ---------------------------------------------------------------------------------------------
# The embedding layer
# ---------------------------------------------------------------------------------------------


def _embedding_inputs(generator: torch.Generator) -> tuple:
    config = _small_config()
    embeddings = Embeddings(config)
    _randomise(embeddings, generator)
    embeddings.eval()
    batch, seq = 3, 7
    input_ids = torch.randint(1, config.vocab_size, (batch, seq), generator=generator)
    segment_ids = (torch.arange(seq) >= 3).long().expand(batch, seq).clone()  # A A A B B B B
    segment_ids[2] = 0  # one row all in segment A
    return embeddings, input_ids, segment_ids


def _reference_embed(embeddings: Embeddings, input_ids, segment_ids) -> torch.Tensor:
    with torch.no_grad():
        return embeddings(input_ids, segment_ids)


def _embed_variant(
    first_position: int = 0,
    segment: bool = True,
    norm: bool = True,
    positions_from_ids: bool = False,
) -> Callable:
    def embed(embeddings, input_ids, segment_ids):
        with torch.no_grad():
            seq = input_ids.size(1)
            position_ids = torch.arange(first_position, first_position + seq)
            if positions_from_ids:
                position_ids = input_ids
            x = embeddings.word(input_ids) + embeddings.position(position_ids)
            if segment:
                x = x + embeddings.segment(segment_ids)
            return embeddings.norm(x) if norm else x

    return embed


EMBEDDING_MISTAKES = [
    Mistake(
        _embed_variant(first_position=1),
        "the position ids start at 1. The first token ([CLS]) has position 0: "
        "torch.arange(seq), not torch.arange(1, seq + 1).",
    ),
    Mistake(
        _embed_variant(segment=False),
        "the segment embeddings are missing: add embeddings.segment(segment_ids), which tells "
        "sentence A (0) from sentence B (1).",
    ),
    Mistake(
        _embed_variant(norm=False),
        "the LayerNorm is missing: the sum of the three embeddings goes through embeddings.norm "
        "(then dropout).",
    ),
    Mistake(
        _embed_variant(segment=False, norm=False),
        "both the segment embeddings and the LayerNorm are missing: "
        "x = norm(word + segment + position), then dropout.",
    ),
    Mistake(
        _embed_variant(positions_from_ids=True),
        "the position embeddings are looked up with the token ids. Positions are 0, 1, 2, ... "
        "(torch.arange(seq)), whatever the tokens are.",
    ),
]


def _check_dropout(embed: Callable, name: str) -> None:
    """In training mode the output must be the LayerNorm's output with dropout applied after it."""
    generator = torch.Generator().manual_seed(99)
    embeddings, input_ids, segment_ids = _embedding_inputs(generator)
    expected = _reference_embed(embeddings, input_ids, segment_ids)  # eval: no dropout
    embeddings.train()  # p = 0.5
    with torch.no_grad():
        got = call_student(name, embed, embeddings, input_ids, segment_ids, refuse=["Embeddings"])
    zeros = (got == 0).float().mean().item()
    if zeros == 0.0:
        if torch.allclose(got, expected, atol=1e-5):
            fail(name, "dropout is missing: finish with embeddings.dropout(x) (on in training).")
        fail(name, "dropout must come after the LayerNorm: x = dropout(norm(sum)).")
    kept = got != 0
    if not torch.allclose(got[kept], 2 * expected[kept], atol=1e-4):  # p = 0.5 scales by 2
        fail(
            name,
            "in training mode the kept values are not norm(sum) / (1 - p): use "
            "embeddings.dropout (nn.Dropout) once, after the LayerNorm.",
        )


def check_embeddings(embed: Callable) -> None:
    """Check `embed(embeddings, input_ids, segment_ids) -> (batch, seq, hidden)`."""
    # Dropout is checked first (training mode), but only once the eval-mode values are right;
    # otherwise `compare` below names the mistake.
    compare(
        "embed",
        embed,
        _reference_embed,
        _embedding_inputs,
        EMBEDDING_MISTAKES,
        atol=1e-5,
        refuse=["Embeddings"],
    )
    _check_dropout(embed, "embed")
    passed(
        "embed", "word + segment + position, LayerNorm, then dropout, as bertmini.model.Embeddings"
    )


# ---------------------------------------------------------------------------------------------
# The MLM head with tied weights
# ---------------------------------------------------------------------------------------------


def _head_variant(reference: MaskedLMHead, order: str = "dense gelu norm", bias: bool = True):
    """The head computed with the reference's weights, with steps reordered or left out."""
    steps = {
        "dense": reference.transform,
        "gelu": F.gelu,
        "relu": F.relu,
        "tanh_gelu": lambda h: F.gelu(h, approximate="tanh"),
        "norm": reference.norm,
    }

    def head(hidden):
        with torch.no_grad():
            for step in order.split():
                hidden = steps[step](hidden)
            return F.linear(hidden, reference.decoder_weight, reference.bias if bias else None)

    return head


def _head_structure(student, config: BertConfig, word_embeddings: nn.Embedding) -> list:
    """What the check needs of the student's head, as ordered (predicate, advice) pairs: the
    names the exercise gives, then the tied decoder, the output bias and the LayerNorm's eps."""
    decoder = getattr(student, "decoder_weight", None)
    tied = decoder is word_embeddings.weight
    norm = getattr(student, "norm", None)
    bias = getattr(student, "bias", None)
    return [
        *(
            (
                not isinstance(getattr(student, attribute, None), kind),
                f"expected self.{attribute} to be an nn.{kind.__name__} (the names are given "
                "in the exercise, so the check can copy weights into it).",
            )
            for attribute, kind in (("transform", nn.Linear), ("norm", nn.LayerNorm))
        ),
        (decoder is None, "expected self.decoder_weight: the (vocab, hidden) decoder matrix."),
        (
            not tied
            and isinstance(decoder, torch.Tensor)
            and decoder.data_ptr() == word_embeddings.weight.data_ptr(),
            "self.decoder_weight shares memory with the embeddings but is another Parameter, "
            "so it is not tied: assign the Parameter itself, "
            "self.decoder_weight = word_embeddings.weight.",
        ),
        (
            not tied,
            "the decoder is a new matrix, not tied to the word embeddings. BERT reuses the input "
            "embedding matrix as the output projection: self.decoder_weight = "
            "word_embeddings.weight (one tensor, two uses; it saves vocab x hidden = "
            f"{config.vocab_size * config.hidden_size} parameters here, 23M in BERT-base).",
        ),
        (
            not isinstance(bias, nn.Parameter) or bias.shape != (config.vocab_size,),
            "the output bias is missing: BERT's decoder adds one learned value per vocabulary "
            "word, self.bias = nn.Parameter(torch.zeros(config.vocab_size)).",
        ),
        (
            getattr(norm, "eps", None) != config.layer_norm_eps,
            f"the LayerNorm eps is {getattr(norm, 'eps', None)}; BERT's is "
            f"config.layer_norm_eps ({config.layer_norm_eps}).",
        ),
    ]


def _head_mistakes(reference: MaskedLMHead) -> list[Mistake]:
    v = partial(_head_variant, reference)
    gelu_norm = "LayerNorm(GELU(dense(h)))"
    return [
        Mistake(
            v("dense norm gelu"),
            f"LayerNorm and GELU are in the wrong order: BERT's transform is {gelu_norm}, then "
            "the decoder.",
        ),
        Mistake(
            v("dense gelu norm", bias=False),
            "the output bias is never added: the logits are h @ decoder_weight.T + bias "
            "(F.linear(h, self.decoder_weight, self.bias)).",
        ),
        Mistake(v("dense norm"), f"the GELU is missing: {gelu_norm}."),
        Mistake(v("dense gelu"), f"the LayerNorm is missing: {gelu_norm}."),
        Mistake(
            v("gelu norm"), "the dense transform is missing: LayerNorm(GELU(self.transform(h)))."
        ),
        Mistake(v("dense relu norm"), "the transform uses ReLU; BERT uses the exact GELU: F.gelu."),
        Mistake(
            v("dense tanh_gelu norm"),
            "the transform uses the tanh approximation of GELU; BERT uses the exact one: "
            "F.gelu(h) (no approximate='tanh').",
        ),
    ]


def check_mlm_head(head_class: Callable) -> None:
    """Check a class `head_class(config, word_embeddings)` whose forward maps
    (..., hidden) -> (..., vocab) as BERT's MLM head, with the decoder tied to the embeddings."""
    name = "MaskedLMHead"
    config = _small_config()
    word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
    student = call_student(name, head_class, config, word_embeddings, refuse=["MaskedLMHead"])
    diagnose(name, _head_structure(student, config, word_embeddings))

    reference = MaskedLMHead(config, word_embeddings)
    _randomise(reference, torch.Generator().manual_seed(7))  # word_embeddings too: they are tied
    with torch.no_grad():
        student.transform.load_state_dict(reference.transform.state_dict())
        student.norm.load_state_dict(reference.norm.state_dict())
        student.bias.copy_(reference.bias)
    student.eval()

    def student_forward(hidden):
        with torch.no_grad():
            return student(hidden)

    compare(
        name,
        student_forward,
        _head_variant(reference),
        lambda g: (torch.randn(2, 5, config.hidden_size, generator=g),),
        _head_mistakes(reference),
        atol=1e-4,
        refuse=["MaskedLMHead"],
    )
    passed(name, "decoder tied to the word embeddings, same logits as bertmini.model.MaskedLMHead")
