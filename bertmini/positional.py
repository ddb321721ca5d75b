"""Positions: attention alone cannot tell word order, so each position adds a vector of its own.

Taught in chapter 02, chapters/02_positional_encoding.ipynb.

Self-attention is permutation-equivariant: shuffle the tokens and the outputs shuffle the same
way. To know that "dog bites man" differs from "man bites dog", a vector that depends on the
position is added to each token embedding. Two ways:

* sinusoidal (the Transformer paper): fixed, no parameters, one sine/cosine pair per frequency,

      PE[pos, 2i]   = sin(pos / 10000^(2i/d))
      PE[pos, 2i+1] = cos(pos / 10000^(2i/d))

  so PE[pos + k] is a rotation of PE[pos] that depends on k alone, and the dot product
  PE[pos] . PE[pos + k] depends on the offset k, not on pos.
* learned (BERT): an embedding table with one trainable row per position, up to a maximum length.
"""

import torch
from torch import nn

from .guard import refuse_if_checked


def sinusoidal_encoding(num_positions: int, dim: int) -> torch.Tensor:
    """The sinusoid matrix, (num_positions, dim): sin in even columns, cos in odd ones."""
    refuse_if_checked("sinusoidal_encoding")  # see bertmini.guard
    if dim % 2:
        raise ValueError(f"dim must be even to hold sin/cos pairs, got {dim}")
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (positions, 1)
    frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    angle = position * frequency  # (positions, dim/2)
    encoding = torch.empty(num_positions, dim, dtype=torch.float64)
    encoding[:, 0::2] = angle.sin()
    encoding[:, 1::2] = angle.cos()
    return encoding.float()


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids with the same call as `nn.Embedding`: ids (..., seq) -> vectors."""

    def __init__(self, num_positions: int, dim: int):
        super().__init__()
        self.register_buffer("weight", sinusoidal_encoding(num_positions, dim), persistent=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return self.weight[position_ids]


def learned_positions(num_positions: int, dim: int) -> nn.Embedding:
    """BERT's choice: a trainable vector per position (rows past the longest input never train)."""
    return nn.Embedding(num_positions, dim)
