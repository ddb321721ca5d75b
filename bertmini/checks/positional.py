"""Checks for chapter 02: the sinusoid matrix.

    check_sinusoidal_encoding(sinusoidal_encoding)   # (num_positions, dim) -> (num_positions, dim)

The reference is `bertmini.positional.sinusoidal_encoding`: for each pair of columns (2i, 2i+1),

    PE[pos, 2i] = sin(pos / 10000^(2i/dim))      PE[pos, 2i+1] = cos(pos / 10000^(2i/dim))

Typical mistakes it names: sines and cosines in two blocks instead of interleaved, sin and cos
swapped, the exponent written with i instead of 2i (or with the column index), and the position
multiplied by 10000^(2i/dim) instead of divided.
"""

from collections.abc import Callable

import torch

from ..positional import sinusoidal_encoding
from . import Mistake, compare, passed


def _angles(num_positions: int, dim: int, exponent: torch.Tensor) -> torch.Tensor:
    """pos / 10000^exponent: (num_positions, len(exponent)), in float64."""
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    return position / 10000.0 ** exponent[None, :]


def _pair_exponent(dim: int) -> torch.Tensor:
    return torch.arange(0, dim, 2, dtype=torch.float64) / dim  # 2i/dim for i = 0 .. dim/2-1


def _interleave(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Columns first[:, 0], second[:, 0], first[:, 1], second[:, 1], ..."""
    return torch.stack([first, second], dim=-1).flatten(-2).float()


def _blocks(num_positions: int, dim: int) -> torch.Tensor:
    angle = _angles(num_positions, dim, _pair_exponent(dim))
    return torch.cat([angle.sin(), angle.cos()], dim=-1).float()


def _blocks_cos_first(num_positions: int, dim: int) -> torch.Tensor:
    angle = _angles(num_positions, dim, _pair_exponent(dim))
    return torch.cat([angle.cos(), angle.sin()], dim=-1).float()


def _swapped(num_positions: int, dim: int) -> torch.Tensor:
    angle = _angles(num_positions, dim, _pair_exponent(dim))
    return _interleave(angle.cos(), angle.sin())


def _exponent_i(num_positions: int, dim: int) -> torch.Tensor:
    angle = _angles(num_positions, dim, torch.arange(dim // 2, dtype=torch.float64) / dim)
    return _interleave(angle.sin(), angle.cos())


def _exponent_column(num_positions: int, dim: int) -> torch.Tensor:
    """Each column j uses 10000^(j/dim): right for the sines, wrong for the cosines."""
    angle = _angles(num_positions, dim, torch.arange(dim, dtype=torch.float64) / dim)
    return _interleave(angle[:, 0::2].sin(), angle[:, 1::2].cos())


def _exponent_two_column(num_positions: int, dim: int) -> torch.Tensor:
    """Each column j uses 10000^(2j/dim): the pair index i replaced by the column index j."""
    angle = _angles(num_positions, dim, 2 * torch.arange(dim, dtype=torch.float64) / dim)
    return _interleave(angle[:, 0::2].sin(), angle[:, 1::2].cos())


def _multiplied(num_positions: int, dim: int) -> torch.Tensor:
    angle = _angles(num_positions, dim, -_pair_exponent(dim))
    return _interleave(angle.sin(), angle.cos())


def _no_cos(num_positions: int, dim: int) -> torch.Tensor:
    angle = _angles(num_positions, dim, _pair_exponent(dim))
    return _interleave(angle.sin(), angle.sin())


_MISTAKES = [
    Mistake(
        _blocks,
        "sin and cos are in blocks, not interleaved: the first dim/2 columns hold sines and the "
        "rest cosines. Each frequency owns a pair of columns: sin in column 2i, cos in column "
        "2i+1 (`pe[:, 0::2] = sin`, `pe[:, 1::2] = cos`).",
    ),
    Mistake(
        _blocks_cos_first,
        "cos and sin are in blocks (cosines first), not interleaved: put sin in the even columns "
        "2i and cos in the odd columns 2i+1.",
    ),
    Mistake(
        _swapped,
        "sin and cos are swapped: sin goes in the even columns (2i), cos in the odd ones (2i+1).",
    ),
    Mistake(
        _exponent_i,
        "the exponent uses i instead of 2i: the frequency of pair i is 1 / 10000^(2i/dim) "
        "(`torch.arange(0, dim, 2) / dim`), so the slowest wave has a period near 10000 * 2pi.",
    ),
    Mistake(
        _exponent_column,
        "the cosine columns use their own column index in the exponent: column 2i+1 must share "
        "the frequency of column 2i, 1 / 10000^(2i/dim) (one frequency per sin/cos pair).",
    ),
    Mistake(
        _exponent_two_column,
        "the exponent uses 2j with j the column index; use 2i with i the *pair* index "
        "(i = j // 2), i.e. exponents 0, 2/dim, 4/dim, ... one per sin/cos pair.",
    ),
    Mistake(
        _multiplied,
        "the position is multiplied by 10000^(2i/dim); divide by it instead "
        "(angle = pos / 10000^(2i/dim)), so the frequencies fall from 1 towards 1/10000.",
    ),
    Mistake(
        _no_cos,
        "every column holds a sine: the odd columns (2i+1) take the cosine of the same angle.",
    ),
]


def _inputs(generator: torch.Generator) -> tuple:
    num_positions = int(torch.randint(8, 60, (1,), generator=generator))
    dim = 2 * int(torch.randint(3, 33, (1,), generator=generator))  # even, 6 .. 64
    return num_positions, dim


def check_sinusoidal_encoding(sinusoidal_encoding_fn: Callable) -> None:
    """Check `sinusoidal_encoding(num_positions, dim) -> (num_positions, dim)` float tensor."""
    compare(
        "sinusoidal_encoding",
        sinusoidal_encoding_fn,
        sinusoidal_encoding,
        _inputs,
        _MISTAKES,
        atol=1e-4,
        refuse=["sinusoidal_encoding"],
    )
    passed("sinusoidal_encoding", "interleaved sin/cos, one frequency 1/10000^(2i/dim) per pair")
