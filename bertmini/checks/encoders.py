"""Checks for chapter 04: the LSTM cell and the Transformer encoder layer.

`check_lstm_cell` compares a student's `lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih,
bias_hh) -> (h, c)` with `bertmini.lstm.lstm_cell`. `check_encoder_layer` compares a student's
`encoder_layer(layer, x, mask) -> x` (one post-LN BERT layer, dropout off, computed with the
weights of a `bertmini.transformer.EncoderLayer`) with the layer's own forward pass.

Each mistake below is a small wrong variant of the reference; when the student's answer matches
one of them, the message names it (for the cell: gate order, g's nonlinearity, the gate on the old
cell state, the tanh on c', one of the two biases; for the layer: pre-LN, a residual, ReLU, tanh
or tanh-GELU, LayerNorm eps, the LayerNorms missing or swapped, the padding mask ignored).
While the student's function runs, bertmini's `lstm_cell` and `EncoderLayer` refuse to run.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..lstm import lstm_cell as reference_lstm_cell
from ..transformer import EncoderLayer
from . import Mistake, compare, passed

# ---------------------------------------------------------------------------------------------
# The LSTM cell
# ---------------------------------------------------------------------------------------------

_LSTM_SIZES = dict(batch=3, input=5, hidden=4)


def _lstm_inputs(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """x, h, c, weight_ih, weight_hh, bias_ih, bias_hh with O(1) values (gates far from 0.5)."""
    batch, inputs, hidden = _LSTM_SIZES["batch"], _LSTM_SIZES["input"], _LSTM_SIZES["hidden"]

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    return (
        randn(batch, inputs),
        randn(batch, hidden),
        randn(batch, hidden),
        randn(4 * hidden, inputs),
        randn(4 * hidden, hidden),
        randn(4 * hidden),
        randn(4 * hidden),
    )


def _lstm_variant(
    order: str = "ifgo",
    candidate: Callable = torch.tanh,
    keep_gate: str = "f",
    squash_cell: bool = True,
    biases: str = "both",
) -> Callable:
    """An LSTM cell with one thing changed: the gate order in the stacked weights, the
    nonlinearity on g, the gate that scales the old cell state, the tanh on c', a bias left out."""

    def cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        bias_ih = bias_ih if biases in ("both", "ih") else 0
        bias_hh = bias_hh if biases in ("both", "hh") else 0
        gates = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
        chunks = dict(zip(order, gates.chunk(4, dim=-1), strict=True))
        i, f = torch.sigmoid(chunks["i"]), torch.sigmoid(chunks["f"])
        g, o = candidate(chunks["g"]), torch.sigmoid(chunks["o"])
        keep = {"f": f, "o": o, "i": i}[keep_gate]
        c = keep * c + i * g
        h = o * (torch.tanh(c) if squash_cell else c)
        return h, c

    return cell


LSTM_MISTAKES = [
    Mistake(
        _lstm_variant(biases="ih"),
        "bias_hh is missing: PyTorch's LSTM has two bias vectors and adds both, "
        "gates = x W_ih^T + b_ih + h W_hh^T + b_hh.",
    ),
    Mistake(
        _lstm_variant(biases="hh"),
        "bias_ih is missing: PyTorch's LSTM has two bias vectors and adds both, "
        "gates = x W_ih^T + b_ih + h W_hh^T + b_hh.",
    ),
    Mistake(
        _lstm_variant(order="ifog"),
        "the gates are split in the order i, f, o, g. PyTorch (and bertmini) stack the four "
        "gates as i, f, g, o: `i, f, g, o = gates.chunk(4, dim=-1)`.",
    ),
    Mistake(
        _lstm_variant(order="figo"),
        "the input and forget gates are swapped: the stacked order is i, f, g, o (input gate "
        "first), so `i, f, g, o = gates.chunk(4, dim=-1)`.",
    ),
    Mistake(
        _lstm_variant(order="igfo"),
        "the gates are split in TensorFlow's order (i, g, f, o). PyTorch (and bertmini) stack "
        "them as i, f, g, o: `i, f, g, o = gates.chunk(4, dim=-1)`.",
    ),
    Mistake(
        _lstm_variant(candidate=torch.sigmoid),
        "the candidate g goes through a sigmoid. g is new *content*, in (-1, 1): use "
        "tanh for g, sigmoid only for the three gates i, f, o.",
    ),
    Mistake(
        _lstm_variant(keep_gate="o"),
        "the old cell state is scaled by the output gate: c' = f * c + i * g uses the "
        "*forget* gate f (what to keep), the output gate only enters h'.",
    ),
    Mistake(
        _lstm_variant(keep_gate="i"),
        "the old cell state is scaled by the input gate: c' = f * c + i * g uses the "
        "*forget* gate f for the old memory.",
    ),
    Mistake(
        _lstm_variant(squash_cell=False),
        "h' = o * c' is missing the tanh: the hidden state is h' = o * tanh(c').",
    ),
]


def check_lstm_cell(lstm_cell: Callable) -> None:
    """Check `lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h, c)`."""
    compare(
        "lstm_cell",
        lstm_cell,
        reference_lstm_cell,
        _lstm_inputs,
        LSTM_MISTAKES,
        atol=1e-5,
        refuse=["lstm_cell"],
        names=("h", "c"),
    )
    passed("lstm_cell", "same (h, c) as bertmini.lstm.lstm_cell (and nn.LSTM) on random inputs")


# ---------------------------------------------------------------------------------------------
# The Transformer encoder layer
# ---------------------------------------------------------------------------------------------

_LAYER_SIZES = dict(batch=2, seq=6, hidden=16, heads=2, intermediate=32)


def _random_layer(generator: torch.Generator) -> EncoderLayer:
    """An EncoderLayer with O(1) activations, so that GELU's exact and tanh forms differ, and
    LayerNorm weights that are not the identity, so that forgetting them shows."""
    sizes = _LAYER_SIZES
    layer = EncoderLayer(sizes["hidden"], sizes["heads"], sizes["intermediate"])
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if "norm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                parameter.copy_(base + 0.3 * torch.randn(parameter.shape, generator=generator))
            elif name.endswith("weight"):
                scale = 1.5 / parameter.shape[1] ** 0.5
                parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
            else:  # attention biases tiny, so the 1e-3 row stays tiny until the first LayerNorm
                scale = 1e-4 if name.startswith("attention.") else 0.1
                parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
    return layer.eval()  # dropout off


def _layer_inputs(generator: torch.Generator) -> tuple:
    """(layer, x, mask): row 0 of x has values O(1); row 1 has tiny values (1e-3), where
    LayerNorm's eps matters (a variance of ~1e-6 is not small next to PyTorch's default 1e-5).
    The mask hides the last two keys of row 0 (as padding)."""
    sizes = _LAYER_SIZES
    layer = _random_layer(generator)
    x = torch.randn(sizes["batch"], sizes["seq"], sizes["hidden"], generator=generator)
    x[1] *= 1e-3
    real = torch.ones(sizes["batch"], sizes["seq"], dtype=torch.bool)
    real[0, -2:] = False
    mask = real[:, None, None, :]  # (batch, 1, 1, seq), True = real key
    return layer, x, mask


def _reference_layer(layer: EncoderLayer, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return layer(x, mask)[0]


def _layer_variant(
    pre_norm: bool = False,
    activation: Callable = F.gelu,
    eps: float | None = None,
    attention_residual: bool = True,
    ffn_residual: bool = True,
    norms: bool = True,
    use_mask: bool = True,
    swap_norms: bool = False,
) -> Callable:
    """An encoder layer with one thing changed (see the mistakes below)."""

    def norm(module, x):
        if not norms:
            return x
        return F.layer_norm(
            x,
            module.normalized_shape,
            module.weight,
            module.bias,
            module.eps if eps is None else eps,
        )

    def layer_fn(layer, x, mask):
        mask = mask if use_mask else None
        first, second = layer.attention_norm, layer.ffn_norm
        if swap_norms:
            first, second = second, first
        with torch.no_grad():

            def ffn(h):
                return layer.ffn_out(activation(layer.ffn_in(h)))

            if pre_norm:
                x = x + layer.attention(norm(layer.attention_norm, x), mask)[0]
                return x + ffn(norm(layer.ffn_norm, x))
            attended = layer.attention(x, mask)[0]
            x = norm(first, x + attended if attention_residual else attended)
            out = ffn(x)
            return norm(second, x + out if ffn_residual else out)

    return layer_fn


LAYER_MISTAKES = [
    Mistake(
        _layer_variant(pre_norm=True),
        "this is the pre-LN layer (x + Attention(LayerNorm(x))). BERT is post-LN: add the "
        "residual first, then normalise: x = LayerNorm(x + Attention(x)), and the same for "
        "the FFN.",
    ),
    Mistake(
        _layer_variant(attention_residual=False),
        "the residual around attention is missing: normalise x + Attention(x), not Attention(x).",
    ),
    Mistake(
        _layer_variant(ffn_residual=False),
        "the residual around the feed-forward network is missing: normalise x + FFN(x), "
        "not FFN(x).",
    ),
    Mistake(
        _layer_variant(attention_residual=False, ffn_residual=False),
        "both residual connections are missing: each sub-layer's output is *added* to its "
        "input before the LayerNorm.",
    ),
    Mistake(
        _layer_variant(activation=F.relu),
        "the FFN uses ReLU. BERT uses GELU, x * Phi(x): F.gelu(h).",
    ),
    Mistake(
        _layer_variant(activation=torch.tanh),
        "the FFN uses tanh as its activation. BERT uses GELU, x * Phi(x): F.gelu(h).",
    ),
    Mistake(
        _layer_variant(activation=lambda h: F.gelu(h, approximate="tanh")),
        "the FFN uses the tanh approximation of GELU (as GPT-2). BERT's checkpoints use the "
        "exact GELU, x * Phi(x) with Phi from erf: F.gelu(h) without approximate='tanh'.",
    ),
    Mistake(
        _layer_variant(eps=1e-5),
        "the LayerNorm eps is PyTorch's default 1e-5; BERT's is 1e-12 (it shows on inputs of "
        "small variance). Use the layer's own eps, e.g. layer.attention_norm.eps.",
    ),
    Mistake(
        _layer_variant(eps=1e-6),
        "the LayerNorm eps is 1e-6; BERT's is 1e-12. Use the layer's own eps, e.g. "
        "layer.attention_norm.eps.",
    ),
    Mistake(
        _layer_variant(use_mask=False),
        "the padding mask is ignored: pass `mask` on to layer.attention(x, mask), so no query "
        "attends to padding.",
    ),
    Mistake(
        _layer_variant(swap_norms=True),
        "the two LayerNorms are swapped: layer.attention_norm follows the attention sub-layer "
        "and layer.ffn_norm the feed-forward one (each has its own weights).",
    ),
    Mistake(
        _layer_variant(norms=False),
        "the LayerNorms are missing: after each residual sum, apply layer.attention_norm "
        "and layer.ffn_norm.",
    ),
]


def check_encoder_layer(encoder_layer: Callable) -> None:
    """Check `encoder_layer(layer, x, mask) -> (batch, seq, hidden)` against `layer(x, mask)`."""
    compare(
        "encoder_layer",
        encoder_layer,
        _reference_layer,
        _layer_inputs,
        LAYER_MISTAKES,
        atol=1e-4,
        refuse=["EncoderLayer"],
    )
    passed(
        "encoder_layer",
        "same output as bertmini.transformer.EncoderLayer (post-LN, exact GELU, eps 1e-12)",
    )
