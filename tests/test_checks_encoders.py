"""The chapter 04 checks accept the reference and name the typical mistakes."""

import pytest
import torch
import torch.nn.functional as F

from bertmini.checks import CheckFailed
from bertmini.checks.encoders import check_encoder_layer, check_lstm_cell
from bertmini.lstm import lstm_cell

pytestmark = pytest.mark.usefixtures("seeded")


# --- LSTM cell -----------------------------------------------------------------------------


def written_out_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """A correct cell written differently from the reference (separate matmuls per gate)."""
    hidden = h.shape[1]
    gate = {}
    for index, name in enumerate("ifgo"):
        rows = slice(index * hidden, (index + 1) * hidden)
        gate[name] = x @ weight_ih[rows].T + h @ weight_hh[rows].T + bias_ih[rows] + bias_hh[rows]
    c = torch.sigmoid(gate["f"]) * c + torch.sigmoid(gate["i"]) * torch.tanh(gate["g"])
    return torch.sigmoid(gate["o"]) * torch.tanh(c), c


def wrong_cell(order="ifgo", g_act=torch.tanh, keep="f", squash=True):
    def cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        stacked = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
        parts = dict(zip(order, stacked.chunk(4, -1), strict=True))
        gates = {name: torch.sigmoid(parts[name]) for name in "ifo"}
        c = gates[keep] * c + gates["i"] * g_act(parts["g"])
        return gates["o"] * (torch.tanh(c) if squash else c), c

    return cell


def test_lstm_reference_passes(capsys):
    check_lstm_cell(written_out_cell)
    assert "✅ lstm_cell: correct" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="bertmini's own lstm_cell, which refuses"):
        check_lstm_cell(lstm_cell)


@pytest.mark.parametrize(
    "student, words",
    [
        (wrong_cell(order="ifog"), "i, f, o, g"),
        (wrong_cell(order="figo"), "input and forget gates are swapped"),
        (wrong_cell(order="igfo"), "TensorFlow"),
        (wrong_cell(g_act=torch.sigmoid), "use tanh for g"),
        (wrong_cell(keep="o"), "scaled by the output gate"),
        (wrong_cell(squash=False), "missing the tanh"),
    ],
)
def test_lstm_mistakes_are_named(student, words):
    with pytest.raises(CheckFailed, match=words):
        check_lstm_cell(student)


def test_lstm_other_errors_are_reported():
    with pytest.raises(CheckFailed, match=r"your h \(element 0 of your tuple\) differs by up to"):
        check_lstm_cell(lambda x, h, c, *weights: (h + 1, c))
    with pytest.raises(CheckFailed, match="raised RuntimeError"):
        check_lstm_cell(lambda x, h, c, w_ih, *rest: (x @ w_ih, c))


def test_lstm_stub_lets_not_implemented_through(stub):
    with pytest.raises(NotImplementedError):
        check_lstm_cell(stub)


# --- Encoder layer --------------------------------------------------------------------------


def solution_layer(layer, x, mask):
    attended, _ = layer.attention(x, mask)
    x = layer.attention_norm(x + attended)
    return layer.ffn_norm(x + layer.ffn_out(F.gelu(layer.ffn_in(x))))


def hand_written_norms(layer, x, mask):
    """Correct, with LayerNorm written out (population variance, BERT's eps)."""

    def norm(module, v):
        mean = v.mean(-1, keepdim=True)
        var = v.var(-1, keepdim=True, unbiased=False)
        return (v - mean) / torch.sqrt(var + 1e-12) * module.weight + module.bias

    x = norm(layer.attention_norm, x + layer.attention(x, mask)[0])
    phi = 0.5 * (1 + torch.erf(layer.ffn_in(x) / 2**0.5))
    return norm(layer.ffn_norm, x + layer.ffn_out(layer.ffn_in(x) * phi))


def wrong_layer(act=F.gelu, eps=None, pre=False, res_attn=True, res_ffn=True):
    def norm(module, v):
        return F.layer_norm(v, module.normalized_shape, module.weight, module.bias, eps or 1e-12)

    def layer_fn(layer, x, mask):
        def ffn(v):
            return layer.ffn_out(act(layer.ffn_in(v)))

        if pre:
            x = x + layer.attention(norm(layer.attention_norm, x), mask)[0]
            return x + ffn(norm(layer.ffn_norm, x))
        attended = layer.attention(x, mask)[0]
        x = norm(layer.attention_norm, x + attended if res_attn else attended)
        return norm(layer.ffn_norm, x + ffn(x) if res_ffn else ffn(x))

    return layer_fn


def test_layer_reference_passes(capsys):
    check_encoder_layer(solution_layer)
    check_encoder_layer(hand_written_norms)
    assert "✅ encoder_layer: correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "student, words",
    [
        (wrong_layer(pre=True), "pre-LN"),
        (wrong_layer(res_attn=False), "residual around attention is missing"),
        (wrong_layer(res_ffn=False), "residual around the feed-forward network"),
        (wrong_layer(act=F.relu), "ReLU"),
        (wrong_layer(act=lambda v: F.gelu(v, approximate="tanh")), "tanh approximation"),
        (wrong_layer(act=torch.tanh), "uses tanh as its activation"),
        (wrong_layer(eps=1e-5), "eps is PyTorch's default 1e-5"),
    ],
)
def test_layer_mistakes_are_named(student, words):
    with pytest.raises(CheckFailed, match=words):
        check_encoder_layer(student)


def test_layer_mask_ignored_is_caught():
    def no_mask(layer, x, mask):
        return solution_layer(layer, x, None)

    with pytest.raises(CheckFailed, match="padding mask is ignored"):
        check_encoder_layer(no_mask)


def test_layer_swapped_norms_are_named():
    def swapped(layer, x, mask):
        attended, _ = layer.attention(x, mask)
        x = layer.ffn_norm(x + attended)
        return layer.attention_norm(x + layer.ffn_out(F.gelu(layer.ffn_in(x))))

    with pytest.raises(CheckFailed, match="LayerNorms are swapped"):
        check_encoder_layer(swapped)


def test_layer_calling_the_layer_is_refused():
    with pytest.raises(CheckFailed, match="bertmini's own EncoderLayer, which refuses"):
        check_encoder_layer(lambda layer, x, mask: layer(x, mask)[0])


def test_layer_stub_lets_not_implemented_through():
    def stub(layer, x, mask):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        check_encoder_layer(stub)
