"""The chapter 10 checks pass bertmini's FLOP count and a correct MFU, and name each typical
mistake."""

import pytest
import torch

from bertmini import bench
from bertmini.checks import CheckFailed
from bertmini.checks.scaling import (
    check_mfu,
    check_training_flops,
    reference_mfu,
    reference_training_flops,
)
from bertmini.model import BertConfig


def student_flops(
    per_weight=6,
    attention=12,
    ffn_matmuls=2,
    per_layer=True,
    dense_head=False,
    transform=True,
    head=True,
):
    """The FLOP count as a student would write it, with one choice made (right or wrong)."""

    def training_flops(config, batch, seq, mlm_positions):
        h, layers = config.hidden_size, config.num_hidden_layers
        i, v = config.intermediate_size, config.vocab_size
        tokens = batch * seq
        weights_per_layer = 4 * h * h + ffn_matmuls * h * i
        encoder = per_weight * tokens * weights_per_layer + attention * batch * seq * seq * h
        if per_layer:
            encoder *= layers
        m = tokens if dense_head else mlm_positions
        mlm = per_weight * m * ((h * h if transform else 0) + h * v) if head else 0
        return encoder + mlm

    return training_flops


def test_flops_reference_and_a_correct_student_pass(capsys):
    check_training_flops(student_flops())
    check_training_flops(lambda *args: float(student_flops()(*args)))  # a float is fine
    check_training_flops(lambda *args: torch.tensor(student_flops()(*args)))
    out = capsys.readouterr().out
    assert out.count("✅") == 3 and "GFLOPs" in out
    with pytest.raises(CheckFailed, match="bertmini's own training_flops_per_step, which refuses"):
        check_training_flops(reference_training_flops)


def test_flops_reference_is_the_docstring_formula():
    config = BertConfig.preset("base")  # L12 H768 I3072 V30522
    b, s, m = 256, 128, 4915
    expected = 6 * b * s * 12 * (4 * 768**2 + 2 * 768 * 3072) + 12 * b * 12 * s**2 * 768
    expected += 6 * m * (768**2 + 768 * 30522)
    assert reference_training_flops(config, b, s, m) == expected


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_flops(per_weight=2, attention=4), "forward pass only"),
        (student_flops(attention=0), "attention term is missing"),
        (student_flops(attention=6), "half the reference"),
        (student_flops(attention=4), "forward pass only (4*B*L*S^2*H)"),
        (student_flops(ffn_matmuls=1), "two matmuls"),
        (student_flops(per_layer=False), "one layer"),
        (student_flops(dense_head=True), "every position"),
        (student_flops(transform=False), "transform is missing"),
        (student_flops(head=False), "MLM head is missing"),
    ],
)
def test_flops_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match="training_flops") as caught:
        check_training_flops(wrong)
    assert words in str(caught.value)


def test_flops_unknown_mistake_and_bad_types_fail():
    with pytest.raises(CheckFailed, match="expected .* got"):
        check_training_flops(lambda *args: student_flops()(*args) + 12345)
    with pytest.raises(CheckFailed, match="return a number"):
        check_training_flops(lambda *args: None)  # forgot `return`
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        check_training_flops(lambda *args: 1 / 0)


def student_mfu(kind="right"):
    def mfu(flops_per_step, step_time_s, peak_tflops):
        achieved = flops_per_step / step_time_s  # FLOP/s
        peak = peak_tflops * 1e12
        return {
            "right": achieved / peak,
            "no_1e12": achieved / peak_tflops,
            "ms": flops_per_step / (step_time_s / 1000) / peak,
            "to_ms": flops_per_step / (step_time_s * 1000) / peak,
            "percent": 100 * achieved / peak,
            "inverted": peak / achieved,
            "times": flops_per_step * step_time_s / peak,
        }[kind]

    return mfu


def test_mfu_reference_and_a_correct_student_pass(capsys):
    check_mfu(reference_mfu)
    check_mfu(student_mfu())
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize(
    "kind, words",
    [
        ("no_1e12", "1e12 times too big"),
        ("ms", "1000 times too big"),
        ("to_ms", "1000 times too small"),
        ("percent", "percentage"),
        ("inverted", "upside down"),
        ("times", "not multiplied"),
    ],
)
def test_mfu_mistakes_are_named(kind, words):
    with pytest.raises(CheckFailed, match="mfu") as caught:
        check_mfu(student_mfu(kind))
    assert words in str(caught.value)


def test_mfu_matches_what_the_benchmark_reports():
    config = BertConfig.preset("tiny", vocab_size=300)
    result = bench.benchmark(config, 2, 16, "cpu", vs_hf=False, steps=1, warmup=0, peak_tflops=0.5)
    seconds = result["bertmini"]["step_ms"] / 1e3
    assert reference_mfu(result["flops_per_step"], seconds, 0.5) == pytest.approx(
        result["bertmini"]["mfu"]
    )
    assert reference_mfu(result["flops_per_step_actual"], seconds, 0.5) == pytest.approx(
        result["bertmini"]["mfu_actual"]
    )


def test_not_implemented_goes_through():
    def unsolved(*args):
        raise NotImplementedError("exercise: replace this line with your code")

    with pytest.raises(NotImplementedError):
        check_training_flops(unsolved)
    with pytest.raises(NotImplementedError):
        check_mfu(unsolved)
