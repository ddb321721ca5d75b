"""The chapter 10 checks pass bertmini's FLOP count and a correct MFU, and name each typical
mistake."""

import statistics
import time

import pytest
import torch

from bertmini import bench
from bertmini.checks import CheckFailed
from bertmini.checks.scaling import (
    check_mfu,
    check_parameter_count,
    check_time_step,
    check_training_flops,
    reference_mfu,
    reference_parameter_count,
    reference_training_flops,
)
from bertmini.model import BertConfig, BertForPreTraining


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


# --- the parameter count and the step timer --------------------------------------------------


def student_parameter_count(config):
    """Counted from the parts, as a student would: embeddings, layers, heads."""
    h, i, v, layers = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
        config.num_hidden_layers,
    )
    embeddings = (v + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    attention = 4 * (h * h + h)  # Q, K, V, output
    feed_forward = (h * i + i) + (i * h + h)
    layer = attention + feed_forward + 2 * 2 * h  # two LayerNorms
    pooler = h * h + h
    mlm_head = (h * h + h) + 2 * h + v  # transform, LayerNorm, decoder bias (weight tied)
    nsp_head = 2 * h + 2
    return embeddings + layers * layer + pooler + mlm_head + nsp_head


def test_parameter_count_passes_and_matches_the_model(capsys):
    check_parameter_count(student_parameter_count)
    assert "110,106,428 parameters" in capsys.readouterr().out
    config = BertConfig.preset("mini", vocab_size=777)
    model = BertForPreTraining(config)
    assert reference_parameter_count(config) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "wrong, words",
    [
        (lambda c: student_parameter_count(c) + c.vocab_size * c.hidden_size, "tied"),
        (lambda c: student_parameter_count(c) - 2 * c.hidden_size - 2, "NSP head is missing"),
        (lambda c: student_parameter_count(c) - c.hidden_size**2 - c.hidden_size, "pooler"),
        (lambda c: student_parameter_count(c) + 1, "expected .* got"),
    ],
)
def test_parameter_count_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_parameter_count(wrong)


def student_time_step(step, warmup_steps, timed_steps, sync=lambda: None):
    for _ in range(warmup_steps):
        step()
    durations = []
    for _ in range(timed_steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        durations.append(time.perf_counter() - start)
    durations.sort()
    middle = len(durations) // 2
    return durations[middle] if len(durations) % 2 else sum(durations[middle - 1 : middle + 1]) / 2


def test_time_step_passes_a_student_version_and_restores_the_clock(capsys):
    check_time_step(student_time_step)
    assert "✅ time_step: correct" in capsys.readouterr().out
    before = time.perf_counter()
    assert time.perf_counter() >= before and time.perf_counter is _REAL_PERF_COUNTER


_REAL_PERF_COUNTER = time.perf_counter


def time_step_variant(**changes):
    def time_step(step, warmup_steps, timed_steps, sync=lambda: None):
        for _ in range(warmup_steps if changes.get("warm_up", True) else 0):
            step()
        durations = []
        count = timed_steps + (0 if changes.get("warm_up", True) else warmup_steps)
        for _ in range(changes.get("fixed_steps", count)):
            if changes.get("sync", True):
                sync()
            start = time.perf_counter()
            step()
            if changes.get("sync", True):
                sync()
            durations.append(time.perf_counter() - start)
        return (
            sum(durations) / len(durations) if changes.get("mean") else statistics.median(durations)
        )

    return time_step


@pytest.mark.parametrize(
    "wrong, words",
    [
        (time_step_variant(sync=False), "timed the launch, not the work"),
        (time_step_variant(warm_up=False), "warm-up steps were timed too"),
        (time_step_variant(mean=True), "mean of the timed steps"),
        (time_step_variant(fixed_steps=4), "step\\(\\) ran 7 times; expected"),
    ],
)
def test_time_step_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_time_step(wrong)


def test_parameter_count_refuses_building_bertminis_model():
    def by_building(config):
        return sum(p.numel() for p in BertForPreTraining(config).parameters())

    with pytest.raises(CheckFailed, match="bertmini's own BertForPreTraining, which refuses"):
        check_parameter_count(by_building)
