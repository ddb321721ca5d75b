"""Attention: every token looks at every other token and takes a weighted average of them.

Taught in chapter 01, chapters/01_attention.ipynb.

For one head, with queries Q, keys K and values V of shape (seq, d_k):

    weights = softmax(Q K^T / sqrt(d_k))        # (seq_q, seq_k), each row sums to 1
    output  = weights V                         # (seq_q, d_k)

Dividing by sqrt(d_k) keeps the dot products at unit variance whatever the head size, so the
softmax does not saturate into a one-hot (whose gradients vanish). Padding is handled by a mask:
key positions that are padding get a score of -inf, hence a weight of exactly 0.

BERT runs several heads side by side, each on its own slice of the hidden vector, and mixes their
outputs with one more linear layer (multi-head attention). Two paths compute the same thing:
the written-out one below, which also returns the weights (for visualisation), and PyTorch's fused
`F.scaled_dot_product_attention` (flash / memory-efficient kernels), used whenever nobody asks for
the weights.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .guard import refuse_if_checked


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention written out. Returns (output, weights).

    q: (..., seq_q, d_k)   k: (..., seq_k, d_k)   v: (..., seq_k, d_v)
    mask: bool, broadcastable to (..., seq_q, seq_k); True = may attend, False = masked out.
    output: (..., seq_q, d_v)   weights: (..., seq_q, seq_k), rows sum to 1.
    """
    refuse_if_checked("scaled_dot_product_attention")  # see bertmini.guard
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., seq_q, seq_k)
    if mask is not None:
        # The most negative finite number, not -inf: a row with every key masked then gives a
        # uniform average instead of NaN (it only happens for padding queries, ignored later).
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, seq) with 1 = real token, 0 = padding  ->  bool (batch, 1, 1, seq) for the keys."""
    return attention_mask.bool()[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """BERT's self-attention: project to Q, K, V, attend in `num_heads` heads, project back.

    Q, K and V come from one (hidden -> 3*hidden) matmul: the same math as three separate
    projections, one kernel instead of three.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})"
            )
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (batch, seq, hidden); mask: bool (batch, 1, 1, seq), True = real key.

        Returns (output (batch, seq, hidden), weights (batch, heads, seq, seq) or None).
        """
        refuse_if_checked("MultiHeadAttention")  # see bertmini.guard
        batch, seq, hidden = x.shape
        q, k, v = self.qkv(x).split(hidden, dim=-1)  # 3 x (batch, seq, hidden)
        # (batch, seq, hidden) -> (batch, heads, seq, head_size)
        q, k, v = (
            t.view(batch, seq, self.num_heads, self.head_size).transpose(1, 2) for t in (q, k, v)
        )
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            context, weights = scaled_dot_product_attention(q, k, v, mask)
            context = context if dropout == 0.0 else F.dropout(weights, dropout) @ v
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
            weights = None
        context = context.transpose(1, 2).reshape(batch, seq, hidden)  # heads back together
        return self.out(context), weights
