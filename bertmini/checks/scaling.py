"""Checks for chapter 10: counting a training step's FLOPs, and MFU from a measured step time.

    check_training_flops(training_flops)
        # (config, batch, seq, mlm_positions) -> FLOPs of one training step (a number)
    check_mfu(mfu)
        # (flops_per_step, step_time_s, peak_tflops) -> model FLOPs utilization (a fraction)

The references are `bertmini.bench.training_flops_per_step` and the MFU that `bench.benchmark`
reports. Answers are numbers, compared with a relative tolerance (floating point may add them up
in another order). On a wrong answer the checks try the usual mistakes and name the one that
matches: the forward pass only (2 FLOPs per weight per token instead of 6), the attention term
forgotten or counted for one of its two matmuls or forward only, the FFN counted as one matmul,
the layers forgotten, the MLM head run on every position (M = B*S) when told M, the MLM head's
H^2 transform or the whole head forgotten; for MFU: TFLOP/s not turned into FLOP/s (1e12), a
step time taken for milliseconds (or turned into them), a percentage instead of a fraction, the
ratio upside down.
"""

import math
from collections.abc import Callable

import torch

from ..bench import training_flops_per_step
from ..model import BertConfig
from . import Mistake, call_student, fail, passed

REL_TOL = 1e-6


def reference_training_flops(config: BertConfig, batch: int, seq: int, mlm_positions: int) -> int:
    """bertmini's count (`bench.training_flops_per_step`)."""
    return training_flops_per_step(config, batch, seq, mlm_positions)


def reference_mfu(flops_per_step: float, step_time_s: float, peak_tflops: float) -> float:
    """Achieved FLOP/s over the chip's peak FLOP/s: a fraction between 0 and 1."""
    return flops_per_step / step_time_s / (peak_tflops * 1e12)


def _terms(config: BertConfig, batch: int, seq: int, mlm_positions: int) -> dict[str, int]:
    """The formula's pieces, so that each mistake can leave out or change one of them."""
    h, layers, i, v = (
        config.hidden_size,
        config.num_hidden_layers,
        config.intermediate_size,
        config.vocab_size,
    )
    return {
        "projections": 6 * batch * seq * layers * 4 * h**2,
        "ffn": 6 * batch * seq * layers * 2 * h * i,
        "attention": 12 * batch * layers * seq**2 * h,
        "mlm_transform": 6 * mlm_positions * h**2,
        "mlm_decoder": 6 * mlm_positions * h * v,
    }


def _with(changes: dict[str, float] | None = None, mlm_dense: bool = False) -> Callable:
    """The reference with some terms scaled (0 = left out), or its MLM head run densely."""
    changes = changes or {}

    def wrong(config, batch, seq, mlm_positions):
        positions = batch * seq if mlm_dense else mlm_positions
        terms = _terms(config, batch, seq, positions)
        return sum(value * changes.get(name, 1.0) for name, value in terms.items())

    return wrong


def _forgot_layers(config, batch, seq, mlm_positions):
    terms = _terms(config, batch, seq, mlm_positions)
    layers = config.num_hidden_layers
    encoder = (terms["projections"] + terms["ffn"] + terms["attention"]) / layers
    return encoder + terms["mlm_transform"] + terms["mlm_decoder"]


FLOPS_MISTAKES = [
    Mistake(
        lambda *args: _with()(*args) / 3,
        "your count is a third of the reference: that is the forward pass only (2 FLOPs per "
        "weight per token). A training step also runs the backward pass, which costs about twice "
        "the forward (gradients for the inputs and for the weights): 6 per weight per token.",
    ),
    Mistake(
        _with({"attention": 0}),
        "the attention term is missing: besides the weight matrices, each layer does two "
        "(seq x seq) matmuls, Q K^T and weights @ V, which cost 12*B*L*S^2*H for a training step.",
    ),
    Mistake(
        _with({"attention": 0.5}),
        "your attention term is half the reference: count both of its matmuls (Q K^T and "
        "weights @ V), 2*B*S^2*H FLOPs each forward per layer, times 3 for forward + backward: "
        "12*B*L*S^2*H.",
    ),
    Mistake(
        _with({"attention": 1 / 3}),
        "your attention term counts the forward pass only (4*B*L*S^2*H): its backward costs "
        "twice as much again, so 12*B*L*S^2*H for a training step.",
    ),
    Mistake(
        _with({"ffn": 0.5}),
        "the feed-forward network has two matmuls (H -> I and I -> H): 2*H*I weights per layer, "
        "not H*I.",
    ),
    Mistake(
        _forgot_layers,
        "you counted one layer: the encoder's terms (4H^2 + 2HI, and attention) are per layer; "
        "multiply them by config.num_hidden_layers.",
    ),
    Mistake(
        _with(mlm_dense=True),
        "your MLM head runs on every position (M = batch * seq): bertmini runs it only on the "
        "`mlm_positions` labelled positions, the sparse head. Use mlm_positions for M.",
    ),
    Mistake(
        _with({"mlm_transform": 0}),
        "the MLM head's transform is missing: before the vocabulary decoder (H x V) it applies a "
        "dense H x H layer, so the head costs 6*M*(H^2 + H*V).",
    ),
    Mistake(
        _with({"mlm_transform": 0, "mlm_decoder": 0}),
        "the MLM head is missing: 6*M*(H^2 + H*V) FLOPs for its transform and its vocabulary "
        "decoder, which is most of a small BERT's work.",
    ),
]

MFU_MISTAKES = [
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) * 1e12,
        "your answer is 1e12 times too big: peak_tflops is in TFLOP/s, so the peak is "
        "peak_tflops * 1e12 FLOP/s.",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) / 1e12,
        "your answer is 1e12 times too small: flops_per_step is in FLOPs and the peak in "
        "TFLOP/s; turn the peak into FLOP/s (x 1e12), not the FLOPs into TFLOPs twice.",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) * 1e3,
        "your answer is 1000 times too big: step_time_s is already in seconds (do not divide it "
        "by 1000 as if it were milliseconds).",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) / 1e3,
        "your answer is 1000 times too small: step_time_s is in seconds; do not turn it into "
        "milliseconds.",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) * 100,
        "that is a percentage: return the fraction (0.4, not 40).",
    ),
    Mistake(
        lambda f, t, p: 1 / reference_mfu(f, t, p),
        "the ratio is upside down: MFU = achieved FLOP/s / peak FLOP/s, below 1.",
    ),
    Mistake(
        lambda f, t, p: f * t / (p * 1e12),
        "FLOP/s are FLOPs divided by the step time, not multiplied by it.",
    ),
]


def _number(name: str, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(name, f"return a number (int or float), got {type(value).__name__}")
    return float(value)


def _compare_numbers(name, student, reference, cases, mistakes, detail="", refuse=()) -> None:
    """Like `checks.compare`, for functions returning one number: relative tolerance."""
    for args in cases:
        expected = float(reference(*args))
        got = _number(name, call_student(name, student, *args, refuse=refuse))
        if math.isclose(got, expected, rel_tol=REL_TOL):
            continue
        for mistake in mistakes:
            if math.isclose(got, float(mistake.wrong(*args)), rel_tol=REL_TOL):
                fail(name, mistake.advice)
        fail(
            name,
            f"on {_describe_args(args)} expected {expected:.6g}, got {got:.6g} "
            f"(ratio {got / expected:.4g}). Compare your terms with the formula above.",
        )
    passed(name, detail)


def _describe_args(args) -> str:
    if isinstance(args[0], BertConfig):
        c = args[0]
        return (
            f"L{c.num_hidden_layers} H{c.hidden_size} I{c.intermediate_size} V{c.vocab_size}, "
            f"batch {args[1]}, seq {args[2]}, mlm_positions {args[3]}"
        )
    return ", ".join(f"{a:g}" for a in args)


def _flops_cases() -> list[tuple]:
    """Shapes where every mistake above gives a different number (I is not always 4H, S varies,
    M is far from B*S)."""
    cases = []
    for layers, hidden, intermediate, vocab, batch, seq in (
        (2, 128, 512, 30522, 32, 128),  # tiny, as in the chapter
        (3, 96, 200, 1000, 5, 48),
        (12, 768, 3072, 30522, 256, 512),  # base at the long phase
    ):
        config = BertConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=max(1, hidden // 64),
            intermediate_size=intermediate,
        )
        cases.append((config, batch, seq, max(1, round(0.15 * batch * seq)) + 1))
    return cases


def check_training_flops(training_flops_fn: Callable) -> None:
    """Check `training_flops(config, batch, seq, mlm_positions)` against bertmini's count."""
    config, batch, seq, positions = _flops_cases()[0]
    flops = reference_training_flops(config, batch, seq, positions)
    _compare_numbers(
        "training_flops",
        training_flops_fn,
        reference_training_flops,
        _flops_cases(),
        FLOPS_MISTAKES,
        refuse=["training_flops_per_step"],
        detail=f"a tiny BERT step at batch {batch} x seq {seq} is {flops / 1e9:.1f} GFLOPs",
    )


def check_mfu(mfu_fn: Callable) -> None:
    """Check `mfu(flops_per_step, step_time_s, peak_tflops)` -> a fraction."""
    cases = [
        (2.9e14, 0.62, 989.0),  # about BERT-base, batch 256: a few hundred TFLOPs per step
        (1.5e11, 1.7, 0.16),  # a small BERT on a 2-core CPU
        (7.3e12, 0.45, 65.0),  # a T4
    ]
    _compare_numbers("mfu", mfu_fn, reference_mfu, cases, MFU_MISTAKES)
