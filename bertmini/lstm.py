"""The encoder before Transformers: a bidirectional LSTM.

Taught in chapter 04, chapters/04_encoders_lstm_vs_transformer.ipynb.

An LSTM reads a sequence one token at a time, carrying a hidden state h and a cell state c.
At step t, from the input x_t and the previous state (h, c), four gates are computed:

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     input gate:  how much new content to write
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)     forget gate: how much old memory to keep
    g = tanh(   W_ig x + b_ig + W_hg h + b_hg)     candidate content
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)     output gate: how much memory to show
    c' = f * c + i * g
    h' = o * tanh(c')

A bidirectional encoder runs one LSTM left-to-right and another right-to-left and concatenates
their states, so every position sees both sides (as BERT's attention does) -- but information
between distant tokens must travel step by step, and the steps cannot run in parallel.

Two paths with the same weights give the same numbers: the from-scratch loop over time steps
below (for teaching) and `nn.LSTM` (cuDNN on a GPU; for speed). The weights live in the
`nn.LSTM`, in its gate order i, f, g, o.

`BiLSTMForPreTraining` and `BiLSTMForSequenceClassification` are BERT's models with this encoder
in place of the Transformer layers (same embeddings, heads and outputs), so that chapter 04 can
train the two encoders on one task.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .guard import refuse_if_checked
from .model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel


def lstm_cell(
    x: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step from the gate equations.

    x: (batch, input)   h, c: (batch, hidden)
    weight_ih: (4*hidden, input)   weight_hh: (4*hidden, hidden)   biases: (4*hidden,)
    Returns the new (h, c), each (batch, hidden).
    """
    refuse_if_checked("lstm_cell")  # see bertmini.guard
    gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (batch, 4*hidden)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class LSTMCell(nn.Module):
    """An LSTM cell with its own weights, initialised like `nn.LSTMCell`."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        bound = hidden_size**-0.5
        self.weight_ih = nn.Parameter(
            torch.empty(4 * hidden_size, input_size).uniform_(-bound, bound)
        )
        self.weight_hh = nn.Parameter(
            torch.empty(4 * hidden_size, hidden_size).uniform_(-bound, bound)
        )
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))

    def forward(self, x, state):
        """x: (batch, input); state: (h, c) each (batch, hidden) -> new (h, c)."""
        return lstm_cell(x, *state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class BiLSTMEncoder(nn.Module):
    """A stack of bidirectional LSTM layers: (batch, seq, hidden) -> (batch, seq, hidden).

    Each direction has hidden/2 units, so the concatenated output keeps BERT's hidden size and the
    encoder is a drop-in replacement for the Transformer stack. Padding (mask 0) must be at the end
    of each row; its outputs are zero and it never enters the states of real tokens.
    """

    def __init__(self, hidden_size: int, num_layers: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size % 2:
            raise ValueError(f"the bilstm encoder needs an even hidden_size, got {hidden_size}")
        self.lstm = nn.LSTM(
            hidden_size,
            hidden_size // 2,
            num_layers=num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        from_scratch: bool = False,
    ) -> torch.Tensor:
        """x: (batch, seq, hidden); attention_mask: (batch, seq), 1 = real token."""
        if attention_mask is None:
            attention_mask = torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        if from_scratch:
            return self._from_scratch(x, attention_mask.bool())
        lengths = attention_mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.lstm(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.size(1))
        return output

    def _from_scratch(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """The same computation as `nn.LSTM`, one time step at a time, with the gate equations."""
        batch, seq, _ = x.shape
        units = self.lstm.hidden_size
        keep = real[:, :, None]  # (batch, seq, 1): padding steps leave the state unchanged
        for layer in range(self.lstm.num_layers):
            outputs = []
            for suffix, steps in (("", range(seq)), ("_reverse", reversed(range(seq)))):
                weights = [
                    getattr(self.lstm, f"{name}_l{layer}{suffix}")
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ]
                h = c = x.new_zeros(batch, units)
                out = x.new_zeros(batch, seq, units)
                for t in steps:
                    h_next, c_next = lstm_cell(x[:, t], h, c, *weights)
                    h = torch.where(keep[:, t], h_next, h)
                    c = torch.where(keep[:, t], c_next, c)
                    out[:, t] = h_next * keep[:, t]
                outputs.append(out)
            x = torch.cat(outputs, dim=-1)  # (batch, seq, 2*units)
            if layer < self.lstm.num_layers - 1 and self.training:
                x = nn.functional.dropout(x, self.lstm.dropout)
        return x


class BiLSTMModel(BertModel):
    """BertModel with a BiLSTMEncoder of `num_hidden_layers` layers in place of the Transformer
    layers: the same embeddings, pooler and outputs (but no attention weights)."""

    def build_encoder(self, config: BertConfig) -> None:
        self.lstm = BiLSTMEncoder(
            config.hidden_size, config.num_hidden_layers, config.hidden_dropout_prob
        )

    def encode(self, x, attention_mask, output_attentions):
        """Embeddings (batch, seq, hidden) -> (output, [input, output], [] : no attention)."""
        output = self.lstm(x, attention_mask)  # (batch, seq, hidden)
        return output, [x, output], []


class BiLSTMForPreTraining(BertForPreTraining):
    """BERT's MLM and NSP heads on the BiLSTM encoder."""

    base_model_class = BiLSTMModel


class BiLSTMForSequenceClassification(BertForSequenceClassification):
    """BERT's classifier on the BiLSTM encoder's pooled first position."""

    base_model_class = BiLSTMModel
