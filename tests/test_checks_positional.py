"""The sinusoid check passes the reference, names each typical mistake, and lets stubs through."""

import math

import pytest
import torch

from bertmini.checks import CheckFailed
from bertmini.checks.positional import check_sinusoidal_encoding
from bertmini.positional import sinusoidal_encoding

pytestmark = pytest.mark.usefixtures("seeded")


def student_sinusoids(layout="interleaved", exponent="2i", swap=False, divide=True):
    """The sinusoid matrix as a student would write it, loop by loop, with one choice made."""

    def encoding(num_positions, dim):
        pe = torch.zeros(num_positions, dim)
        for pos in range(num_positions):
            for i in range(dim // 2):
                power = {"2i": 2 * i / dim, "i": i / dim}[exponent]
                angle = pos / 10000**power if divide else pos * 10000**power
                first, second = math.sin(angle), math.cos(angle)
                if swap:
                    first, second = second, first
                if layout == "interleaved":
                    pe[pos, 2 * i], pe[pos, 2 * i + 1] = first, second
                else:
                    pe[pos, i], pe[pos, dim // 2 + i] = first, second
        return pe

    return encoding


def test_reference_passes(capsys):
    check_sinusoidal_encoding(student_sinusoids())
    assert capsys.readouterr().out.count("✅") == 1
    with pytest.raises(CheckFailed, match="bertmini's own sinusoidal_encoding, which refuses"):
        check_sinusoidal_encoding(sinusoidal_encoding)


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_sinusoids(layout="blocks"), "in blocks, not interleaved"),
        (student_sinusoids(exponent="i"), "uses i instead of 2i"),
        (student_sinusoids(swap=True), "swapped"),
        (student_sinusoids(divide=False), "multiplied"),
        (lambda n, d: student_sinusoids()(n, d)[:, : d // 2], "has shape .*; expected"),
    ],
)
def test_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_sinusoidal_encoding(wrong)


def test_stub_raises_not_implemented(stub):
    with pytest.raises(NotImplementedError):
        check_sinusoidal_encoding(stub)
