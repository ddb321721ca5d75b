"""The Transformer encoder layer, as BERT has it.

Taught in chapter 04, chapters/04_encoders_lstm_vs_transformer.ipynb.

One layer = self-attention, then a position-wise feed-forward network (FFN), each wrapped in a
residual connection and a LayerNorm. BERT (like the original Transformer) normalises *after*
adding the residual ("post-LN"):

    x = LayerNorm(x + Dropout(Attention(x)))
    x = LayerNorm(x + Dropout(W2 GELU(W1 x)))

with the exact GELU, x * Phi(x) (Phi the normal CDF, via erf), and LayerNorm eps 1e-12.
Many later models normalise *before* each sub-layer ("pre-LN"), which trains more stably at depth
without warmup; it needs one more LayerNorm at the end of the stack.

    x = x + Dropout(Attention(LayerNorm(x)))
    x = x + Dropout(W2 GELU(W1 LayerNorm(x)))
"""

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention
from .guard import refuse_if_checked


class EncoderLayer(nn.Module):
    """(batch, seq, hidden) -> (batch, seq, hidden), plus the attention weights when asked."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        pre_layer_norm: bool = False,
    ):
        super().__init__()
        self.attention = MultiHeadAttention(hidden_size, num_heads, attention_dropout)
        self.attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ffn_in = nn.Linear(hidden_size, intermediate_size)
        self.ffn_out = nn.Linear(intermediate_size, hidden_size)
        self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        self.pre_layer_norm = pre_layer_norm

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_out(F.gelu(self.ffn_in(x)))  # F.gelu's default is the exact erf form

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One layer: x (batch, seq, hidden) -> (batch, seq, hidden), and the attention weights
        (batch, heads, seq, seq) if need_weights, else None. mask: bool (batch, 1, 1, seq),
        True where the key is a real token."""
        refuse_if_checked("EncoderLayer")  # see bertmini.guard
        if self.pre_layer_norm:
            attended, weights = self.attention(self.attention_norm(x), mask, need_weights)
            x = x + self.dropout(attended)
            x = x + self.dropout(self.feed_forward(self.ffn_norm(x)))
        else:
            attended, weights = self.attention(x, mask, need_weights)
            x = self.attention_norm(x + self.dropout(attended))
            x = self.ffn_norm(x + self.dropout(self.feed_forward(x)))
        return x, weights
